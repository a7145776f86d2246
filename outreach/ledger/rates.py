"""Rate cards: versions in force by date, the fee-spec grammar, and `Price`, the one place that knows the fee
arithmetic (what an estimate shows, what a reservation holds and what each charge books all come from it).

Pricing. A run pays, per piece, the channel's unit price (a letter piece, or an SMS part times the parts)
plus the rate card's per-piece fees, and once per run its fixed fees (design). A waived fee is booked at list
price and as waived (list - waived = net), so statements show what the offer saved.

Which version. A period is priced on its planned mailing date: the day the schedule starts that quarter, or
today when that day has passed (a late run is mailed, and charged by the post, at today's prices). So an
estimate made in November for next year's first quarter uses the card that starts on 1 January, and the run's
reservation then uses the same one; later versions never reprice a run (run.rate_card_id is frozen).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outreach import periods
from outreach.campaigns.names import clean_name
from outreach.errors import InputError, NotFound
from outreach.i18n import _
from outreach.ledger.models import RateCard, RateCardFee
from outreach.ledger.schemas import FeeCost, FeeLine, FeeOut, RateCardOut
from outreach.money import MAX_PRICE_FEN, check_amount, parse_yuan
from outreach.settings import get_settings

_CODE = re.compile(r"[A-Za-z0-9_.-]{1,50}")
FEE_FLAGS = ("fixed", "waived", "per-piece")


# --- which version ------------------------------------------------------------------------------------


def pricing_date(period: str, *, today: date | None = None) -> date:
    """The day a period ('2027-Q1' or '2027') is priced on: its planned mailing date, or today once passed."""
    year, quarter = periods.parse_period(period)
    settings = get_settings()
    first = periods.Quarter(int(year), quarter or 1)
    mailing = first.starts_at(
        day=settings.quarter_start_day, hour=settings.quarter_start_hour, tz=settings.timezone
    ).date()
    return max(mailing, today or periods.local_date())


def rate_card_in_force(*, session: Session, code: str, on: date) -> RateCard:
    """Gets the rate card version in force on a date (NotFound if none)."""
    card = session.scalars(
        select(RateCard)
        .where(RateCard.code == code, RateCard.effective_from <= on)
        .order_by(RateCard.effective_from.desc(), RateCard.version.desc())
        .limit(1)
    ).first()
    if card is not None:
        return card
    first = session.scalar(select(func.min(RateCard.effective_from)).where(RateCard.code == code))
    if first is None:
        raise NotFound(
            _("no rate card {code!r}; set one with `outreach ledger rates set {code} ...`", code=code)
        )
    raise NotFound(
        _(
            "rate card {code!r} is not in force on {day} (its first version is from {first})",
            code=code,
            day=on.isoformat(),
            first=first.isoformat(),
        )
    )


def rate_card_for_period(*, session: Session, code: str, period: str, today: date | None = None) -> RateCard:
    """Gets the rate card version a period is priced with (see the module docstring)."""
    return rate_card_in_force(session=session, code=code, on=pricing_date(period, today=today))


def rate_card_versions(*, session: Session, code: str | None = None) -> list[RateCard]:
    """Lists rate card versions (of one code, or all), oldest first."""
    query = select(RateCard).order_by(RateCard.code, RateCard.effective_from, RateCard.version)
    if code is not None:
        query = query.where(RateCard.code == code)
    return list(session.scalars(query))


def rate_card_out(card: RateCard) -> RateCardOut:
    """A rate card version as the API and the CLI show it."""
    return RateCardOut(
        id=card.id,
        code=card.code,
        version=card.version,
        effective_from=card.effective_from,
        letter_fen=card.letter_fen,
        sms_part_fen=card.sms_part_fen,
        refund_undeliverable=card.refund_undeliverable,
        note=card.note,
        fees=tuple(FeeOut(f.name, f.per_piece_fen, f.fixed_fen, f.waived) for f in card.fees),
    )


# --- new versions ------------------------------------------------------------------------------------


def parse_fee(text: str) -> FeeLine:
    """Parses a fee spec 'NAME=YUAN[:fixed][:waived]' (per piece unless ':fixed'): 名址使用费=0.10:waived."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip():
        raise InputError(
            _("fee {spec!r}: expected NAME=YUAN[:fixed][:waived], e.g. 名址使用费=0.10:waived", spec=text)
        )
    amount, *raw_flags = rest.split(":")
    flags = [f.strip() for f in raw_flags]
    unknown = [f for f in flags if f not in FEE_FLAGS]
    if unknown:
        raise InputError(
            _("fee {spec!r}: unknown flag {flag!r} (use :fixed and/or :waived)", spec=text, flag=unknown[0])
        )
    fen = parse_yuan(amount, what=_("fee {name}", name=name.strip()), limit_fen=MAX_PRICE_FEN)
    fixed = "fixed" in flags
    return FeeLine(
        name.strip(),
        per_piece_fen=None if fixed else fen,
        fixed_fen=fen if fixed else None,
        waived="waived" in flags,
    )


def set_rate_card(
    *,
    session: Session,
    code: str,
    effective_from: date,
    letter_fen: int,
    sms_part_fen: int,
    fees: Sequence[FeeLine] = (),
    refund_undeliverable: bool = False,
    note: str | None = None,
) -> RateCard:
    """Adds a new version of a rate card, in force from `effective_from`."""
    code = code.strip() if isinstance(code, str) else code
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise InputError(_("rate card code {code!r}: use 1-50 letters, digits, '-', '_' or '.'", code=code))
    for label, value in ((_("letter price"), letter_fen), (_("SMS part price"), sms_part_fen)):
        check_amount(
            value,
            what=_("rate card {code}: {label}", code=code, label=label),
            limit_fen=MAX_PRICE_FEN,
            allow_negative=False,
        )
    seen: set[str] = set()
    clean: list[FeeLine] = []
    for fee in fees:
        name = clean_name(fee.name, what=_("rate card {code}: fee name", code=code), max_length=50)
        if name in seen:
            raise InputError(_("rate card {code}: fee {name} is given twice", code=code, name=name))
        seen.add(name)
        if (fee.per_piece_fen is None) == (fee.fixed_fen is None):
            raise InputError(
                _(
                    "rate card {code}: fee {name} needs exactly one of per-piece or fixed price",
                    code=code,
                    name=name,
                )
            )
        price = fee.per_piece_fen if fee.per_piece_fen is not None else fee.fixed_fen
        check_amount(
            price,
            what=_("rate card {code}: fee {name}", code=code, name=name),
            limit_fen=MAX_PRICE_FEN,
            allow_negative=False,
        )
        clean.append(FeeLine(name, fee.per_piece_fen, fee.fixed_fen, fee.waived))
    if note is not None:
        note = clean_name(note, what=_("rate card note"), max_length=500, multiline=True)
    version = (session.scalar(select(func.max(RateCard.version)).where(RateCard.code == code)) or 0) + 1
    card = RateCard(
        code=code,
        version=version,
        effective_from=effective_from,
        letter_fen=letter_fen,
        sms_part_fen=sms_part_fen,
        refund_undeliverable=refund_undeliverable,
        note=note,
    )
    card.fees = [
        RateCardFee(
            position=i,
            name=fee.name,
            per_piece_fen=fee.per_piece_fen,
            fixed_fen=fee.fixed_fen,
            waived=fee.waived,
        )
        for i, fee in enumerate(clean)
    ]
    session.add(card)
    session.flush()
    return card


# --- the fee arithmetic ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    """A rate card version applied to a channel: the one place that knows the fee arithmetic."""

    card: RateCard
    rate_fen: int  # per unit: a letter piece, or one SMS part
    per_piece_list_fen: int
    per_piece_waived_fen: int
    fixed_list_fen: int
    fixed_waived_fen: int

    def piece_list(self, units: int) -> int:
        """A piece's list price: its units at the unit price plus every per-piece fee."""
        return units * self.rate_fen + self.per_piece_list_fen

    def piece_net(self, units: int) -> int:
        """What a piece costs after the offer's waivers."""
        return self.piece_list(units) - self.per_piece_waived_fen

    @property
    def fixed_net_fen(self) -> int:
        """What the run's fixed fees cost after waivers."""
        return self.fixed_list_fen - self.fixed_waived_fen

    def run_list(self, pieces: int, parts: int) -> int:
        """A run's list price: every piece at list price plus the fixed fees."""
        return pieces * self.piece_list(parts) + self.fixed_list_fen

    def run_waived(self, pieces: int) -> int:
        """What the offer waives on a run."""
        return pieces * self.per_piece_waived_fen + self.fixed_waived_fen

    def run_net(self, pieces: int, parts: int) -> int:
        """What a run of `pieces` pieces of `parts` units each costs: what its reservation holds."""
        return self.run_list(pieces, parts) - self.run_waived(pieces)

    def fee_costs(self, pieces: int) -> tuple[FeeCost, ...]:
        """Each fee of the card over a run of `pieces` pieces, at list price."""
        return tuple(
            FeeCost(
                name=f.name,
                per_piece_fen=f.per_piece_fen,
                fixed_fen=f.fixed_fen,
                list_fen=pieces * f.per_piece_fen if f.per_piece_fen is not None else (f.fixed_fen or 0),
                waived=f.waived,
            )
            for f in self.card.fees
        )


def price_of(card: RateCard, channel: str) -> Price:
    """The price of a rate card version on a channel ('letter' or 'sms')."""
    per_piece = [f for f in card.fees if f.per_piece_fen is not None]
    fixed = [f for f in card.fees if f.fixed_fen is not None]
    return Price(
        card=card,
        rate_fen=card.letter_fen if channel == "letter" else card.sms_part_fen,
        per_piece_list_fen=sum(f.per_piece_fen or 0 for f in per_piece),
        per_piece_waived_fen=sum(f.per_piece_fen or 0 for f in per_piece if f.waived),
        fixed_list_fen=sum(f.fixed_fen or 0 for f in fixed),
        fixed_waived_fen=sum(f.fixed_fen or 0 for f in fixed if f.waived),
    )


def check_parts(channel: str, parts: int) -> None:
    """A letter is one unit; an SMS one or more parts."""
    if parts < 1 or (channel == "letter" and parts != 1):
        raise InputError(
            _("parts per piece {parts}: a letter is 1 unit, an SMS 1 or more parts", parts=parts)
        )
