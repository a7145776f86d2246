"""What the print shop reports back, returned letters, and deleting batch files after retention."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from audiences import service as audiences
from audiences.models import Suppression
from outreach.accounts import service as accounts
from outreach.campaigns import service as campaigns
from outreach.cli import app
from outreach.db import utcnow
from outreach.errors import Conflict, InputError, NotFound, StateError
from outreach.ledger import service as ledger
from outreach.runs import printshop, retention
from outreach.runs import service as runs
from outreach.runs.models import Batch, Piece, piece_number
from outreach.settings import get_settings
from outreach.storage import Storage, get_storage
from tests.runs.world import build_world, committed_world
from workers.local import run_locally


def finished_run(engine: Engine, **kwargs: object) -> int:
    world = committed_world(engine, **kwargs)  # type: ignore[arg-type]
    with Session(engine) as session, session.begin():
        c = campaigns.get_by_name(session=session, name=world.campaign)
        run_id = runs.start(session=session, campaign=c, period="2027-Q1").id
    run_locally(run_id)
    return run_id


def read_ticket(storage: Storage, batch: Batch) -> dict[str, object]:
    with storage.open(str(batch.files["ticket.json"]["key"])) as f:
        ticket: dict[str, object] = json.loads(f.read())
    return ticket


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
        # The next run's audience no longer reaches her by letter, but still by SMS.
        assert audiences.count(session=session, expression="gender = 'F'", channel="letter").total == 5
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


def test_a_campaign_names_a_known_print_shop_or_is_refused(session: Session) -> None:
    accounts.add_organisation(session=session, kind="printshop", name="三明邮政印制中心")
    with pytest.raises(NotFound, match="三明邮政印制中心"):
        build_world(session, print_shop="没有这家印刷厂")
    with pytest.raises(Conflict):
        accounts.add_organisation(session=session, kind="printshop", name=" 三明邮政印制中心 ")
    with pytest.raises(InputError):
        accounts.add_organisation(session=session, kind="printshop", name="x" * 101)
    with pytest.raises(InputError):
        accounts.add_organisation(session=session, kind="bank", name="某银行")
    assert [o.name for o in accounts.list_organisations(session=session, kind="printshop")] == [
        "三明邮政印制中心"
    ]


def test_an_unassigned_batch_is_not_handed_out_until_a_print_shop_is_named(
    committed_engine: Engine, tmp_path: Path
) -> None:
    run_id = finished_run(committed_engine, women=6, batch_size=10, print_shop=None)
    storage = get_storage()
    with Session(committed_engine) as session, session.begin():
        batch = session.scalars(select(Batch).where(Batch.run_id == run_id)).one()
        ticket = read_ticket(storage, batch)
        assert ticket["print_shop"] == "unassigned" and ticket["print_shop_id"] is None
        with pytest.raises(StateError, match="未指定印制单位"):
            printshop.download(session=session, storage=storage, batch_id=batch.id, dest=tmp_path / "x")
        with pytest.raises(StateError, match="未指定印制单位"):
            printshop.report(session=session, batch_id=batch.id, state="printed")
        assert not (tmp_path / "x").exists()
        shop = accounts.add_organisation(session=session, kind="printshop", name="三明邮政印制中心")
        campaign = campaigns.get_by_name(session=session, name="俏佳人")
        old_sums = batch.files["SHA256SUMS"]["sha256"]
        assert (
            printshop.assign(session=session, storage=storage, campaign=campaign, print_shop=shop.name) == 1
        )
        session.refresh(batch)
        ticket = read_ticket(storage, batch)
        assert (ticket["print_shop"], ticket["print_shop_id"]) == ("三明邮政印制中心", shop.id)
        assert batch.files["SHA256SUMS"]["sha256"] != old_sums
        # Another print shop may not take it; its own may.
        accounts.add_organisation(session=session, kind="printshop", name="别家印刷厂")
        with pytest.raises(StateError, match="三明邮政印制中心"):
            printshop.download(
                session=session,
                storage=storage,
                batch_id=batch.id,
                dest=tmp_path / "x",
                print_shop="别家印刷厂",
            )
        files = printshop.download(
            session=session, storage=storage, batch_id=batch.id, dest=tmp_path / "shop", print_shop=shop.name
        )
        sums = (tmp_path / "shop/SHA256SUMS").read_text(encoding="ascii")
        for path in files:
            if path.name != "SHA256SUMS":
                assert f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}" in sums
        assert batch.state == "downloaded"
        assert [b.batch.id for b in printshop.assigned_batches(session=session, print_shop=shop.name)] == [
            batch.id
        ]
        # Once a print shop holds a batch, the campaign cannot be moved to another.
        with pytest.raises(StateError, match="另一家印制单位"):
            printshop.assign(session=session, storage=storage, campaign=campaign, print_shop="别家印刷厂")


def test_printshop_commands_add_list_and_refuse_an_unassigned_download(
    committed_engine: Engine, tmp_path: Path
) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["printshop", "add", "三明邮政印制中心", "--phone", "0598-1234567"])
    assert out.exit_code == 0, out.output
    listed = json.loads(runner.invoke(app, ["printshop", "list", "--json"]).output)
    assert [(s["name"], s["phone"]) for s in listed] == [("三明邮政印制中心", "0598-1234567")]
    run_id = finished_run(committed_engine, women=3, batch_size=10, print_shop=None)
    with Session(committed_engine) as session:
        batch_id = session.scalars(select(Batch.id).where(Batch.run_id == run_id)).one()
    proc = subprocess.run(
        [sys.executable, "-m", "outreach", "printshop", "download", str(batch_id), str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "未指定印制单位" in proc.stderr and "Traceback" not in proc.stderr
    out = runner.invoke(app, ["printshop", "assign", "俏佳人", "三明邮政印制中心"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["printshop", "download", str(batch_id), str(tmp_path / "d")])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "d/envelopes.pdf").is_file()
    out = runner.invoke(app, ["printshop", "batches", "三明邮政印制中心"])
    assert out.exit_code == 0 and "俏佳人" in out.output
