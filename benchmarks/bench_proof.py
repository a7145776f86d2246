"""Benchmark: the campaign page's proof (five recipients rendered, envelopes and letters rasterised at 60 dpi
by pdftoppm), first time and from its cache, on a scratch SQLite database with the runs tests' small world.
Run: .venv/bin/python benchmarks/bench_proof.py [--women N] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--women", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    first: list[float] = []
    cached: list[float] = []
    for _round in range(args.rounds):
        folder = tempfile.mkdtemp(prefix="bench-proof-")
        os.environ["OUTREACH_DATABASE_URL"] = f"sqlite:///{folder}/outreach.db"
        os.environ["OUTREACH_DATA_DIR"] = folder
        from sqlalchemy.orm import Session

        from outreach import db
        from outreach.campaigns import content
        from outreach.campaigns import service as campaigns
        from outreach.settings import get_settings
        from tests.runs.world import build_world

        get_settings.cache_clear()
        db.dispose_engines()
        engine = db.get_engine(os.environ["OUTREACH_DATABASE_URL"])
        db.upgrade(engine)
        with Session(engine) as session, session.begin():
            world = build_world(session, women=args.women, period=None)
        with Session(engine) as session:
            campaign = campaigns.get(session=session, campaign_id=world.campaign_id)
            for times in (first, cached):
                started = time.perf_counter()
                proof = content.proof(session=session, campaign=campaign, period="2027-Q1")
                times.append(time.perf_counter() - started)
        pngs = sum(len(p.envelope) + len(p.letter) for p in proof.pieces)
    print(f"proof of {len(proof.pieces)} recipients, {pngs} PNGs, {args.rounds} rounds")
    print(f"first (render + rasterise): median {statistics.median(first):.2f} s, max {max(first):.2f} s")
    print(f"cached: median {statistics.median(cached) * 1000:.1f} ms, max {max(cached) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
