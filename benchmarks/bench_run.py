"""Benchmark: a whole campaign run end to end on PostgreSQL + Redis with real Celery worker processes.

Generates a county registry with the sample generator (or reuses a cached one), imports it, sets up the
俏佳人 campaign, then times the run: freeze (recipients -> pieces, presorted) + budget reservation, rendering
on the workers, assembly (manifests, tickets, checksums) and the ledger. Prints pieces/s, wall time and the
memory of each worker process over the run.

  .venv/bin/python benchmarks/bench_run.py                 # the county: about 6,000 pieces
  .venv/bin/python benchmarks/bench_run.py --size 1000000 --expression "gender = 'F' or gender = 'M'"
                                                           # about 1,000,000 pieces
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import redis
from sqlalchemy import func, select, text

ADMIN_URL = os.environ.get("OUTREACH_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CACHE = Path(os.environ.get("OUTREACH_BENCH_CACHE", "/tmp/outreach-bench"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server of the benchmark's own on a free loopback port (the shared one is never touched)."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.05)
    client.close()
    return proc, url


def tail(path: Path, lines: int = 40) -> None:
    """The end of the workers' log, on stderr (the work folder is removed afterwards)."""
    if path.exists():
        text = path.read_text(errors="replace").splitlines()[-lines:]
        print(f"--- last lines of {path}:", *text, sep="\n", file=sys.stderr)


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=12_000, help="workers in the registry (about half women)")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds the run may take before giving up")
    parser.add_argument(
        "--expression",
        default=None,
        help="audience instead of the women workers, e.g. \"gender = 'F' or gender = 'M'\"",
    )
    args = parser.parse_args()

    from outreach import db

    with db.scratch_database(ADMIN_URL, prefix="outreach_bench_run") as url:
        bench(args, url)


def bench(args: argparse.Namespace, url: str) -> None:
    """Imports the registry, sets up the campaign, starts the workers and times the run."""
    from outreach import db
    from outreach.settings import get_settings

    work = Path(tempfile.mkdtemp(prefix="outreach-bench-run-"))
    redis_server, redis_url = start_redis(work)
    env = {
        **os.environ,
        "OUTREACH_DATABASE_URL": url,
        "OUTREACH_BROKER_URL": redis_url,
        "OUTREACH_DATA_DIR": str(work),
        "OUTREACH_BATCH_DIR": str(work / "batches"),
    }
    os.environ.update(env)
    # Settings read before (the scratch database) must not hide the broker from this process.
    get_settings.cache_clear()
    workers: subprocess.Popen[bytes] | None = None
    try:
        from audiences import service as audiences
        from audiences.importer import import_registry
        from audiences.sample import write_sample
        from outreach.campaigns import service as campaigns
        from outreach.demo import AUDIENCE, PERIOD, _setup_campaign
        from outreach.ledger import service as ledger
        from outreach.runs import executor
        from outreach.runs import service as runs
        from outreach.runs.models import Piece

        engine = db.get_engine()
        db.upgrade(engine)
        CACHE.mkdir(parents=True, exist_ok=True)
        registry = CACHE / f"registry-{args.size}.csv"
        if not registry.exists():
            t = time.perf_counter()
            write_sample(registry, workers=args.size, seed=2027)
            print(f"generated {registry} in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        with db.session_scope(engine) as session:
            summary = import_registry(session=session, path=registry)
        print(f"imported {summary.inserted:,} workers in {time.perf_counter() - t:.1f} s")
        with db.session_scope(engine) as session:
            campaign = _setup_campaign(session)
            campaign.batch_size = args.batch_size
            if args.expression:
                audiences.save(session=session, name=AUDIENCE, expression=args.expression)
                campaigns.approve(session=session, campaign=campaign, period=PERIOD)
            ledger.set_budget(
                session=session,
                campaign_id=campaign.id,
                period="2027",
                amount_fen=args.size * 200 + 100_000_00,
                reason="benchmark",
            )
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()

        log = (work / "worker.log").open("wb")
        workers = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers",
                "worker",
                "--loglevel=WARNING",
                f"--concurrency={args.concurrency}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"bench{uuid.uuid4().hex[:6]}@%h",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # Wait for the pool processes to be up (and the kit loaded by a warm-up would be unfair: not done).
        deadline = time.monotonic() + 60
        while len(children(workers.pid)) < args.concurrency and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)

        samples: dict[int, list[int]] = {}
        cpu: dict[int, float] = {}
        cpu_before = {child: cpu_seconds(child) for child in children(workers.pid)}
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                for child in children(workers.pid) if workers else []:
                    samples.setdefault(child, []).append(rss_kib(child))
                    cpu[child] = cpu_seconds(child)
                time.sleep(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        t0 = time.perf_counter()
        with db.session_scope(engine) as session:
            run = runs.start(session=session, campaign=campaign, period=PERIOD)
            run_id, pieces = run.id, run.piece_count
        t_frozen = time.perf_counter()
        # The path the CLI's `run start` takes: queue the batches on the workers, then follow the run.
        queued_at: list[float] = []

        def progress(done: int, total: int) -> None:
            if not queued_at:
                queued_at.append(time.perf_counter())

        def too_long(signum: int, frame: object) -> None:
            raise TimeoutError(f"run {run_id} not finished after {args.timeout} s")

        signal.signal(signal.SIGALRM, too_long)
        signal.alarm(args.timeout)
        try:
            execution = executor.execute(run_id, progress=progress)
        except TimeoutError:
            tail(work / "worker.log")
            raise
        finally:
            signal.alarm(0)
        t_done = time.perf_counter()
        t_queued = queued_at[0] if queued_at else t_done
        if execution.state != "done":
            tail(work / "worker.log")
            raise SystemExit(f"run {run_id} ended {execution.state}, not done")
        stop.set()
        sampler.join()
        for child in children(workers.pid):
            cpu[child] = cpu_seconds(child)
        worker_cpu = sum(cpu[c] - cpu_before.get(c, 0.0) for c in cpu)
        load = os.getloadavg()[0]
        with db.session_scope(engine) as session:
            rendered = (
                session.scalar(select(func.count()).where(Piece.run_id == run_id, Piece.state == "rendered"))
                or 0
            )
            bal = ledger.balance(session=session, run_id=run_id)
            batch_rows = runs.batches(session=session, run_id=run_id)
            pages = sum(b.pages for b in batch_rows)
        size = sum(p.stat().st_size for p in (work / "batches").rglob("*.pdf"))
        wall = t_done - t0
        print(
            f"\nrun {run_id}: {pieces:,} pieces ({rendered:,} rendered) in {len(batch_rows)} batches, "
            f"{args.concurrency} worker processes"
        )
        print(f"  freeze + reserve : {t_frozen - t0:8.2f} s")
        print(f"  queue            : {t_queued - t_frozen:8.2f} s")
        print(f"  render+assemble  : {t_done - t_queued:8.2f} s")
        print(f"  wall time        : {wall:8.2f} s   ({pieces / wall:,.0f} pieces/s end to end)")
        print(
            f"  worker CPU       : {worker_cpu:8.2f} s   ({pieces / max(worker_cpu, 1e-9):,.0f} pieces per "
            f"worker CPU second, less skewed by other load; load average {load:.1f})"
        )
        print(
            f"  letter pages     : {pages:,}; PDF bytes {size / 1e6:,.1f} MB "
            f"({size / max(1, pieces):,.0f} B per piece)"
        )
        print(
            f"  ledger           : charged {bal.charged_fen / 100:,.2f} yuan "
            f"for {bal.charged_pieces:,} pieces, "
            f"outstanding {bal.outstanding_fen}"
        )
        for child, values in samples.items():
            if not values:
                continue
            n = len(values)
            marks = [values[min(n - 1, int(n * f))] / 1024 for f in (0.1, 0.5, 0.9)]
            print(
                f"  worker pid {child}: RSS at 10%/50%/90% of the run "
                f"{marks[0]:.0f}/{marks[1]:.0f}/{marks[2]:.0f} MiB, peak {max(values) / 1024:.0f} MiB"
            )
    finally:
        if workers is not None and workers.poll() is None:
            os.killpg(workers.pid, signal.SIGTERM)
            workers.wait(timeout=60)
        redis_server.terminate()
        redis_server.wait(timeout=30)
        db.dispose_engines()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
