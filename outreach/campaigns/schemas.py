"""What the campaign service takes and gives back at its boundary (the web API's OpenAPI comes from these)."""

from __future__ import annotations

from datetime import datetime

from pydantic import computed_field
from pydantic.dataclasses import dataclass

from outreach.ledger.schemas import Estimate


@dataclass(frozen=True)
class CampaignIn:
    """A new campaign as a planner enters it."""

    name: str
    audience: str
    kit: str
    rate_card_code: str
    channel: str = "letter"
    schedule: str = "manual"
    print_shop: str | None = None
    batch_size: int | None = None


@dataclass(frozen=True)
class RunRow:
    """One of a campaign's runs as listings show it."""

    id: int
    period: str
    state: str
    pieces: int
    note: str | None


@dataclass(frozen=True)
class CampaignOut:
    """A campaign, its approval and its runs."""

    id: int
    name: str
    state: str
    channel: str
    kit: str
    audience: str
    expression: str
    rate_card: str
    schedule: str
    print_shop: str | None
    approved_period: str | None
    approved_at: datetime | None
    runs: tuple[RunRow, ...]


@dataclass(frozen=True)
class CampaignSummary:
    """A line of the campaign list, with the runs that wait for an approval or a budget."""

    id: int
    name: str
    channel: str
    state: str
    schedule: str
    approved_period: str | None
    waiting: tuple[RunRow, ...]


@dataclass(frozen=True)
class GlyphProblem:
    """A recipient whose printed text holds characters no configured font can draw."""

    worker_id: int
    worker_no: str | None
    name: str
    unit_name: str
    fields: tuple[str, ...]
    characters: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def codes(self) -> str:
        """The characters as code points ('U+20BB7'), for a font search or a registry fix."""
        return " ".join(f"U+{ord(c):04X}" for c in self.characters)


@dataclass(frozen=True)
class GlyphReport:
    """The recipients of a letter campaign whose pieces would fail for want of a glyph (the first `shown`)."""

    total: int
    problems: tuple[GlyphProblem, ...]


@dataclass(frozen=True)
class CampaignEstimate:
    """What a planner checks before approving a period: reach, cost against budget, and glyph problems."""

    campaign_id: int
    campaign_name: str
    period: str
    reach: int
    cost: Estimate
    glyphs: GlyphReport
