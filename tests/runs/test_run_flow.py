"""A whole run on the embedded path (tasks in this process): freeze, render, assemble, ledger."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from outreach.campaigns import service as campaigns
from outreach.campaigns.models import Campaign
from outreach.errors import BudgetExceeded
from outreach.ledger import service as ledger
from outreach.ledger.models import LedgerEntry
from outreach.render import render_letters
from outreach.runs import service as runs
from outreach.runs.models import Batch, Piece, Run
from outreach.settings import get_settings
from tests.runs.world import committed_world
from workers.local import run_locally


def start(engine: Engine, campaign: str, period: str = "2027-Q1") -> int:
    with Session(engine) as session, session.begin():
        c = campaigns.get_by_name(session=session, name=campaign)
        return runs.start(session=session, campaign=c, period=period).id


def files_of(engine: Engine, run_id: int) -> dict[str, str]:
    root = get_settings().resolved_batch_dir
    with Session(engine) as session:
        out = {}
        for b in session.scalars(select(Batch).where(Batch.run_id == run_id)):
            for meta in b.files.values():
                path = root / str(meta["key"])
                out[str(meta["key"])] = hashlib.sha256(path.read_bytes()).hexdigest()
        return out


def test_a_whole_run_freezes_renders_assembles_and_charges(committed_engine: Engine) -> None:
    world = committed_world(committed_engine, women=25, batch_size=10)
    run_id = start(committed_engine, world.campaign)
    run_locally(run_id)
    with Session(committed_engine) as session:
        run = session.get(Run, run_id)
        assert run is not None and run.state == "done"
        assert run.piece_count == 25 and run.batch_count == 3
        states = dict(
            session.execute(
                select(Piece.state, func.count()).where(Piece.run_id == run_id).group_by(Piece.state)
            ).all()
        )
        assert states == {"rendered": 25}
        # Letter pieces never keep a mobile.
        assert (
            session.scalar(select(func.count()).where(Piece.run_id == run_id, Piece.mobile.is_not(None))) == 0
        )
        bal = ledger.balance(session=session, run_id=run_id)
        assert bal.charged_fen == 25 * 100
        assert bal.outstanding_fen == 0
        batches = session.scalars(select(Batch).where(Batch.run_id == run_id).order_by(Batch.seq)).all()
        assert [b.pieces for b in batches] == [10, 10, 5]
    root = get_settings().resolved_batch_dir
    first = batches[0]
    assert set(first.files) == {
        "envelopes.pdf",
        "letters.pdf",
        "manifest.csv",
        "ticket.json",
        "ticket.pdf",
        "SHA256SUMS",
    }
    manifest = list(
        csv.DictReader(
            (root / str(first.files["manifest.csv"]["key"])).read_text(encoding="utf-8-sig").splitlines()
        )
    )
    assert [r["sequence"] for r in manifest] == [str(i) for i in range(1, 11)]
    assert manifest[0]["piece"] == f"R{run_id:06d}-0000001"
    # Presorted: postcodes never go down within the run.
    assert [r["postcode"] for r in manifest] == sorted(r["postcode"] for r in manifest)
    text = (root / str(first.files["manifest.csv"]["key"])).read_text(encoding="utf-8-sig")
    assert "139" not in text  # no mobiles reach the print shop
    ticket = json.loads((root / str(first.files["ticket.json"]["key"])).read_text(encoding="utf-8"))
    assert ticket["pieces"] == 10 and ticket["envelope"].startswith("DL")
    env_key = str(first.files["envelopes.pdf"]["key"])
    assert ticket["checksums"]["envelopes.pdf"] == hashlib.sha256((root / env_key).read_bytes()).hexdigest()
    sums = (root / str(first.files["SHA256SUMS"]["key"])).read_text()
    assert f"{ticket['checksums']['letters.pdf']}  letters.pdf" in sums


def test_resume_and_restart_of_a_finished_run_change_nothing(committed_engine: Engine) -> None:
    world = committed_world(committed_engine, women=12, batch_size=5)
    run_id = start(committed_engine, world.campaign)
    run_locally(run_id)
    before = files_of(committed_engine, run_id)
    with Session(committed_engine) as session:
        entries = session.scalar(select(func.count()).select_from(LedgerEntry))
    run_locally(run_id)
    assert start(committed_engine, world.campaign) == run_id  # one run per campaign and period
    assert files_of(committed_engine, run_id) == before
    with Session(committed_engine) as session:
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == entries


def test_an_interrupted_run_resumes_to_the_same_bytes(committed_engine: Engine) -> None:
    world = committed_world(committed_engine, women=12, batch_size=5)
    run_id = start(committed_engine, world.campaign)
    run_locally(run_id)
    reference = files_of(committed_engine, run_id)
    root = get_settings().resolved_batch_dir
    # Make it as if the run had stopped after its first batch: later pieces pending, their charges never made.
    with Session(committed_engine) as session, session.begin():
        run = session.get(Run, run_id)
        assert run is not None
        run.state = "rendering"
        for piece in session.scalars(select(Piece).where(Piece.run_id == run_id, Piece.seq > 5)):
            piece.state = "pending"
        session.execute(
            delete(LedgerEntry).where(
                LedgerEntry.run_id == run_id,
                LedgerEntry.kind.in_(("charge", "release")),
                LedgerEntry.piece_id.in_(select(Piece.id).where(Piece.run_id == run_id, Piece.seq > 5))
                | (LedgerEntry.kind == "release"),
            )
        )
        session.execute(delete(Batch).where(Batch.run_id == run_id))
    for key in reference:
        if "batch-0001" not in key:
            (root / key).unlink()
    with Session(committed_engine) as session:
        assert runs.pending_batches(session=session, run=session.get(Run, run_id)) == [2, 3]  # type: ignore[arg-type]
    run_locally(run_id)
    assert files_of(committed_engine, run_id) == reference
    with Session(committed_engine) as session:
        assert ledger.balance(session=session, run_id=run_id).charged_fen == 12 * 100


def test_a_run_over_budget_does_not_start(committed_engine: Engine) -> None:
    world = committed_world(committed_engine, women=30, budget_fen=20 * 100)
    with pytest.raises(BudgetExceeded, match="超出"), Session(committed_engine) as session, session.begin():
        c = campaigns.get_by_name(session=session, name=world.campaign)
        runs.start(session=session, campaign=c, period="2027-Q1")
    with Session(committed_engine) as session:
        assert session.scalar(select(func.count()).select_from(Run)) == 0
        assert session.scalar(select(func.count()).select_from(Piece)) == 0


def test_unapproved_period_waits_and_says_why(committed_engine: Engine) -> None:
    world = committed_world(committed_engine, women=5)
    with Session(committed_engine) as session, session.begin():
        c = campaigns.get_by_name(session=session, name=world.campaign)
        run = runs.start(session=session, campaign=c, period="2027-Q2")
        assert run.state == "waiting" and "2027-Q2 的内容尚未批准" in (run.note or "")
        campaigns.approve(session=session, campaign=c, period="2027-Q2")
        again = runs.start(session=session, campaign=c, period="2027-Q2")
        assert again.id == run.id and again.state == "rendering" and again.piece_count == 5


def test_a_piece_no_font_can_draw_fails_alone(committed_engine: Engine, tmp_path: Path) -> None:
    # U+2A6D6 (CJK Extension B) is in none of the fonts installed here.
    world = committed_world(
        committed_engine, women=6, batch_size=10, extra_names=("王\U0002a6d6",), approve_anyway=True
    )
    run_id = start(committed_engine, world.campaign)
    run_locally(run_id)
    with Session(committed_engine) as session:
        st = runs.status(session=session, run_id=run_id)
        assert st.run.state == "done" and st.rendered == 5 and st.failed == 1
        assert "\U0002a6d6" in st.errors[0]
        assert ledger.balance(session=session, run_id=run_id).charged_fen == 5 * 100


def test_an_sms_run_writes_gateway_batches_and_charges_parts(committed_engine: Engine) -> None:
    world = committed_world(
        committed_engine, name="助学短信", women=7, kit="hardship_sms", channel="sms", batch_size=5
    )
    run_id = start(committed_engine, world.campaign)
    run_locally(run_id)
    root = get_settings().resolved_batch_dir
    with Session(committed_engine) as session:
        pieces = session.scalars(select(Piece).where(Piece.run_id == run_id).order_by(Piece.seq)).all()
        assert all(p.state == "rendered" and p.mobile and p.parts for p in pieces)
        parts = sum(p.parts or 0 for p in pieces)
        assert ledger.balance(session=session, run_id=run_id).charged_fen == parts * 5
        batches = session.scalars(select(Batch).where(Batch.run_id == run_id).order_by(Batch.seq)).all()
    assert [b.pieces for b in batches] == [5, 2]
    rows = list(
        csv.DictReader(
            (root / str(batches[0].files["sms.csv"]["key"])).read_text(encoding="utf-8").splitlines()
        )
    )
    assert len(rows) == 5
    assert rows[0]["content"].startswith("【尤溪县总工会】") and rows[0]["content"].endswith("拒收请回复R")
    assert rows[0]["mobile"].startswith("139") and int(rows[0]["parts"]) >= 1
    ticket = json.loads((root / str(batches[0].files["ticket.json"]["key"])).read_text(encoding="utf-8"))
    assert ticket["send_window"].startswith("08:00-21:00")


def test_local_processes_render_the_same_files_as_one(committed_engine: Engine) -> None:
    world = committed_world(committed_engine, women=30, batch_size=10)
    run_id = start(committed_engine, world.campaign)
    run_locally(run_id, processes=2)
    parallel = files_of(committed_engine, run_id)
    with Session(committed_engine) as session:
        assert runs.status(session=session, run_id=run_id).rendered == 30
        run = session.get(Run, run_id)
        assert run is not None and run.state == "done"
        # Rendering a batch again in this process gives the bytes the child processes wrote.
        campaign = session.get(Campaign, run.campaign_id)
        assert campaign is not None
        batch = runs.batch_pieces(session=session, run=run, batch_seq=2)
        kit, codes, context = runs.batch_content(session=session, campaign=campaign, run=run, pieces=batch)
        out = get_settings().data_dir / "again"
        out.mkdir(exist_ok=True)
        render_letters(
            kit,
            [runs.recipient(p, code=codes.get(p.seq)) for p in batch],
            envelopes=out / "e.pdf",
            letters=out / "l.pdf",
            context=context,
        )
    key = f"run-{run_id:06d}/batch-0002/envelopes.pdf"
    assert parallel[key] == hashlib.sha256((out / "e.pdf").read_bytes()).hexdigest()


@pytest.mark.postgres
def test_two_racing_starts_make_one_run(committed_engine: Engine) -> None:
    import threading

    world = committed_world(committed_engine, women=8)
    ids: list[int] = []
    barrier = threading.Barrier(2)

    def racer() -> None:
        with Session(committed_engine) as session, session.begin():
            c = campaigns.get_by_name(session=session, name=world.campaign)
            barrier.wait()
            ids.append(runs.start(session=session, campaign=c, period="2027-Q1").id)

    threads = [threading.Thread(target=racer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 2 and ids[0] == ids[1]
    with Session(committed_engine) as session:
        assert session.scalar(select(func.count()).select_from(Run)) == 1
        assert session.scalar(select(func.count()).select_from(Piece)) == 8
