"""What the print shop reports back, returned letters, and deleting batch files after retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from audiences import service as audiences
from audiences.models import Suppression
from outreach.campaigns import service as campaigns
from outreach.db import utcnow
from outreach.errors import InputError, NotFound, StateError
from outreach.ledger import service as ledger
from outreach.runs import printshop, retention
from outreach.runs import service as runs
from outreach.runs.models import Batch, Piece, piece_number
from outreach.settings import get_settings
from outreach.storage import get_storage
from tests.runs.world import committed_world
from workers.local import run_locally


def finished_run(engine: Engine, **kwargs: object) -> int:
    world = committed_world(engine, **kwargs)  # type: ignore[arg-type]
    with Session(engine) as session, session.begin():
        c = campaigns.get_by_name(session=session, name=world.campaign)
        run_id = runs.start(session=session, campaign=c, period="2027-Q1").id
    run_locally(run_id)
    return run_id


def test_batch_states_only_move_forward(committed_engine: Engine) -> None:
    run_id = finished_run(committed_engine, women=6, batch_size=10)
    with Session(committed_engine) as session, session.begin():
        batch = session.scalars(select(Batch).where(Batch.run_id == run_id)).one()
        printshop.report(session=session, batch_id=batch.id, state="downloaded")
        printshop.report(session=session, batch_id=batch.id, state="mailed")
        assert batch.downloaded_at is not None and batch.mailed_at is not None
        with pytest.raises(StateError, match="不能退回"):
            printshop.report(session=session, batch_id=batch.id, state="printed")
        with pytest.raises(InputError, match="只能报告"):
            printshop.report(session=session, batch_id=batch.id, state="lost")
        with pytest.raises(NotFound):
            printshop.report(session=session, batch_id=batch.id + 99, state="printed")


def test_a_returned_letter_suppresses_mail_to_her(committed_engine: Engine) -> None:
    run_id = finished_run(committed_engine, women=6, batch_size=10)
    with Session(committed_engine) as session, session.begin():
        piece = session.scalars(select(Piece).where(Piece.run_id == run_id, Piece.seq == 3)).one()
        printshop.record_returns(session=session, numbers=[piece_number(run_id, 3)])
        suppression = session.scalars(select(Suppression)).one()
        assert (suppression.worker_id, suppression.channel, suppression.reason) == (
            piece.worker_id,
            "letter",
            "returned_mail",
        )
        # The next run's audience no longer reaches her by mail, but still by SMS.
        assert audiences.count(session=session, expression="gender = 'F'", channel="mail").total == 5
        assert audiences.count(session=session, expression="gender = 'F'", channel="sms").total == 6
        with pytest.raises(InputError, match="不是形如"):
            printshop.find_piece(session=session, number="42")
        # This rate card does not refund undeliverable pieces: the charge stands.
        assert ledger.balance(session=session, run_id=run_id).refunded_fen == 0


def test_batch_files_are_deleted_after_retention_keeping_totals(committed_engine: Engine) -> None:
    run_id = finished_run(committed_engine, women=6, batch_size=10)
    storage = get_storage()
    with Session(committed_engine) as session, session.begin():
        batch = session.scalars(select(Batch).where(Batch.run_id == run_id)).one()
        printshop.report(session=session, batch_id=batch.id, state="mailed")
        keys = [str(m["key"]) for m in batch.files.values()]
        assert all(storage.exists(k) for k in keys)
        now = utcnow()
        assert retention.purge(session=session, storage=storage, now=now) == 0  # not yet
        later = now + timedelta(days=get_settings().retention_days, seconds=1)
        assert retention.purge(session=session, storage=storage, now=later) == 1
        assert not any(storage.exists(k) for k in keys)
        assert batch.purged_at == later and batch.pieces == 6
        assert all(len(str(m["sha256"])) == 64 for m in batch.files.values())
        assert retention.purge(session=session, storage=storage, now=later) == 0
