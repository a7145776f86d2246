"""Benchmark: time to first byte of the audience page's live count fragment on 1,000,000 workers.

Creates a scratch PostgreSQL database with the audience benchmark's registry (generate_series, ANALYZE), a
planner with an API token, starts `uvicorn outreach.web.app:create_app` in a child process, then requests
GET /audiences/live?expression=... (what htmx asks for while the planner types: the count, breakdowns by
township and unit kind, how many each channel reaches, the warnings and a sample) one at a time, cycling
through the expressions, and prints the median and p95 time to first byte, overall and per expression.
Run: flock /tmp/outreach-heavy.lock .venv/bin/python benchmarks/bench_pages.py [--workers N] [--requests N]
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import tempfile
import time
from urllib.parse import quote

from bench_audience import ADMIN_URL, build  # type: ignore[import-not-found]  # (same folder)
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from webserver import serve  # type: ignore[import-not-found]  # (same folder)

from outreach import db
from outreach.accounts import tokens, users
from outreach.accounts.models import Organisation

PASSWORD = "benchmark password"
# What a planner types: the 俏佳人 audience, then narrower and broader ones, and a value that matches no one.
EXPRESSIONS = [
    "性别 = '女'",
    "性别 = '女' and 年龄 between 18 and 60",
    "性别 = '女' and 乡镇 = '城关镇'",
    "unit.kind in ('企业', '事业单位') and hardship",
    "乡镇 = '城关'",
    "not (category = '公务员') and unit.name contains '纺织'",
]


def planner_token(engine: Engine) -> str:
    """A union with a planner account and her API token."""
    with Session(engine) as session, session.begin():
        union = Organisation(kind="union", name="尤溪县总工会", active=True)
        session.add(union)
        session.flush()
        planner = users.add(
            session=session, username="planner", password=PASSWORD, role="planner", organisation=union
        )
        return tokens.issue(session=session, account=planner, name="bench")[1]


def first_byte(conn: http.client.HTTPConnection, path: str, token: str) -> tuple[float, int, bytes]:
    """Seconds from sending the request to its first byte of answer; the status; the body."""
    started = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()  # returns once the status line and headers have arrived
    elapsed = time.perf_counter() - started
    return elapsed, response.status, response.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with (
        db.scratch_database(ADMIN_URL, prefix="outreach_bench_pages") as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        engine = db.get_engine(url)
        db.upgrade(engine)
        build(engine, args.workers)
        token = planner_token(engine)
        env = {**os.environ, "OUTREACH_DATABASE_URL": url, "OUTREACH_DATA_DIR": tmp}
        env.pop("OUTREACH_BROKER_URL", None)
        with serve(env) as port:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            # One warm-up request per expression (connection pool, statistics, plan caches), not counted.
            for expression in EXPRESSIONS:
                _elapsed, status, body = first_byte(
                    conn, f"/audiences/live?expression={quote(expression)}", token
                )
                if status != 200 or b'class="total"' not in body:
                    raise RuntimeError(f"{expression}: HTTP {status}: {body[:300]!r}")
            times: dict[str, list[float]] = {e: [] for e in EXPRESSIONS}
            for i in range(args.requests):
                expression = EXPRESSIONS[i % len(EXPRESSIONS)]
                elapsed, status, _body = first_byte(
                    conn, f"/audiences/live?expression={quote(expression)}", token
                )
                if status != 200:
                    raise RuntimeError(f"{expression}: HTTP {status}")
                times[expression].append(elapsed)
            conn.close()
    everything = [t for ts in times.values() for t in ts]
    print(f"GET /audiences/live on {args.workers:,} workers, {len(everything)} requests, one at a time")
    for expression, ts in times.items():
        print(
            f"  {expression:<60} median {statistics.median(ts) * 1000:>7.1f} ms"
            f"  max {max(ts) * 1000:>7.1f} ms"
        )
    p95 = statistics.quantiles(everything, n=20, method="inclusive")[18]
    print(
        f"time to first byte: median {statistics.median(everything) * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms, max {max(everything) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
