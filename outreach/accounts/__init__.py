"""Organisations (the union, print shops, merchants), their accounts and roles, API tokens, the audit log."""
