"""What the audience and suppression services take and return at the boundary (CLI, web API, pages).

Plain Pydantic models: the web API's OpenAPI comes from them, the CLI formats them, and no ORM object leaves
a service through them (a mobile, for one, leaves only masked).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from audiences.suppression import Channel, Reason, SuppressionChannel
from outreach.i18n import _


class _Schema(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class AudienceIn(_Schema):
    """A named audience to save: its name and its expression."""

    name: str = Field(min_length=1, max_length=100, examples=["俏佳人-女职工"])
    expression: str = Field(
        min_length=1, max_length=4000, examples=["性别 = '女' and 年龄 between 18 and 60"]
    )


class BreakdownRow(_Schema):
    """One group of a breakdown: the field's value (None when missing) and how many recipients have it."""

    value: str | int | bool | None
    count: int

    def percent(self, total: int) -> float:
        """Share of `total`, in percent (for display only)."""
        return 100.0 * self.count / total if total else 0.0


class UnmatchedValue(_Schema):
    """A value an equality or in-list compares a text field with, that no registry row holds."""

    field: str
    written: str
    value: str
    position: int
    suggestions: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """The warning as a planner reads it, in the current language."""
        if self.suggestions:
            return _(
                "no one in the registry has {field} = '{value}'; closest values: {values}",
                field=self.written,
                value=self.value,
                values="、".join(self.suggestions),
            )
        return _("no one in the registry has {field} = '{value}'", field=self.written, value=self.value)


class AudienceCount(_Schema):
    """How many recipients an expression selects on a channel, the breakdown by one field, and warnings."""

    expression: str
    channel: Channel | None
    by: str | None
    total: int
    rows: tuple[BreakdownRow, ...] = ()
    warnings: tuple[UnmatchedValue, ...] = ()


class AudienceOverview(_Schema):
    """The count, the breakdowns by township and unit kind, how many each channel reaches, and warnings."""

    expression: str
    total: int
    by_township: tuple[BreakdownRow, ...]
    by_kind: tuple[BreakdownRow, ...]
    reach: dict[str, int]
    warnings: tuple[UnmatchedValue, ...] = ()


class RecipientSample(_Schema):
    """A recipient as a preview shows her: the mobile masked."""

    worker_id: int
    name: str
    gender: str
    unit_name: str
    township: str | None
    address: str | None
    postcode: str | None
    mobile: str


class AudiencePreview(_Schema):
    """The count, breakdowns by township, unit kind and category, a few recipients, and warnings."""

    expression: str
    channel: Channel | None
    total: int
    breakdowns: dict[str, tuple[BreakdownRow, ...]]
    sample: tuple[RecipientSample, ...]
    warnings: tuple[UnmatchedValue, ...] = ()


class SavedAudience(_Schema):
    """A saved audience: a named expression that campaigns refer to."""

    id: int
    name: str
    expression: str
    created_at: datetime
    updated_at: datetime


class FieldInfo(_Schema):
    """A field an expression can use: its English and Chinese names, its type and meaning (translated)."""

    name: str
    chinese_names: tuple[str, ...]
    type: str
    description: str


class SuppressionIn(_Schema):
    """Someone to add to the suppression list: a worker, a number, or both; the channel defaults by reason."""

    reason: Reason = "opt_out"
    channel: SuppressionChannel | None = None
    worker_id: int | None = None
    mobile: str | None = None
    note: str | None = None


class SuppressionEntry(_Schema):
    """A row of the suppression list as shown: the mobile masked."""

    id: int
    channel: SuppressionChannel
    reason: Reason
    worker_id: int | None
    mobile: str
    note: str | None
    created_at: datetime
