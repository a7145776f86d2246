"""Charges 1,000,000 pieces in bulk on PostgreSQL and prints entries/s, then reconciles and re-charges.

Run: flock /tmp/outreach-heavy.lock .venv/bin/python benchmarks/bench_ledger.py [--pieces N] [--chunk N]
Uses OUTREACH_DATABASE_URL's server (default postgresql+psycopg://postgres@127.0.0.1:5432/test) and a scratch
database it creates and drops.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, date, datetime

from sqlalchemy import Engine, func, select, text

from outreach import db
from outreach.campaigns.models import Campaign
from outreach.ledger import service
from outreach.ledger.models import LedgerEntry
from outreach.ledger.schemas import FeeLine
from outreach.runs.models import Run

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def seed(engine: Engine, pieces: int) -> tuple[int, list[int]]:
    """A campaign, a budget, a run and `pieces` workers and pieces, made in SQL (seconds, not minutes)."""
    with db.session_scope(engine) as session:
        service.set_rate_card(
            session=session,
            code="qiaojiaren",
            effective_from=date(2027, 1, 1),
            letter_fen=100,
            sms_part_fen=5,
            fees=[
                FeeLine("名址使用费", per_piece_fen=10, waived=True),
                FeeLine("折叠封装费", per_piece_fen=8, waived=True),
            ],
        )
        session.execute(
            text(
                "INSERT INTO audiences (name, expression, created_at, updated_at) "
                "VALUES ('all', 'true', now(), now())"
            )
        )
        camp = Campaign(
            name="俏佳人", channel="letter", audience_id=1, kit="qiaojiaren", rate_card_code="qiaojiaren"
        )
        session.add(camp)
        session.flush()
        service.set_budget(session=session, campaign_id=camp.id, period="2027", amount_fen=pieces * 100)
        run = Run(campaign_id=camp.id, period="2027-Q1", created_at=datetime(2027, 1, 10, tzinfo=UTC))
        session.add(run)
        session.flush()
        session.execute(
            text(
                "INSERT INTO units (key, name, kind, township, address, postcode, created_at, updated_at) "
                "VALUES ('u1', '县总工会', '机关', '城关镇', '人民路1号', '123456', now(), now())"
            )
        )
        session.execute(
            text(
                "INSERT INTO workers (key, name, gender, unit_id, row_hash, hardship, migrant, consent_sms, "
                "mail_opt_out, created_at, updated_at) "
                "SELECT 'w' || g, '职工' || g, 'F', 1, 'x', false, false, false, false, now(), now() "
                "FROM generate_series(1, :n) AS g"
            ),
            {"n": pieces},
        )
        session.execute(
            text(
                "INSERT INTO pieces (run_id, seq, worker_id, name, gender, unit_name, state) "
                "SELECT :run, w.id, w.id, w.name, 'F', '县总工会', 'rendered' FROM workers w"
            ),
            {"run": run.id},
        )
        service.reserve(session=session, run_id=run.id, pieces=pieces)
    # Autovacuum would analyse a million fresh rows soon; do it now so the plan is the steady-state one.
    with engine.connect() as conn:
        conn.execute(text("ANALYZE workers, pieces, ledger_entries"))
        conn.commit()
    with db.session_scope(engine) as session:
        ids = list(
            session.scalars(text("SELECT id FROM pieces WHERE run_id = :r ORDER BY seq"), {"r": run.id})
        )
        return run.id, ids


def charge_all(engine: Engine, run_id: int, ids: list[int], chunk: int) -> tuple[int, float]:
    """Charges every piece, one transaction and one INSERT per chunk (as render tasks do)."""
    new = 0
    start = time.perf_counter()
    for i in range(0, len(ids), chunk):
        with db.session_scope(engine) as session:
            new += service.charge_bulk(
                session=session, run_id=run_id, charges=[(p, 1) for p in ids[i : i + chunk]]
            )
    return new, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pieces", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=5000)
    args = parser.parse_args()
    admin_url = os.environ.get("OUTREACH_DATABASE_URL", DEFAULT_URL)
    with db.scratch_database(admin_url, prefix="outreach_bench_ledger") as url:
        engine = db.get_engine(url)
        db.upgrade(engine)
        t0 = time.perf_counter()
        run_id, ids = seed(engine, args.pieces)
        print(f"seeded {len(ids):,} pieces in {time.perf_counter() - t0:.1f} s")
        new, seconds = charge_all(engine, run_id, ids, args.chunk)
        print(
            f"charged {new:,} pieces in {seconds:.2f} s: {new / seconds:,.0f} entries/s "
            f"(chunks of {args.chunk:,})"
        )
        with db.session_scope(engine) as session:
            total = session.scalar(
                select(func.sum(LedgerEntry.amount_fen)).where(
                    LedgerEntry.run_id == run_id, LedgerEntry.kind == "charge"
                )
            )
            produced = service.produced_pieces(session=session, run_id=run_id)
            bal = service.balance(session=session, run_id=run_id)
        ok = total == produced * 100 and bal.outstanding_fen == 0 and bal.waived_fen == produced * 18
        print(
            f"reconciliation: charges {total:,} fen = {produced:,} pieces x 100 fen: "
            f"{'OK' if ok else 'MISMATCH'}"
        )
        again, seconds = charge_all(engine, run_id, ids, args.chunk)
        print(
            f"charging again added {again} entries in {seconds:.2f} s "
            f"({'OK' if again == 0 else 'DOUBLE CHARGE'})"
        )
        if not ok or again:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
