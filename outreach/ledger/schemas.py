"""What the ledger's service functions take and give back: frozen records, amounts in integer fen.

They are pydantic dataclasses, so the web API's OpenAPI schema comes from the same classes the CLI uses
(`pydantic.TypeAdapter(Statement).json_schema()`); derived amounts are computed fields, in the schema too.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import computed_field
from pydantic.dataclasses import dataclass


@dataclass(frozen=True)
class FeeLine:
    """An itemised fee to put on a rate card: per piece or fixed per run (exactly one), maybe waived."""

    name: str
    per_piece_fen: int | None = None
    fixed_fen: int | None = None
    waived: bool = False


@dataclass(frozen=True)
class RateCardIn:
    """A new rate card version as finance enters it."""

    code: str
    effective_from: date
    letter_fen: int
    sms_part_fen: int = 0
    fees: tuple[FeeLine, ...] = ()
    refund_undeliverable: bool = False
    note: str | None = None


@dataclass(frozen=True)
class FeeOut:
    """One fee of a rate card version."""

    name: str
    per_piece_fen: int | None
    fixed_fen: int | None
    waived: bool


@dataclass(frozen=True)
class RateCardOut:
    """One version of a rate card."""

    id: int
    code: str
    version: int
    effective_from: date
    letter_fen: int
    sms_part_fen: int
    refund_undeliverable: bool
    note: str | None
    fees: tuple[FeeOut, ...]


@dataclass(frozen=True)
class FeeCost:
    """One fee of an estimate: its rate, what it comes to at list price, and whether the offer waives it."""

    name: str
    per_piece_fen: int | None
    fixed_fen: int | None
    list_fen: int
    waived: bool


@dataclass(frozen=True)
class Estimate:
    """The cost of a run before approval, and what it leaves of the budget."""

    campaign_id: int
    period: str
    channel: str
    pieces: int
    parts_per_piece: int
    units: int
    priced_on: str
    rate_card_id: int
    rate_card_code: str
    rate_card_version: int
    unit_price_fen: int
    base_fen: int
    fees: tuple[FeeCost, ...]
    list_fen: int
    waived_fen: int
    total_fen: int
    budget_period: str | None
    budget_fen: int | None
    committed_fen: int
    remaining_before_fen: int | None
    remaining_after_fen: int | None
    over_by_fen: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fits(self) -> bool:
        """Whether a reservation of this size would be accepted now."""
        return self.budget_fen is not None and self.over_by_fen == 0


@dataclass(frozen=True)
class BudgetLine:
    """A campaign's budget for one period: the amount in force, what is committed against it, what is left."""

    period: str
    budget_fen: int
    committed_fen: int
    versions: int
    last_reason: str | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def left_fen(self) -> int:
        """What is still free."""
        return self.budget_fen - self.committed_fen


@dataclass(frozen=True)
class RunBalance:
    """Where a run's money stands; outstanding = reserved - charged - released (never negative)."""

    run_id: int
    reserved_fen: int
    reserved_pieces: int
    charged_fen: int
    charged_pieces: int
    charged_units: int
    fees_fen: int
    released_fen: int
    refunded_fen: int
    refunded_pieces: int
    list_fen: int
    waived_fen: int
    closed: bool
    returned_pieces: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def outstanding_fen(self) -> int:
        """What the reservation still holds for pieces not yet charged."""
        return self.reserved_fen - self.charged_fen - self.fees_fen - self.released_fen

    @computed_field  # type: ignore[prop-decorator]
    @property
    def net_fen(self) -> int:
        """What the run has cost so far: charges and fees less refunds."""
        return self.charged_fen + self.fees_fen - self.refunded_fen


@dataclass(frozen=True)
class RunLine:
    """One run on a statement: returned pieces (what the post brought back) and refunds are separate."""

    run_id: int
    period: str
    pieces: int
    units: int
    list_fen: int
    waived_fen: int
    net_fen: int
    returned_pieces: int
    refunded_pieces: int
    refunded_fen: int
    outstanding_fen: int


@dataclass(frozen=True)
class AdjustmentLine:
    """A finance adjustment on a statement."""

    entry_id: int
    period: str
    amount_fen: int
    reason: str
    created: str


@dataclass(frozen=True)
class QuarterLine:
    """Budget against spend for one quarter (or the whole year) of the statement's chart."""

    label: str
    budget_fen: int | None
    spent_fen: int


@dataclass(frozen=True)
class Statement:
    """A campaign's statement for a period: opening budget, runs, adjustments, closing balance."""

    campaign_id: int
    campaign_name: str
    period: str | None
    budget_period: str | None
    opening_fen: int | None
    runs: tuple[RunLine, ...]
    adjustments: tuple[AdjustmentLine, ...]
    list_fen: int
    waived_fen: int
    net_fen: int
    refunded_fen: int
    adjusted_fen: int
    outstanding_fen: int
    year: str | None
    quarters: tuple[QuarterLine, ...] = ()
    # When the statement was made (UTC); documents show it in the union's time zone.
    generated_at: datetime | None = None
    # Merchants' ad fees for slots of the period's letters ('income' entries).
    ad_income_fen: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def returned_pieces(self) -> int:
        """Pieces the post brought back, whether or not the offer refunds them."""
        return sum(r.returned_pieces for r in self.runs)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def spent_fen(self) -> int:
        """Net charges less refunds plus adjustments."""
        return self.net_fen - self.refunded_fen + self.adjusted_fen

    @computed_field  # type: ignore[prop-decorator]
    @property
    def net_after_income_fen(self) -> int:
        """What the period cost the union: spent less the merchants' ad fees."""
        return self.spent_fen - self.ad_income_fen

    @computed_field  # type: ignore[prop-decorator]
    @property
    def closing_fen(self) -> int | None:
        """Opening budget less what was spent (None when no budget governs the period)."""
        return None if self.opening_fen is None else self.opening_fen - self.spent_fen

    @computed_field  # type: ignore[prop-decorator]
    @property
    def available_fen(self) -> int | None:
        """Closing balance less what open reservations still hold."""
        return None if self.closing_fen is None else self.closing_fen - self.outstanding_fen
