"""Small factories for the rows the ledger tests need: audience, campaign, run, unit, workers, pieces."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from audiences.models import Audience, Unit, Worker
from outreach.campaigns.models import Campaign
from outreach.ledger import service
from outreach.ledger.models import RateCard
from outreach.ledger.schemas import FeeLine
from outreach.runs.models import Piece, Run

__all__ = ["Piece", "Run"]

_counter = itertools.count(1)

QIAOJIAREN_FEES = [
    FeeLine("名址使用费", per_piece_fen=10, waived=True),
    FeeLine("名址打印费", per_piece_fen=5, waived=True),
    FeeLine("折叠封装费", per_piece_fen=8, waived=True),
]


def rate_card(
    session: Session,
    code: str = "qiaojiaren",
    *,
    effective_from: date = date(2027, 1, 1),
    letter_fen: int = 100,
    sms_part_fen: int = 5,
    fees: list[FeeLine] | None = None,
    refund_undeliverable: bool = False,
) -> RateCard:
    return service.set_rate_card(
        session=session,
        code=code,
        effective_from=effective_from,
        letter_fen=letter_fen,
        sms_part_fen=sms_part_fen,
        fees=QIAOJIAREN_FEES if fees is None else fees,
        refund_undeliverable=refund_undeliverable,
    )


def campaign(
    session: Session, name: str | None = None, *, channel: str = "letter", rate_card_code: str = "qiaojiaren"
) -> Campaign:
    n = next(_counter)
    audience = Audience(name=f"audience-{n}", expression="gender = 'F'")
    session.add(audience)
    session.flush()
    row = Campaign(
        name=name or f"俏佳人-{n}",
        channel=channel,
        audience_id=audience.id,
        kit="qiaojiaren",
        rate_card_code=rate_card_code,
    )
    session.add(row)
    session.flush()
    return row


def run(
    session: Session, campaign: Campaign, period: str = "2027-Q1", *, created: datetime | None = None
) -> Run:
    row = Run(
        campaign_id=campaign.id,
        period=period,
        created_at=created or datetime(int(period[:4]), 2, 1, 4, tzinfo=UTC),
    )
    session.add(row)
    session.flush()
    return row


def pieces(session: Session, run: Run, count: int, *, parts: int | None = None) -> list[Piece]:
    n = next(_counter)
    unit = Unit(key=f"unit-{n}", name=f"单位{n}", township="城关镇", address="人民路1号", postcode="123456")
    session.add(unit)
    session.flush()
    workers = [
        Worker(key=f"w-{n}-{i}", name=f"职工{i}", gender="F", unit_id=unit.id, row_hash="0" * 32)
        for i in range(count)
    ]
    session.add_all(workers)
    session.flush()
    rows = [
        Piece(
            run_id=run.id,
            seq=i,
            worker_id=w.id,
            name=w.name,
            gender="F",
            unit_name=unit.name,
            parts=parts,
        )
        for i, w in enumerate(workers)
    ]
    session.add_all(rows)
    session.flush()
    return rows
