"""The token bucket per gateway account in the shared Redis: one process waits its turn, and two processes
taking as fast as they can stay within the rate together. Keys live under a private prefix, deleted after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from outreach.channels.gateways.ratelimit import LocalTokenBucket, TokenBucket, bucket_key
from outreach.errors import InputError

redis = pytest.importorskip("redis")

REDIS_URL = os.environ.get("OUTREACH_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
pytestmark = pytest.mark.redis


@pytest.fixture
def client() -> Iterator[Any]:
    conn = redis.Redis.from_url(REDIS_URL)
    try:
        conn.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    yield conn
    conn.close()


@pytest.fixture
def key(client: Any) -> Iterator[str]:
    name = bucket_key(f"outreach-test-{uuid.uuid4().hex}:", "aliyun", "LTAI-test")
    yield name
    client.delete(name)  # only this test's own key; the shared Redis is never flushed


def test_the_key_names_the_gateway_and_account_under_the_prefix() -> None:
    assert bucket_key("p:", "tencent", "1400000001") == "p:outreach:sms-rate:tencent:1400000001"


def test_a_rate_of_zero_is_refused_in_chinese(client: Any, key: str) -> None:
    with pytest.raises(InputError, match="短信发送速率"):
        TokenBucket(client, key=key, rate=0)


def test_one_process_waits_for_tokens_beyond_the_burst(client: Any, key: str) -> None:
    bucket = TokenBucket(client, key=key, rate=50, burst=5)
    started = time.monotonic()
    bucket.acquire(60)  # 5 at once, then 55 at 50 a second
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 1.6
    assert bucket.try_acquire(5) > 0  # the bucket is empty now: it says how long to wait


def test_a_request_larger_than_the_bucket_is_taken_in_slices(client: Any, key: str) -> None:
    bucket = TokenBucket(client, key=key, rate=400, burst=20)
    started = time.monotonic()
    bucket.acquire(220)
    assert 0.45 <= time.monotonic() - started < 0.9


WORKER = textwrap.dedent(
    """
    import json, sys, time
    import redis
    from outreach.channels.gateways.ratelimit import TokenBucket
    url, key, rate, burst, seconds, out = sys.argv[1:7]
    bucket = TokenBucket(redis.Redis.from_url(url), key=key, rate=float(rate), burst=float(burst))
    stamps = []
    deadline = time.time() + float(seconds)
    while time.time() < deadline:
        bucket.acquire(10)
        stamps.append(time.time())
    json.dump(stamps, open(out, "w"))
    """
)


@pytest.mark.slow
def test_two_processes_together_stay_within_the_rate(client: Any, key: str, tmp_path: Path) -> None:
    rate, burst, seconds = 300.0, 30.0, 3.0
    outs = [tmp_path / f"w{i}.json" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, REDIS_URL, key, str(rate), str(burst), str(seconds), str(out)],
            cwd=Path(__file__).resolve().parents[2],
        )
        for out in outs
    ]
    for p in procs:
        assert p.wait(timeout=60) == 0
    per_worker = [json.loads(out.read_text()) for out in outs]
    stamps = sorted(t for w in per_worker for t in w)
    assert all(len(w) > 10 for w in per_worker)  # both got a share
    # Any window holds at most rate × its length + one bucket (10 tokens per stamp).
    first, last = stamps[0], stamps[-1]
    taken = 10 * len(stamps)
    assert taken <= rate * (last - first) + burst + 10
    # ...and the pair keeps the account busy: at least 90% of the rate over the run.
    assert taken >= 0.9 * rate * (last - first)
    for width in (0.5, 1.0):
        i = 0
        for j, t in enumerate(stamps):
            while stamps[i] < t - width:
                i += 1
            assert 10 * (j - i + 1) <= rate * width + burst + 10


class Clock:
    """A clock that moves only when the bucket sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_without_redis_one_process_keeps_the_rate_itself() -> None:
    clock = Clock()
    bucket = LocalTokenBucket(rate=100, burst=20, clock=clock, sleep=clock.sleep)
    bucket.acquire(20)  # the full bucket: no wait
    assert clock.slept == []
    bucket.acquire(1000)  # 1000 more at 100 a second
    assert clock.now - 1000.0 == pytest.approx(10.0)
    with pytest.raises(InputError):
        LocalTokenBucket(rate=-1)


def test_the_settings_gateway_gets_the_process_bucket_without_redis() -> None:
    from pydantic import SecretStr

    from outreach.channels.gateways import gateway_from_settings
    from outreach.settings import Settings

    settings = Settings(
        sms_gateway="aliyun",
        aliyun_access_key_id="LTAI-local",
        aliyun_access_key_secret=SecretStr("x"),
        sms_rate_per_second=42,
    )
    first = gateway_from_settings(settings)
    second = gateway_from_settings(settings)
    assert isinstance(first.limiter, LocalTokenBucket)  # type: ignore[attr-defined]
    assert first.limiter is second.limiter and first.limiter.rate == 42  # type: ignore[attr-defined]
