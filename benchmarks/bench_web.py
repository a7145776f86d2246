"""Benchmark: the web service on loopback, 20 concurrent clients.

Creates a scratch PostgreSQL database with 1,000,000 workers (the audience benchmark's generator), a print
shop with its batches, starts `uvicorn outreach.web.app:create_app` in a child process, then measures
requests per second and p95 latency of POST /api/v1/audiences/count (with a breakdown by township) and of
GET /api/v1/batches, and the throughput of 10 concurrent batch-file downloads.
Run: flock /tmp/outreach-heavy.lock .venv/bin/python benchmarks/bench_web.py [--workers N] [--web-workers N]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench_audience import ADMIN_URL, build  # type: ignore[import-not-found]  # (same folder)
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from webserver import serve  # type: ignore[import-not-found]  # (same folder)

from audiences.models import Audience
from outreach import db
from outreach.accounts import tokens, users
from outreach.accounts.models import Organisation
from outreach.campaigns.models import Campaign
from outreach.runs.models import Batch, Run
from outreach.storage import LocalStorage

CLIENTS = 20
PASSWORD = "benchmark password"


def seed(engine: Engine, storage: LocalStorage, *, batches: int, download_mb: int) -> dict[str, str]:
    """Accounts (a planner, a print shop) with tokens, and a finished run of the shop's batches."""
    blob = Path(tempfile.mkstemp()[1])
    with blob.open("wb") as out:
        block = hashlib.sha256(b"x").digest() * 32768  # 1 MiB
        for _ in range(download_mb):
            out.write(block)
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    with Session(engine) as session, session.begin():
        union = Organisation(kind="union", name="尤溪县总工会", active=True)
        shop = Organisation(kind="printshop", name="尤溪邮政印务中心", active=True)
        session.add_all([union, shop])
        session.flush()
        planner = users.add(
            session=session, username="planner", password=PASSWORD, role="planner", organisation=union
        )
        printer = users.add(
            session=session, username="shop", password=PASSWORD, role="printshop", organisation=shop
        )
        found = {
            "planner": tokens.issue(session=session, account=planner, name="bench")[1],
            "shop": tokens.issue(session=session, account=printer, name="bench")[1],
        }
        audience = Audience(name="bench", expression="gender = 'F'")
        session.add(audience)
        session.flush()
        campaign = Campaign(
            name="俏佳人",
            channel="letter",
            audience_id=audience.id,
            kit="qiaojiaren",
            rate_card_code="rc",
            print_shop_id=shop.id,
        )
        session.add(campaign)
        session.flush()
        run = Run(campaign_id=campaign.id, period="2027-Q1", state="done", piece_count=batches * 1000)
        session.add(run)
        session.flush()
        for seq in range(1, batches + 1):
            key = f"run-{run.id}/batch-{seq:03d}/letters.pdf"
            if seq <= 10:
                storage.put(key, blob)
            files = {"letters.pdf": {"key": key, "sha256": digest, "bytes": download_mb << 20}}
            session.add(
                Batch(
                    run_id=run.id,
                    seq=seq,
                    first_seq=(seq - 1) * 1000 + 1,
                    last_seq=seq * 1000,
                    pieces=1000,
                    pages=2000,
                    files=files,
                )
            )
    blob.unlink()
    return found


def load(
    port: int, clients: int, requests_each: int, make: Callable[[http.client.HTTPConnection], int]
) -> tuple[float, list[float], int]:
    """`clients` threads, each with one keep-alive connection, each sending `requests_each` requests."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def client() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        mine: list[float] = []
        bad = 0
        for _ in range(requests_each):
            started = time.perf_counter()
            status = make(conn)
            mine.append(time.perf_counter() - started)
            bad += status != 200
        conn.close()
        with lock:
            latencies.extend(mine)
            errors += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies, errors


def request(method: str, path: str, token: str, body: dict[str, object] | None = None) -> Callable[..., int]:
    payload = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def send(conn: http.client.HTTPConnection) -> int:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status

    return send


def report(name: str, elapsed: float, latencies: list[float], errors: int) -> None:
    p95 = statistics.quantiles(latencies, n=100)[94]
    print(
        f"{name:<44} {len(latencies):>6} req  {len(latencies) / elapsed:>8.1f} req/s  "
        f"p50 {statistics.median(latencies) * 1000:>7.1f} ms  p95 {p95 * 1000:>7.1f} ms  errors {errors}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=1_000_000)
    parser.add_argument("--web-workers", type=int, default=2, help="uvicorn processes")
    parser.add_argument("--count-requests", type=int, default=10, help="per client")
    parser.add_argument("--list-requests", type=int, default=100, help="per client")
    parser.add_argument("--download-mb", type=int, default=50)
    args = parser.parse_args()
    with (
        db.scratch_database(ADMIN_URL, prefix="outreach_bench_web") as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        engine = db.get_engine(url)
        db.upgrade(engine)
        build(engine, args.workers)
        storage = LocalStorage(Path(tmp) / "batches")
        keys = seed(engine, storage, batches=200, download_mb=args.download_mb)
        env = {
            **os.environ,
            "OUTREACH_DATABASE_URL": url,
            "OUTREACH_DATA_DIR": tmp,
            "OUTREACH_BATCH_DIR": str(storage.root),
        }
        env.pop("OUTREACH_BROKER_URL", None)
        with serve(env, workers=args.web_workers) as port:
            print(
                f"{args.workers:,} workers; {args.web_workers} uvicorn processes; {CLIENTS} clients, loopback"
            )
            count = request(
                "POST",
                "/api/v1/audiences/count",
                keys["planner"],
                {"expression": "gender = 'F'", "by": "unit.township"},
            )
            load(port, 2, 1, count)  # warm-up
            report(
                "POST /api/v1/audiences/count (by township)", *load(port, CLIENTS, args.count_requests, count)
            )
            listing = request("GET", "/api/v1/batches?limit=50", keys["shop"])
            load(port, 2, 5, listing)
            report("GET /api/v1/batches?limit=50", *load(port, CLIENTS, args.list_requests, listing))
            size = args.download_mb << 20
            files = iter(range(1, 11))
            lock = threading.Lock()

            def download(conn: http.client.HTTPConnection) -> int:
                with lock:
                    batch = next(files)
                conn.request(
                    "GET",
                    f"/api/v1/batches/{batch}/files/letters.pdf",
                    headers={"Authorization": f"Bearer {keys['shop']}"},
                )
                response = conn.getresponse()
                received = 0
                while block := response.read(1 << 20):
                    received += len(block)
                return response.status if received == size else -1

            elapsed, latencies, errors = load(port, 10, 1, download)
            total_mb = 10 * args.download_mb
            print(
                f"10 concurrent downloads of {args.download_mb} MB: {total_mb} MB in {elapsed:.2f} s = "
                f"{total_mb / elapsed:.0f} MB/s (slowest {max(latencies):.2f} s), errors {errors}"
            )


if __name__ == "__main__":
    main()
