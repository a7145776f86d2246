"""Redemption reports: for planners, redemptions of a campaign period per offer, township, unit kind and age
band, as counts and as a share of the pieces mailed, by week; for a merchant, its own offers by week with no
count under five shown. CSV and an inline SVG bar chart (no script) for the pages."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from html import escape

from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audiences.models import Unit, Worker
from outreach.accounts.models import Organisation
from outreach.campaigns.models import Campaign
from outreach.i18n import N_, translate
from outreach.offers.models import AdBooking, Redemption, RedemptionCode
from outreach.offers.service import MAILED_STATES
from outreach.periods import local_date, parse_quarter
from outreach.runs.models import Piece, Run

# The privacy floor of a merchant's figures: a count under this is shown as "<5", never as itself.
MIN_CELL = 5
HIDDEN = f"<{MIN_CELL}"
# Age bands by the age reached in the period's year.
AGE_BANDS = ((0, 24, "≤24"), (25, 34, "25–34"), (35, 44, "35–44"), (45, 54, "45–54"), (55, 200, "≥55"))
UNKNOWN_AGE = N_("age unknown")
DIMENSIONS = {
    "offer": N_("offer"),
    "township": N_("township"),
    "unit_kind": N_("unit kind"),
    "age_band": N_("age band"),
}
NO_TOWNSHIP = N_("no township")


def week_of(moment: datetime) -> str:
    """The ISO week a moment falls in, in the union's time zone (e.g. 2027-W10)."""
    year, week, _day = local_date(moment).isocalendar()
    return f"{year}-W{week:02d}"


def age_band(birth_year: int | None, year: int) -> str:
    """The age band of someone born in birth_year, in the given year."""
    if birth_year is None:
        return translate(UNKNOWN_AGE)
    age = year - birth_year
    for low, high, label in AGE_BANDS:
        if low <= age <= high:
            return label
    return translate(UNKNOWN_AGE)


@dataclass(frozen=True)
class ReportRow:
    """Redemptions of one value of one dimension (an offer, a township, ...), by week and in all."""

    dimension: str
    value: str
    by_week: dict[str, int]
    redemptions: int
    mailed: int

    @property
    def share(self) -> float | None:
        """Redemptions per piece mailed (None when none were mailed)."""
        return self.redemptions / self.mailed if self.mailed else None


@dataclass(frozen=True)
class PlannerReport:
    """A campaign period's redemptions for planners."""

    campaign: str
    period: str
    run_id: int | None
    mailed: int
    weeks: tuple[str, ...]
    by_week: dict[str, int]
    rows: tuple[ReportRow, ...]

    @property
    def redemptions(self) -> int:
        """Every redemption of the period's offers."""
        return sum(self.by_week.values())


def planner_report(*, session: Session, campaign: Campaign, period: str) -> PlannerReport:
    """Redemptions of the campaign's offers for a period per offer, township, unit kind and age band."""
    quarter = parse_quarter(period)
    run = session.scalar(select(Run).where(Run.campaign_id == campaign.id, Run.period == str(quarter)))
    offers = session.execute(
        select(AdBooking.id, AdBooking.slot, Organisation.name)
        .join(Organisation, Organisation.id == AdBooking.merchant_id)
        .where(AdBooking.campaign_id == campaign.id, AdBooking.period == str(quarter))
        .order_by(AdBooking.slot)
    ).all()
    offer_name = {b_id: f"{name} ({slot})" for b_id, slot, name in offers}
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    by_week: Counter[str] = Counter()
    for value in offer_name.values():
        counts[("offer", value)] = Counter()
    if offer_name:
        rows = session.execute(
            select(Redemption.booking_id, Redemption.at, Piece.township, Unit.kind, Worker.birth_year)
            .join(RedemptionCode, RedemptionCode.id == Redemption.code_id)
            .join(Piece, Piece.id == RedemptionCode.piece_id)
            .join(Worker, Worker.id == Piece.worker_id)
            .join(Unit, Unit.id == Worker.unit_id)
            .where(Redemption.booking_id.in_(list(offer_name)))
        ).all()
        for booking_id, at, township, kind, birth_year in rows:
            week = week_of(at)
            by_week[week] += 1
            counts[("offer", offer_name[booking_id])][week] += 1
            counts[("township", township or translate(NO_TOWNSHIP))][week] += 1
            counts[("unit_kind", kind)][week] += 1
            counts[("age_band", age_band(birth_year, quarter.year))][week] += 1
    mailed_by = _mailed(session, run.id, quarter.year) if run is not None else {}
    total_mailed = sum(mailed_by.get("township", {}).values())
    for dimension, values in mailed_by.items():
        for value in values:
            counts.setdefault((dimension, value), Counter())
    order = list(DIMENSIONS)
    report_rows = tuple(
        ReportRow(
            dimension=dimension,
            value=value,
            by_week=dict(counter),
            redemptions=sum(counter.values()),
            mailed=total_mailed if dimension == "offer" else mailed_by.get(dimension, {}).get(value, 0),
        )
        for (dimension, value), counter in sorted(
            counts.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])
        )
    )
    return PlannerReport(
        campaign=campaign.name,
        period=str(quarter),
        run_id=run.id if run is not None else None,
        mailed=total_mailed,
        weeks=tuple(sorted(by_week)),
        by_week=dict(by_week),
        rows=report_rows,
    )


def _mailed(session: Session, run_id: int, year: int) -> dict[str, dict[str, int]]:
    """Pieces mailed per township, unit kind and age band (what each share is of)."""
    mailed = (Piece.run_id == run_id, Piece.state.in_(MAILED_STATES))
    township = {
        (t or translate(NO_TOWNSHIP)): int(n)
        for t, n in session.execute(
            select(Piece.township, func.count()).where(*mailed).group_by(Piece.township)
        )
    }
    people = (
        select(Unit.kind, Worker.birth_year, func.count())
        .select_from(Piece)
        .join(Worker, Worker.id == Piece.worker_id)
        .join(Unit, Unit.id == Worker.unit_id)
        .where(*mailed)
        .group_by(Unit.kind, Worker.birth_year)
    )
    unit_kind: Counter[str] = Counter()
    ages: Counter[str] = Counter()
    for kind, birth_year, n in session.execute(people):
        unit_kind[kind] += int(n)
        ages[age_band(birth_year, year)] += int(n)
    return {"township": township, "unit_kind": dict(unit_kind), "age_band": dict(ages)}


def planner_csv(report: PlannerReport) -> str:
    """The planner's report as CSV: one line per dimension, value and week, and one for all weeks."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ("campaign", "period", "dimension", "value", "week", "redemptions", "pieces_mailed", "share")
    )
    for row in report.rows:
        for week in (*report.weeks, "all"):
            count = row.redemptions if week == "all" else row.by_week.get(week, 0)
            share = f"{count / row.mailed:.6f}" if row.mailed else ""
            writer.writerow(
                (
                    _cell(report.campaign),
                    report.period,
                    row.dimension,
                    _cell(row.value),
                    week,
                    count,
                    row.mailed,
                    share,
                )
            )
    return out.getvalue()


def _cell(text: str) -> str:
    # A cell that starts like a formula would run in a spreadsheet (CSV injection): make it text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- a merchant's own figures --------------------------------------------------------------------------


@dataclass(frozen=True)
class MerchantOffer:
    """One of a merchant's offers: its redemptions by week and in all, each None when under the floor."""

    booking_id: int
    campaign: str
    period: str
    offer_text: str
    valid_from: date
    valid_until: date
    weeks: tuple[tuple[str, int | None], ...]
    total: int | None


def floor(counts: Sequence[int]) -> list[int | None]:
    """Counts with every one under MIN_CELL hidden (None), and more hidden while the hidden ones add up to
    less than MIN_CELL, so that no hidden count follows from the total and the shown ones."""
    shown: list[int | None] = [c if c >= MIN_CELL else None for c in counts]
    hidden_sum = sum(c for c, s in zip(counts, shown, strict=True) if s is None)
    while 0 < hidden_sum < MIN_CELL:
        visible = [i for i, s in enumerate(shown) if s is not None]
        if not visible:
            break
        smallest = min(visible, key=lambda i: counts[i])
        shown[smallest] = None
        hidden_sum += counts[smallest]
    return shown


def merchant_report(*, session: Session, merchant_id: int) -> list[MerchantOffer]:
    """The merchant's offers, newest period first, with redemptions by week under the privacy floor."""
    offers = session.execute(
        select(AdBooking, Campaign.name)
        .join(Campaign, Campaign.id == AdBooking.campaign_id)
        .where(AdBooking.merchant_id == merchant_id)
        .order_by(AdBooking.period.desc(), AdBooking.id)
    ).all()
    out = []
    for booking, campaign_name in offers:
        weekly: Counter[str] = Counter(
            week_of(at)
            for at in session.scalars(select(Redemption.at).where(Redemption.booking_id == booking.id))
        )
        weeks = sorted(weekly)
        counts = [weekly[w] for w in weeks]
        total = sum(counts)
        out.append(
            MerchantOffer(
                booking_id=booking.id,
                campaign=campaign_name,
                period=booking.period,
                offer_text=booking.offer_text,
                valid_from=booking.valid_from,
                valid_until=booking.valid_until,
                weeks=tuple(zip(weeks, floor(counts), strict=True)),
                total=total if total >= MIN_CELL else None,
            )
        )
    return out


def merchant_csv(offers: Iterable[MerchantOffer]) -> str:
    """A merchant's figures as CSV; a count under the floor reads <5."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("campaign", "period", "offer", "week", "redemptions"))
    for offer in offers:
        for week, count in (*offer.weeks, ("all", offer.total)):
            writer.writerow(
                (
                    _cell(offer.campaign),
                    offer.period,
                    _cell(offer.offer_text),
                    week,
                    HIDDEN if count is None else count,
                )
            )
    return out.getvalue()


# --- the chart -----------------------------------------------------------------------------------------


def bar_chart_svg(labels: Sequence[str], values: Sequence[int | None], *, title: str) -> Markup:
    """A bar chart as inline SVG markup (escaped here); a None value is drawn as a grey stub marked <5."""
    width, height, left, bottom, top = 640, 240, 40, 40, 24
    plot_h = height - bottom - top
    n = max(len(values), 1)
    step = (width - left - 10) / n
    bar = max(min(step * 0.7, 60), 4)
    peak = max([v for v in values if v is not None] + [MIN_CELL])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="chart" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="{left}" y="16" font-size="13" fill="#333">{escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#999"/>',
        f'<text x="{left - 6}" y="{top + 4}" font-size="10" text-anchor="end" fill="#666">{peak}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" font-size="10" text-anchor="end" fill="#666">0</text>',
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = left + i * step + (step - bar) / 2
        h = plot_h * (value if value is not None else MIN_CELL / 2) / peak
        colour = "#b3261e" if value is not None else "#c9c9c9"
        shown = str(value) if value is not None else HIDDEN
        y = height - bottom - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour}"/>')
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{y - 4:.1f}" font-size="10" text-anchor="middle" fill="#333">'
            f"{escape(shown)}</text>"
        )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 14}" font-size="10" text-anchor="middle" '
            f'fill="#333">{escape(label)}</text>'
        )
    parts.append("</svg>")
    # Safe to place in a page as it is: every text above went through escape(), numbers are formatted here.
    return Markup("".join(parts))  # noqa: S704
