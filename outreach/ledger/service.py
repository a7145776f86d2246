"""The ledger's service functions, one import for every edge: each lives in the module that owns its rule.

rates.py      rate card versions, a period's pricing date, the fee-spec grammar, `Price` (fee arithmetic)
budgets.py    budgets and what is committed against them; the year lock that serialises spending
entries.py    the estimate, and reserve / charge / release / return / refund / adjust entries
statement.py  a run's balance and a campaign's statement (documents.py shows it: terminal, CSV, PDF)
sql.py        the heavy SQL: chunked charges, sums of money that cannot overflow
"""

from __future__ import annotations

from outreach.ledger.budgets import budget_lines, budgets, committed, set_budget
from outreach.ledger.entries import (
    adjust,
    charge,
    charge_bulk,
    estimate,
    produced_pieces,
    record_return,
    refund,
    release,
    reserve,
)
from outreach.ledger.rates import (
    Price,
    parse_fee,
    price_of,
    pricing_date,
    rate_card_for_period,
    rate_card_in_force,
    rate_card_out,
    rate_card_versions,
    set_rate_card,
)
from outreach.ledger.sql import CHARGE_CHUNK
from outreach.ledger.statement import balance, statement

__all__ = [
    "CHARGE_CHUNK",
    "Price",
    "adjust",
    "balance",
    "budget_lines",
    "budgets",
    "charge",
    "charge_bulk",
    "committed",
    "estimate",
    "parse_fee",
    "price_of",
    "pricing_date",
    "produced_pieces",
    "rate_card_for_period",
    "rate_card_in_force",
    "rate_card_out",
    "rate_card_versions",
    "record_return",
    "refund",
    "release",
    "reserve",
    "set_budget",
    "set_rate_card",
    "statement",
]
