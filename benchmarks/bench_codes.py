"""Benchmark: issuing 1,000,000 redemption codes for one run, and looking codes up at the counter.

Creates a scratch PostgreSQL database, applies the migrations, makes one run of N pieces in SQL
(generate_series), then times `codes.issue` (the bulk insert when a run's pieces are frozen), checks the
codes are distinct, and times the counter's look-up (`offers.redeem`: a code that exists and is recorded, one
that does not exist and is audited) and the bare SELECT by code, each over random samples.
Run: flock /tmp/outreach-heavy.lock .venv/bin/python benchmarks/bench_codes.py [--pieces N] [--lookups N]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from datetime import date

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from outreach import db
from outreach.accounts import audit
from outreach.offers import codes
from outreach.offers import service as offers
from outreach.offers.models import AdBooking, RedemptionCode

ADMIN_URL = os.environ.get("OUTREACH_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

SETUP = [
    """INSERT INTO units (key, name, kind, township, address, postcode, created_at, updated_at)
       VALUES ('bench-u', '尤溪县城关镇第一纺织有限公司', '企业', '城关镇', '人民路1号', '365100',
               now(), now())""",
    """INSERT INTO workers (key, row_hash, name, gender, birth_year, hardship, migrant, consent_sms,
                            mail_opt_out, unit_id, created_at, updated_at)
       SELECT 'bench-w-' || g, md5(g::text), '职工' || g, 'F', 1960 + g % 40, false, false, false, false,
              (SELECT min(id) FROM units), now(), now()
       FROM generate_series(1, :pieces) AS g""",
    """INSERT INTO audiences (name, expression, created_at, updated_at)
       VALUES ('bench', 'gender = ''F''', now(), now())""",
    """INSERT INTO campaigns (name, channel, audience_id, kit, rate_card_code, schedule, batch_size, state,
                              created_at, updated_at)
       VALUES ('bench', 'letter', (SELECT min(id) FROM audiences), 'qiaojiaren', 'rc', 'manual', 1000,
               'active', now(), now())""",
    """INSERT INTO runs (campaign_id, period, state, piece_count, batch_size, created_at, redispatches)
       VALUES ((SELECT min(id) FROM campaigns), '2027-Q1', 'rendering', :pieces, 1000, now(), 0)""",
    """INSERT INTO pieces (run_id, seq, worker_id, name, gender, unit_name, township, address, postcode,
                           state)
       SELECT (SELECT min(id) FROM runs), row_number() OVER (ORDER BY id), id, name, 'F',
              '尤溪县城关镇第一纺织有限公司', '城关镇', '人民路1号', '365100', 'rendered'
       FROM workers""",
    """INSERT INTO organisations (kind, name, active, created_at)
       VALUES ('merchant', '尤溪美容院', true, now())""",
]


def build(engine: Engine, pieces: int) -> int:
    """One run of `pieces` rendered pieces and a merchant's booking of its period; returns the run id."""
    with Session(engine) as session:
        started = time.perf_counter()
        for statement in SETUP:
            session.execute(text(statement), {"pieces": pieces})
        run_id = int(session.execute(text("SELECT min(id) FROM runs")).scalar_one())
        session.add(
            AdBooking(
                campaign_id=int(session.execute(text("SELECT min(id) FROM campaigns")).scalar_one()),
                period="2027-Q1",
                slot="insert-1",
                merchant_id=int(session.execute(text("SELECT min(id) FROM organisations")).scalar_one()),
                offer_text="凭函到店护理八折",
                valid_from=date(2027, 3, 1),
                valid_until=date(2027, 5, 31),
                fee_fen=0,
                artwork=b"-",
                artwork_name="ad.jpg",
                artwork_sha256="0" * 64,
            )
        )
        session.commit()
        print(f"made a run of {pieces:,} pieces in {time.perf_counter() - started:.1f} s")
    return run_id


def issue(engine: Engine, run_id: int, pieces: int) -> None:
    with Session(engine) as session:
        started = time.perf_counter()
        issued = codes.issue(session=session, run_id=run_id)
        session.commit()
        took = time.perf_counter() - started
        distinct = session.scalar(select(func.count(func.distinct(RedemptionCode.code))))
    assert issued == pieces == distinct, (issued, pieces, distinct)
    print(f"issued {issued:,} codes in {took:.2f} s: {issued / took:,.0f} codes/s; {distinct:,} distinct")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE redemption_codes"))


def _stats(name: str, times: list[float]) -> None:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[int(len(ms) * 0.95) - 1]
    print(
        f"{name:<44} n={len(ms):>5}  median {statistics.median(ms):6.3f} ms  p95 {p95:6.3f} ms  "
        f"max {ms[-1]:6.3f} ms"
    )


def lookups(engine: Engine, run_id: int, n: int) -> None:
    rng = random.Random(7)
    with Session(engine) as session:
        every = session.scalars(select(RedemptionCode.code).where(RedemptionCode.run_id == run_id)).all()
        merchant_id = int(session.execute(text("SELECT min(id) FROM organisations")).scalar_one())
    known = rng.sample(every, n)
    taken = set(every)
    unknown = [c for c in codes.generate(n * 2) if c not in taken][:n]
    # No account: the guessing throttle (per account) would stop the unknown codes after ten.
    who = audit.Actor(username="bench", address="bench", organisation_id=merchant_id)
    day = date(2027, 3, 15)
    with Session(engine) as session:
        times = []
        for code in known:
            started = time.perf_counter()
            session.scalar(select(RedemptionCode.id).where(RedemptionCode.code == code))
            times.append(time.perf_counter() - started)
        _stats("SELECT by code (index)", times)
        for label, sample, outcome in (
            ("redeem(): a code that exists, recorded", known, "recorded"),
            ("redeem(): the same code again", known, "already"),
            ("redeem(): a code that does not exist", unknown, "unknown"),
        ):
            times = []
            for code in sample:
                started = time.perf_counter()
                said = offers.redeem(
                    session=session, actor=who, merchant_id=merchant_id, typed=code, today=day
                )
                times.append(time.perf_counter() - started)
                assert said.outcome == outcome, (said.outcome, outcome)
            session.commit()
            _stats(label, times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pieces", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    args = parser.parse_args()
    # The machine is shared: its load says how far these times are from an idle one's.
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with db.scratch_database(ADMIN_URL, prefix="outreach_bench_codes") as url:
        engine = db.make_engine(url)
        db.upgrade(engine)
        run_id = build(engine, args.pieces)
        issue(engine, run_id, args.pieces)
        lookups(engine, run_id, args.lookups)
        engine.dispose()
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
