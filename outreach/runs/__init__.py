"""Runs: one campaign for one period, its frozen pieces, and their print batches."""
