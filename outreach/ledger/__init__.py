"""The cost ledger: rate cards, budgets, append-only entries in integer fen, and statements."""
