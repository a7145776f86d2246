"""Benchmark: audience count + breakdown on 1,000,000 workers on PostgreSQL.

Creates a scratch database, applies the migrations, generates the registry in SQL (generate_series),
ANALYZEs, then times `count(by=unit.township)` for the issue's five expressions on no channel, mail and sms.
Run: flock /tmp/outreach-heavy.lock .venv/bin/python benchmarks/bench_audience.py [--workers N] [--explain]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import date

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from audiences.models import Unit, Worker
from audiences.service import _conditions, count
from outreach import db

ADMIN_URL = os.environ.get("OUTREACH_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
EXPRESSIONS = [
    "gender = 'F'",
    "gender = 'F' and unit.kind in ('企业', '事业单位', '机关', '学校')",
    "gender = 'F' and age between 18 and 60 and unit.township = '城关镇'",
    "hardship and consent.sms",
    "not (category = '公务员') and unit.name contains '纺织'",
]
TODAY = date(2025, 6, 1)
UNITS = 600
TOWNSHIPS = (
    *("城关镇", "西城镇", "新阳镇", "管前镇", "西滨镇", "洋中镇", "坂面镇", "联合镇"),
    *("梅仙镇", "溪尾乡", "中仙乡", "台溪乡", "八字桥乡", "汤川乡", "尤溪口镇"),
)

GENERATE_UNITS = """
INSERT INTO units (key, name, kind, industry, township, address, postcode, created_at, updated_at)
SELECT 'bench-u-' || i,
       (CAST(:townships AS text[]))[1 + i % 15]
         || CASE WHEN i % 10 = 0 THEN '纺织有限公司' ELSE '单位' END || i,
       (ARRAY['企业', '事业单位', '机关', '学校', '其他'])[1 + i % 5],
       (ARRAY['制造业', '教育', '卫生', '公共管理', '零售'])[1 + i % 5],
       (CAST(:townships AS text[]))[1 + i % 15],
       CASE WHEN i % 50 = 0 THEN NULL
            ELSE (CAST(:townships AS text[]))[1 + i % 15] || '解放路' || i || '号' END,
       '3651' || lpad((i % 15)::text, 2, '0'),
       now(), now()
FROM generate_series(1, :units) AS i
"""

# random() after setseed() in the same session: a realistic spread, the same on every run.
GENERATE_WORKERS = """
INSERT INTO workers (key, row_hash, worker_no, name, gender, birth_year, category, mobile,
                     home_address, home_postcode, hardship, migrant, consent_sms, mail_opt_out, unit_id,
                     created_at, updated_at)
SELECT 'bench-w-' || g, md5(g::text), 'G' || g, '职工' || g,
       CASE WHEN random() < 0.5 THEN 'F' ELSE 'M' END,
       1955 + floor(random() * 52)::int,
       (ARRAY['公务员', '白领', '企业职工', '教师', NULL])[1 + floor(random() * 5)::int],
       CASE WHEN random() < 0.9 THEN (13000000000 + g::bigint * 7)::text END,
       CASE WHEN g % 8 = 0 THEN '家庭住址' || g || '号' END,
       CASE WHEN g % 8 = 0 THEN '365200' END,
       random() < 0.05, random() < 0.15, random() < 0.65, random() < 0.02,
       (SELECT min(id) FROM units) + floor(random() * :units)::int,
       now(), now()
FROM generate_series(1, :workers) AS g
"""

GENERATE_SUPPRESSIONS = """
INSERT INTO suppressions (channel, reason, worker_id, mobile, created_at)
SELECT 'all', 'sms_reply', NULL, (13000000000 + g * 7 * 97)::text, now() FROM generate_series(1, :n) AS g
UNION ALL
SELECT 'letter', 'returned_mail', (SELECT min(id) FROM workers) + g * 131, NULL, now()
FROM generate_series(1, :n) AS g
UNION ALL
SELECT 'sms', 'opt_out', (SELECT min(id) FROM workers) + g * 173, NULL, now() FROM generate_series(1, :n) AS g
"""


def build(engine: Engine, workers: int) -> None:
    """Fills the scratch database with units, workers and suppressions."""
    with Session(engine) as session:
        started = time.perf_counter()
        session.execute(text(GENERATE_UNITS), {"townships": list(TOWNSHIPS), "units": UNITS})
        session.execute(text("SELECT setseed(0.42)"))
        session.execute(text(GENERATE_WORKERS), {"units": UNITS, "workers": workers})
        session.execute(text(GENERATE_SUPPRESSIONS), {"n": max(workers // 200, 1)})
        session.commit()
        print(f"generated {UNITS} units, {workers:,} workers in {time.perf_counter() - started:.1f} s")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        started = time.perf_counter()
        conn.execute(text("VACUUM ANALYZE"))
        print(f"VACUUM ANALYZE in {time.perf_counter() - started:.1f} s")


def measure(engine: Engine, repeats: int, explain: bool) -> None:
    """Times count + breakdown by township for each expression and channel."""
    print(f"{'expression':<72} {'channel':<7} {'total':>9} {'median s':>9} {'max s':>7}")
    with Session(engine) as session:
        for expression in EXPRESSIONS:
            for channel in (None, "letter", "sms"):
                times = []
                total = 0
                for _ in range(repeats):
                    started = time.perf_counter()
                    result = count(
                        session=session,
                        expression=expression,
                        channel=channel,
                        by="unit.township",
                        today=TODAY,
                    )
                    times.append(time.perf_counter() - started)
                    total = result.total
                print(
                    f"{expression:<72} {channel or '-':<7} {total:>9,} "
                    f"{statistics.median(times):>9.3f} {max(times):>7.3f}"
                )
        if explain:
            # The same statement count() runs, with its (benchmark-made) values inlined for EXPLAIN.
            for expression, channel in ((EXPRESSIONS[2], "letter"), (EXPRESSIONS[3], "sms")):
                stmt = (
                    select(Unit.township, func.count())
                    .select_from(Worker)
                    .join(Unit, Worker.unit_id == Unit.id)
                    .where(*_conditions(expression, channel, TODAY))  # type: ignore[arg-type]
                    .group_by(Unit.township)
                )
                sql = stmt.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
                plan = session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"))
                print(f"\n-- {expression} [{channel}]")
                print("\n".join(row[0] for row in plan))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    with db.scratch_database(ADMIN_URL, prefix="outreach_bench_audience") as url:
        engine = db.get_engine(url)
        db.upgrade(engine)
        build(engine, args.workers)
        measure(engine, args.repeats, args.explain)


if __name__ == "__main__":
    main()
