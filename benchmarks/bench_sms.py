"""Benchmark: live SMS submitted through the fake gateway by worker processes sharing one account's rate limit
in Redis (target: the limit, within 5%), and delivery receipts parsed and deduplicated per second.

Each worker process builds the real adapter (the official SDK, HTTP to the fake gateway on loopback) with a
token bucket on a private Redis key, and submits its share of the messages in calls of the gateway's size.
Run: flock /tmp/outreach-heavy.lock .venv/bin/python benchmarks/bench_sms.py [--gateway aliyun|tencent]
     [--messages 10000] [--rate 500] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
from pydantic import SecretStr

from outreach.channels.gateways.aliyun import AliyunGateway
from outreach.channels.gateways.base import Gateway, Sms, dedupe
from outreach.channels.gateways.ratelimit import TokenBucket, bucket_key
from outreach.channels.gateways.tencent import TencentGateway
from tests.fakes.sms_gateway import FakeSmsGateway

REDIS_URL = os.environ.get("OUTREACH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def build(kind: str, endpoint: str, limiter: Any) -> Gateway:
    if kind == "aliyun":
        return AliyunGateway(
            access_key_id="fake-ak",
            access_key_secret=SecretStr("x"),
            sign_name="尤溪县总工会",
            endpoint=endpoint,
            limiter=limiter,
        )
    return TencentGateway(
        secret_id="fake-sid",
        secret_key=SecretStr("x"),
        sdk_app_id="1400000001",
        sign_name="尤溪县总工会",
        endpoint=endpoint,
        limiter=limiter,
    )


def worker(kind: str, endpoint: str, key: str, rate: float, numbers: list[str], go: Any, out: Any) -> None:
    """Submits its numbers in calls of the gateway's size; reports (accepted, first start, last answer)."""
    bucket = TokenBucket(redis.Redis.from_url(REDIS_URL), key=key, rate=rate, burst=max(rate / 5, 200))
    gateway = build(kind, endpoint, bucket)
    messages = [Sms(f"B{n}", n, {"name": "张丽"}) for n in numbers]
    go.wait()
    started = time.time()
    accepted = 0
    for start in range(0, len(messages), gateway.max_batch):
        call = messages[start : start + gateway.max_batch]
        results = gateway.send_batch(call, template="SMS_1", batch_ref=f"bench-{start}")
        accepted += sum(r.accepted for r in results)
    out.put((accepted, started, time.time()))


def submit(kind: str, *, messages: int, rate: float, workers: int) -> dict[str, float]:
    numbers = [f"139{i:08d}" for i in range(messages)]
    key = bucket_key(f"outreach-bench-{uuid.uuid4().hex}:", kind, "bench")
    client = redis.Redis.from_url(REDIS_URL)
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    with FakeSmsGateway() as fake:
        share = [numbers[i::workers] for i in range(workers)]
        procs = [ctx.Process(target=worker, args=(kind, fake.endpoint, key, rate, s, go, out)) for s in share]
        for p in procs:
            p.start()
        time.sleep(3)  # let the workers import the SDKs before the clock starts
        go.set()
        reports = [out.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
        taken = sum(fake.submitted().values())
        once = set(fake.submitted().values()) == {1}
    client.delete(key)
    accepted = sum(r[0] for r in reports)
    elapsed = max(r[2] for r in reports) - min(r[1] for r in reports)
    # The bucket starts full (one burst free), so the steady rate is measured without it.
    burst = max(rate / 5, 200)
    return {
        "accepted": accepted,
        "gateway_counted": taken,
        "each_number_once": float(once),
        "seconds": round(elapsed, 2),
        "per_second": round(accepted / elapsed, 1),
        "per_second_after_burst": round((accepted - burst) / elapsed, 1),
    }


def receipts_per_second(kind: str, *, count: int) -> dict[str, float]:
    """Parses `count` receipts pushed in bodies of 100, each body twice, and keeps each once."""
    with FakeSmsGateway() as fake:
        gateway = build(kind, fake.endpoint, None)
        sent = 0
        while sent < count:
            n = min(gateway.max_batch, count - sent)
            gateway.send_batch(
                [Sms(f"R{sent + i}", f"138{sent + i:08d}") for i in range(n)],
                template="SMS_1",
                batch_ref=f"r-{sent}",
            )
            sent += n
        rows = fake.receipts(kind)
    bodies = [json.dumps(rows[i : i + 100], ensure_ascii=False).encode() for i in range(0, len(rows), 100)]
    seen: set[str] = set()
    kept = 0
    started = time.perf_counter()
    for body in bodies + bodies:  # every receipt pushed twice
        kept += len(dedupe(gateway.parse_receipts(body, {}), seen))
    elapsed = time.perf_counter() - started
    return {
        "receipts_parsed": 2 * len(rows),
        "kept": kept,
        "seconds": round(elapsed, 3),
        "parsed_per_second": round(2 * len(rows) / elapsed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gateway", choices=["aliyun", "tencent", "both"], default="both")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--receipts", type=int, default=50_000)
    args = parser.parse_args()
    kinds = ["aliyun", "tencent"] if args.gateway == "both" else [args.gateway]
    for kind in kinds:
        result = submit(kind, messages=args.messages, rate=args.rate, workers=args.workers)
        off = (result["per_second"] - args.rate) / args.rate * 100
        print(f"{kind}: submit {json.dumps(result)}  vs limit {args.rate:g}/s: {off:+.1f}%", flush=True)
        print(f"{kind}: receipts {json.dumps(receipts_per_second(kind, count=args.receipts))}", flush=True)


if __name__ == "__main__":
    main()
