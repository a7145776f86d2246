"""The cost ledger: rate cards, budgets, append-only entries in integer fen, and statements.

`service` is the one import for the edges; it re-exports what rates, budgets, entries and statement own.
"""
