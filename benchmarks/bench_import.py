"""Registry import benchmark: a generated 1,000,000-worker CSV into a scratch PostgreSQL database.

Prints import rows/s, wall time, peak memory (ru_maxrss) and the time of a re-import (all unchanged).
Run: flock /tmp/outreach-heavy.lock .venv/bin/python benchmarks/bench_import.py [--workers N] [--keep-db]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

from audiences.importer import import_registry
from audiences.sample import write_sample
from outreach import db

ADMIN_URL = os.environ.get("OUTREACH_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CACHE = Path(os.environ.get("OUTREACH_BENCH_CACHE", "/tmp/outreach-bench"))


def peak_mb() -> float:
    """This process's peak resident memory in MB (Linux reports ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"registry-{args.workers}-seed{args.seed}.csv"
    if not path.exists():
        started = time.perf_counter()
        partial = path.with_suffix(".partial.csv")
        write_sample(partial, workers=args.workers, seed=args.seed)
        partial.rename(path)
        print(f"generated {path} in {time.perf_counter() - started:.1f} s")
    size_mb = path.stat().st_size / 1e6
    print(f"file: {path} ({size_mb:.0f} MB), peak memory before import: {peak_mb():.0f} MB")

    with db.scratch_database(ADMIN_URL, prefix="outreach_bench_import") as url:
        engine = db.get_engine(url)
        db.upgrade(engine)
        started = time.perf_counter()
        with db.session_scope(engine) as session:
            summary = import_registry(session=session, path=path)
        wall = time.perf_counter() - started
        print(
            f"import:    {summary.rows} rows in {wall:.1f} s = {summary.rows / wall:,.0f} rows/s "
            f"(inserted {summary.inserted}, units {summary.units_inserted}, rejected {summary.rejected}); "
            f"peak memory {peak_mb():.0f} MB"
        )
        started = time.perf_counter()
        with db.session_scope(engine) as session:
            again = import_registry(session=session, path=path)
        wall = time.perf_counter() - started
        print(
            f"re-import: {again.rows} rows in {wall:.1f} s = {again.rows / wall:,.0f} rows/s "
            f"(inserted {again.inserted}, updated {again.updated}, unchanged {again.unchanged}); "
            f"peak memory {peak_mb():.0f} MB"
        )


if __name__ == "__main__":
    main()
