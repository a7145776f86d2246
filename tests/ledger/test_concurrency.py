"""Budgets under racing reservations and charges, with real concurrent transactions on PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from outreach import db
from outreach.errors import BudgetExceeded
from outreach.ledger import service
from outreach.ledger.models import LedgerEntry
from tests.ledger import factories as f

PERIODS = ["2027", "2027-Q1", "2027-Q2", "2027-Q3", "2027-Q4"]


@pytest.fixture
def slow_reservations(committed_engine: Engine) -> Iterator[None]:
    """Widens the race: every reserve INSERT waits a moment, as a loaded server would."""

    def pause(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if statement.startswith("INSERT INTO ledger_entries") and "reserve" in str(params):
            time.sleep(0.05)

    event.listen(committed_engine, "before_cursor_execute", pause)
    yield
    event.remove(committed_engine, "before_cursor_execute", pause)


def _setup(engine: Engine, budget_fen: int) -> tuple[int, list[int]]:
    with db.session_scope(engine) as session:
        f.rate_card(session)
        camp = f.campaign(session)
        service.set_budget(session=session, campaign_id=camp.id, period="2027", amount_fen=budget_fen)
        runs = [f.run(session, camp, p).id for p in PERIODS]
        return camp.id, runs


def _race(engine: Engine, jobs: list[Callable[[], object]]) -> list[object]:
    """Runs each job in its own thread (own connection, own transaction), all released at once."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = jobs[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _reserve(engine: Engine, run_id: int, pieces: int) -> Callable[[], object]:
    def job() -> object:
        with db.session_scope(engine) as session:
            return service.reserve(session=session, run_id=run_id, pieces=pieces).amount_fen

    return job


@pytest.mark.postgres
def test_racing_reservations_never_overspend(committed_engine: Engine, slow_reservations: None) -> None:
    # Five runs of 100 pieces (¥100 each) race for a ¥250 year budget: exactly two may win.
    campaign_id, runs = _setup(committed_engine, 25000)
    results = _race(committed_engine, [_reserve(committed_engine, r, 100) for r in runs])
    won = [r for r in results if r == 10000]
    lost = [r for r in results if isinstance(r, BudgetExceeded)]
    assert (len(won), len(lost)) == (2, 3), results
    with db.session_scope(committed_engine) as session:
        total = service.committed(session=session, campaign_id=campaign_id, periods=PERIODS)
        assert total == 20000 <= 25000


@pytest.mark.postgres
def test_racing_budget_cut_and_reservation(committed_engine: Engine, slow_reservations: None) -> None:
    # Finance cuts the budget while a run reserves: the cut or the reservation is refused, never both in.
    campaign_id, runs = _setup(committed_engine, 20000)

    def cut() -> object:
        with db.session_scope(committed_engine) as session:
            return service.set_budget(
                session=session, campaign_id=campaign_id, period="2027", amount_fen=5000
            )

    results = _race(committed_engine, [_reserve(committed_engine, runs[1], 100), cut])
    with db.session_scope(committed_engine) as session:
        amount = service.budgets(session=session, campaign_id=campaign_id)[0].amount_fen
        total = service.committed(session=session, campaign_id=campaign_id, periods=PERIODS)
    assert amount is not None and total <= amount, results
    assert sum(isinstance(r, Exception) for r in results) == 1, results


@pytest.mark.postgres
def test_racing_reservations_of_the_same_run_book_once(committed_engine: Engine) -> None:
    _, runs = _setup(committed_engine, 100000)
    results = _race(committed_engine, [_reserve(committed_engine, runs[1], 100) for _ in range(4)])
    assert results == [10000] * 4
    with db.session_scope(committed_engine) as session:
        assert session.scalar(select(func.count()).where(LedgerEntry.kind == "reserve")) == 1


@pytest.mark.postgres
def test_retried_chunks_racing_charge_each_piece_once(committed_engine: Engine) -> None:
    _, runs = _setup(committed_engine, 10_000_000)
    with db.session_scope(committed_engine) as session:
        run = session.get(f.Run, runs[1])
        assert run is not None
        ids = [p.id for p in f.pieces(session, run, 2000)]
        service.reserve(session=session, run_id=run.id, pieces=2000)

    def charge(chunk: list[int]) -> Callable[[], object]:
        def job() -> object:
            with db.session_scope(committed_engine) as session:
                return service.charge_bulk(session=session, run_id=runs[1], charges=[(i, 1) for i in chunk])

        return job

    # Four workers, each with an overlapping half of the pieces (as redelivered tasks would be).
    chunks = [ids[:1000], ids[500:1500], ids[1000:], ids[:2000]]
    results = _race(committed_engine, [charge(c) for c in chunks])
    assert all(isinstance(r, int) for r in results), results
    assert sum(r for r in results if isinstance(r, int)) == 2000
    with db.session_scope(committed_engine) as session:
        bal = service.balance(session=session, run_id=runs[1])
        assert (bal.charged_pieces, bal.charged_fen, bal.outstanding_fen) == (2000, 200000, 0)


def test_reservations_one_after_another_never_overspend(committed_engine: Engine) -> None:
    # The same contest as above, serially (the embedded SQLite runs one writer at a time).
    campaign_id, runs = _setup(committed_engine, 25000)
    outcomes = []
    for r in runs:
        try:
            outcomes.append(_reserve(committed_engine, r, 100)())
        except BudgetExceeded as exc:
            outcomes.append(exc)
    assert [o for o in outcomes if not isinstance(o, Exception)] == [10000, 10000]
    with db.session_scope(committed_engine) as session:
        assert service.committed(session=session, campaign_id=campaign_id, periods=PERIODS) == 20000
