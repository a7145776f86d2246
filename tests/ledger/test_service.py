"""The ledger's arithmetic to the fen: rate-card versions, waivers, budgets, idempotent charges, refunds."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from outreach.errors import BudgetExceeded, Conflict, InputError, NotFound, StateError
from outreach.ledger import service
from outreach.ledger.models import BudgetVersion, LedgerEntry
from outreach.ledger.schemas import FeeLine
from outreach.periods import year_periods
from tests.ledger import factories as f

pytestmark = pytest.mark.usefixtures("english")


def test_rate_card_in_force_by_date_and_version(session: Session) -> None:
    v1 = f.rate_card(session, letter_fen=100)
    v2 = f.rate_card(session, effective_from=date(2027, 4, 1), letter_fen=120)
    v3 = f.rate_card(session, effective_from=date(2027, 4, 1), letter_fen=110)  # a correction the same day
    assert (v1.version, v2.version, v3.version) == (1, 2, 3)
    assert service.rate_card_in_force(session=session, code="qiaojiaren", on=date(2027, 3, 31)).id == v1.id
    assert service.rate_card_in_force(session=session, code="qiaojiaren", on=date(2027, 4, 1)).id == v3.id
    with pytest.raises(NotFound, match="first version is from 2027-01-01"):
        service.rate_card_in_force(session=session, code="qiaojiaren", on=date(2026, 12, 31))
    with pytest.raises(NotFound, match="no rate card 'nope'"):
        service.rate_card_in_force(session=session, code="nope", on=date(2027, 1, 1))


def test_rate_card_rejects_bad_fees(session: Session) -> None:
    with pytest.raises(InputError, match="exactly one"):
        f.rate_card(session, fees=[FeeLine("设计费", per_piece_fen=1, fixed_fen=2)])
    with pytest.raises(InputError, match="given twice"):
        f.rate_card(session, fees=[FeeLine("a", per_piece_fen=1), FeeLine("a", fixed_fen=1)])


def test_estimate_shows_waived_fees_at_list_price(session: Session) -> None:
    f.rate_card(session)
    camp = f.campaign(session)
    service.set_budget(session=session, campaign_id=camp.id, period="2027", amount_fen=600000)
    est = service.estimate(
        session=session,
        campaign_id=camp.id,
        period="2027-Q1",
        pieces=6000,
        channel="letter",
        on=date(2027, 1, 5),
    )
    assert est.base_fen == 600000
    assert [(fee.name, fee.list_fen, fee.waived) for fee in est.fees] == [
        ("名址使用费", 60000, True),
        ("名址打印费", 30000, True),
        ("折叠封装费", 48000, True),
    ]
    assert (est.list_fen, est.waived_fen, est.total_fen) == (738000, 138000, 600000)
    assert (est.budget_period, est.remaining_before_fen, est.remaining_after_fen) == ("2027", 600000, 0)
    assert est.over_by_fen == 0 and est.fits
    more = service.estimate(
        session=session,
        campaign_id=camp.id,
        period="2027-Q1",
        pieces=6001,
        channel="letter",
        on=date(2027, 1, 5),
    )
    assert more.over_by_fen == 100 and not more.fits and more.remaining_after_fen == -100


def test_reserve_refuses_overspend_and_says_what_it_would_take(session: Session) -> None:
    f.rate_card(session)
    camp = f.campaign(session, "俏佳人")
    service.set_budget(session=session, campaign_id=camp.id, period="2027", amount_fen=600000)
    run = f.run(session, camp)
    with pytest.raises(BudgetExceeded) as info:
        service.reserve(session=session, run_id=run.id, pieces=6012)
    message = str(info.value)
    assert "by ¥12.00" in message
    assert "12 fewer pieces (at most 6,000)" in message
    assert "budget of ¥6,012.00" in message
    assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 0
    entry = service.reserve(session=session, run_id=run.id, pieces=6000)
    assert entry.amount_fen == 600000
    assert run.rate_card_id is not None


def test_reserve_needs_a_budget(session: Session) -> None:
    f.rate_card(session)
    run = f.run(session, f.campaign(session))
    with pytest.raises(BudgetExceeded, match="no budget for 2027-Q1 or 2027"):
        service.reserve(session=session, run_id=run.id, pieces=1)


def test_reserve_is_idempotent_per_run(session: Session) -> None:
    f.rate_card(session)
    camp = f.campaign(session)
    service.set_budget(session=session, campaign_id=camp.id, period="2027", amount_fen=10000)
    run = f.run(session, camp)
    first = service.reserve(session=session, run_id=run.id, pieces=50)
    assert service.reserve(session=session, run_id=run.id, pieces=50).id == first.id
    with pytest.raises(Conflict, match="already reserved 50 pieces"):
        service.reserve(session=session, run_id=run.id, pieces=60)
    assert service.committed(session=session, campaign_id=camp.id, periods=["2027-Q1"]) == 5000


def test_quarter_budget_and_year_budget_both_hold(session: Session) -> None:
    f.rate_card(session)
    camp = f.campaign(session)
    service.set_budget(session=session, campaign_id=camp.id, period="2027", amount_fen=5000)
    service.set_budget(session=session, campaign_id=camp.id, period="2027-Q1", amount_fen=3000)
    with pytest.raises(BudgetExceeded, match="2027-Q1 budget"):
        service.reserve(session=session, run_id=f.run(session, camp, "2027-Q1").id, pieces=31)
    service.reserve(session=session, run_id=f.run(session, camp, "2027-Q2").id, pieces=20)
    # Q1 has 30 left of its own, but the year has only 30 left after Q2's 20.
    service.reserve(session=session, run_id=f.run(session, camp, "2027-Q3").id, pieces=10)
    q1 = f.run(session, camp, "2027-Q4")
    with pytest.raises(BudgetExceeded, match="2027 budget"):
        service.reserve(session=session, run_id=q1.id, pieces=21)


def test_budget_versions_keep_history_and_cannot_go_below_committed(session: Session) -> None:
    f.rate_card(session)
    camp = f.campaign(session)
    service.set_budget(session=session, campaign_id=camp.id, period="2027", amount_fen=1000)
    service.reserve(session=session, run_id=f.run(session, camp).id, pieces=10)
    with pytest.raises(Conflict, match="below what is already committed"):
        service.set_budget(session=session, campaign_id=camp.id, period="2027", amount_fen=999)
    budget = service.set_budget(
        session=session, campaign_id=camp.id, period="2027", amount_fen=2000, reason="追加"
    )
    assert budget.amount_fen == 2000
    assert [(v.amount_fen, v.reason) for v in budget.versions] == [(1000, None), (2000, "追加")]
    with pytest.raises(InputError, match="period '2027-Q5'"):
        service.set_budget(session=session, campaign_id=camp.id, period="2027-Q5", amount_fen=1)
    assert session.scalar(select(func.count()).select_from(BudgetVersion)) == 2


def _approved_run(session: Session, pieces: int, **card: object) -> tuple[int, list[int]]:
    f.rate_card(session, **card)  # type: ignore[arg-type]
    camp = f.campaign(session)
    service.set_budget(session=session, campaign_id=camp.id, period="2027", amount_fen=10_000_000)
    run = f.run(session, camp)
    ids = [p.id for p in f.pieces(session, run, pieces)]
    service.reserve(session=session, run_id=run.id, pieces=pieces)
    return run.id, ids


def test_bulk_charges_are_idempotent(session: Session) -> None:
    run_id, ids = _approved_run(session, 30)
    assert service.charge_bulk(session=session, run_id=run_id, charges=[(i, 1) for i in ids[:20]]) == 20
    # A retried task re-sends an overlapping chunk: only the 10 new pieces are charged.
    assert service.charge_bulk(session=session, run_id=run_id, charges=[(i, 1) for i in ids]) == 10
    assert service.charge_bulk(session=session, run_id=run_id, charges=[(i, 1) for i in ids]) == 0
    assert service.charge(session=session, run_id=run_id, piece_id=ids[0]) is False
    bal = service.balance(session=session, run_id=run_id)
    assert (bal.charged_pieces, bal.charged_fen, bal.outstanding_fen) == (30, 3000, 0)
    assert (bal.list_fen, bal.waived_fen) == (30 * 123, 30 * 23)


def test_unique_key_is_in_the_database(session: Session) -> None:
    run_id, ids = _approved_run(session, 1)
    service.charge(session=session, run_id=run_id, piece_id=ids[0])
    row = session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "charge")).one()
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(
            LedgerEntry(
                campaign_id=row.campaign_id,
                run_id=run_id,
                piece_id=ids[0],
                kind="charge",
                period=row.period,
                amount_fen=100,
                list_fen=100,
            )
        )
        session.flush()


def test_charges_are_refused_outside_the_reservation(session: Session) -> None:
    run_id, ids = _approved_run(session, 3)
    other_run, other_ids = _approved_run(session, 1)
    with pytest.raises(InputError, match="not pieces of this run"):
        service.charge_bulk(session=session, run_id=run_id, charges=[(ids[0], 1), (other_ids[0], 1)])
    with pytest.raises(InputError, match=r"allows 1\.\.1"):
        service.charge(session=session, run_id=run_id, piece_id=ids[0], units=2)
    assert service.charge(session=session, run_id=run_id, piece_id=ids[0]) is True
    service.release(session=session, run_id=run_id)
    with pytest.raises(StateError, match="closed"):
        service.charge(session=session, run_id=run_id, piece_id=ids[1])
    camp = f.campaign(session)
    unreserved = f.run(session, camp)
    piece = f.pieces(session, unreserved, 1)[0]
    with pytest.raises(StateError, match="no reservation"):
        service.charge(session=session, run_id=unreserved.id, piece_id=piece.id)
    assert other_run != run_id


def test_release_returns_the_unused_part_once(session: Session) -> None:
    run_id, ids = _approved_run(session, 10)
    service.charge_bulk(session=session, run_id=run_id, charges=[(i, 1) for i in ids[:7]])
    entry = service.release(session=session, run_id=run_id)
    assert entry is not None and entry.amount_fen == 300 and entry.pieces == 3
    again = service.release(session=session, run_id=run_id)
    assert again is not None and again.id == entry.id
    bal = service.balance(session=session, run_id=run_id)
    assert bal.reserved_fen - bal.charged_fen - bal.released_fen - bal.fees_fen == bal.outstanding_fen == 0
    assert bal.closed
    # Only what was charged stays committed.
    camp_id = entry.campaign_id
    assert service.committed(session=session, campaign_id=camp_id, periods=["2027-Q1"]) == 700


def test_sms_is_charged_by_parts(session: Session) -> None:
    f.rate_card(session, fees=[])
    camp = f.campaign(session, channel="sms")
    service.set_budget(session=session, campaign_id=camp.id, period="2027-Q1", amount_fen=1000)
    run = f.run(session, camp)
    ids = [p.id for p in f.pieces(session, run, 4)]
    reservation = service.reserve(session=session, run_id=run.id, pieces=4, parts_per_piece=3)
    assert reservation.amount_fen == 4 * 3 * 5
    n = service.charge_bulk(session=session, run_id=run.id, charges=[(ids[0], 1), (ids[1], 2), (ids[2], 3)])
    assert n == 3
    with pytest.raises(InputError, match=r"allows 1\.\.3"):
        service.charge(session=session, run_id=run.id, piece_id=ids[3], units=4)
    bal = service.balance(session=session, run_id=run.id)
    assert (bal.charged_units, bal.charged_fen) == (6, 30)
    assert service.release(session=session, run_id=run.id).amount_fen == 30  # type: ignore[union-attr]


def test_fixed_fees_are_charged_once_per_run_with_waivers_shown(session: Session) -> None:
    fees = [
        FeeLine("名址使用费", per_piece_fen=10, waived=True),
        FeeLine("设计费", fixed_fen=50000),
        FeeLine("版面设计费", fixed_fen=20000, waived=True),
    ]
    run_id, ids = _approved_run(session, 5, fees=fees)
    bal = service.balance(session=session, run_id=run_id)
    assert bal.reserved_fen == 5 * 100 + 50000
    assert (bal.fees_fen, bal.list_fen, bal.waived_fen) == (50000, 70000, 20000)
    service.charge_bulk(session=session, run_id=run_id, charges=[(i, 1) for i in ids])
    bal = service.balance(session=session, run_id=run_id)
    assert bal.charged_fen == 500 and bal.outstanding_fen == 0
    assert bal.list_fen == 70000 + 5 * 110 and bal.waived_fen == 20000 + 5 * 10


def test_charges_reconcile_to_the_rate_in_force_at_approval(session: Session) -> None:
    f.rate_card(session, letter_fen=100)
    camp = f.campaign(session)
    service.set_budget(session=session, campaign_id=camp.id, period="2027", amount_fen=1_000_000)
    q1 = f.run(
        session, camp, "2027-Q1", created=datetime(2027, 3, 31, 15, 59, tzinfo=UTC)
    )  # 23:59 in Shanghai
    q1_ids = [p.id for p in f.pieces(session, q1, 40)]
    service.reserve(session=session, run_id=q1.id, pieces=40)
    # The price goes up from April; Q1's run keeps the price it was approved at.
    f.rate_card(
        session,
        effective_from=date(2027, 4, 1),
        letter_fen=130,
        fees=[FeeLine("名址使用费", per_piece_fen=7)],
    )
    q2 = f.run(
        session, camp, "2027-Q2", created=datetime(2027, 3, 31, 16, 0, tzinfo=UTC)
    )  # 00:00 Apr 1 local
    q2_ids = [p.id for p in f.pieces(session, q2, 25)]
    service.reserve(session=session, run_id=q2.id, pieces=25)
    service.charge_bulk(session=session, run_id=q1.id, charges=[(i, 1) for i in q1_ids])
    service.charge_bulk(session=session, run_id=q2.id, charges=[(i, 1) for i in q2_ids])
    for run, rate in ((q1, 100), (q2, 137)):
        charged = session.scalar(
            select(func.sum(LedgerEntry.amount_fen)).where(
                LedgerEntry.run_id == run.id, LedgerEntry.kind == "charge"
            )
        )
        assert charged == service.produced_pieces(session=session, run_id=run.id) * rate
    assert service.balance(session=session, run_id=q2.id).outstanding_fen == 0


def test_refund_only_when_the_offer_says_so(session: Session) -> None:
    run_id, ids = _approved_run(session, 3)
    service.charge(session=session, run_id=run_id, piece_id=ids[0])
    assert service.refund(session=session, run_id=run_id, piece_id=ids[0], reason="退回") is None

    run_id, ids = _approved_run(session, 3, refund_undeliverable=True)
    service.charge_bulk(session=session, run_id=run_id, charges=[(i, 1) for i in ids])
    entry = service.refund(session=session, run_id=run_id, piece_id=ids[1], reason="地址不详，退回")
    assert entry is not None and entry.amount_fen == 100 and entry.waived_fen == 23
    assert service.refund(session=session, run_id=run_id, piece_id=ids[1], reason="again").id == entry.id  # type: ignore[union-attr]
    service.release(session=session, run_id=run_id)
    bal = service.balance(session=session, run_id=run_id)
    assert (bal.refunded_pieces, bal.net_fen) == (1, 200)
    assert service.committed(session=session, campaign_id=entry.campaign_id, periods=["2027-Q1"]) == 200
    unrun, unids = _approved_run(session, 1, refund_undeliverable=True)
    with pytest.raises(StateError, match="never charged"):
        service.refund(session=session, run_id=unrun, piece_id=unids[0], reason="x")


def test_adjustments_need_a_reason_and_count_against_the_budget(session: Session) -> None:
    f.rate_card(session)
    camp = f.campaign(session)
    service.set_budget(session=session, campaign_id=camp.id, period="2027", amount_fen=1000)
    with pytest.raises(InputError, match="reason"):
        service.adjust(session=session, campaign_id=camp.id, amount_fen=100, reason=" ")
    service.adjust(session=session, campaign_id=camp.id, amount_fen=300, reason="邮资补差", period="2027-Q1")
    service.adjust(session=session, campaign_id=camp.id, amount_fen=-100, reason="credit", period="2027-Q2")
    assert service.committed(session=session, campaign_id=camp.id, periods=year_periods("2027")) == 200
    with pytest.raises(BudgetExceeded, match=r"by ¥1\.00: it would take 1 fewer pieces \(at most 8\)"):
        service.reserve(session=session, run_id=f.run(session, camp, "2027-Q3").id, pieces=9)
