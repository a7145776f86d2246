"""A token bucket per gateway account, kept in Redis so every worker process on every machine shares it.

One Lua script refills and takes tokens atomically with Redis's own clock, so two workers can neither both
take the last token nor disagree about the time. A gateway account's rate (numbers a second) is the bucket's
refill rate; its capacity (`burst`) bounds how far a quiet spell lets the next second run ahead.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from outreach.errors import InputError
from outreach.i18n import _

# KEYS[1] the bucket; ARGV: rate (tokens/s), burst (capacity), tokens wanted. Returns 0 when taken, else the
# milliseconds until that many tokens will be there. The bucket expires once it would be full anyway.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
end
local wait = 0
if tokens >= want then
  tokens = tokens - want
else
  wait = math.ceil((want - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return wait
"""


class TokenBucket:
    """A shared token bucket: `acquire(n)` returns once n numbers may be submitted on this account."""

    def __init__(
        self,
        client: redis.Redis | Any,
        *,
        key: str,
        rate: float,
        burst: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise InputError(_("SMS rate must be above 0 a second, not {rate}", rate=rate))
        self.client = client
        self.key = key
        self.rate = float(rate)
        # A fifth of a second's worth by default, and at least one token: small enough that a burst after a
        # pause stays a rounding error against the rate, large enough that slices of a call go through.
        self.burst = max(1.0, float(burst)) if burst is not None else max(1.0, self.rate / 5)
        self._sleep = sleep
        self._take = client.register_script(_TAKE)

    def try_acquire(self, count: int) -> float:
        """Takes `count` tokens (at most `burst`) if they are there: 0, or seconds to wait before trying."""
        wait_ms = int(self._take(keys=[self.key], args=[self.rate, self.burst, count]))
        return wait_ms / 1000

    def acquire(self, count: int) -> None:
        """Blocks until `count` tokens are taken, in slices no larger than the bucket."""
        left = count
        while left > 0:
            piece = min(left, math.floor(self.burst))
            wait = self.try_acquire(piece)
            if wait == 0:
                left -= piece
            else:
                self._sleep(wait)


class LocalTokenBucket:
    """The same bucket inside one process, for the embedded default without Redis: one worker process still
    keeps the account's rate (several local processes would each keep it: use Redis for those)."""

    def __init__(
        self,
        *,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise InputError(_("SMS rate must be above 0 a second, not {rate}", rate=rate))
        self.rate = float(rate)
        self.burst = max(1.0, float(burst)) if burst is not None else max(1.0, self.rate / 5)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._at = clock()

    def try_acquire(self, count: int) -> float:
        """Takes `count` tokens (at most `burst`) if they are there: 0, or seconds to wait before trying."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + max(0.0, now - self._at) * self.rate)
            self._at = now
            if self._tokens >= count:
                self._tokens -= count
                return 0.0
            return (count - self._tokens) / self.rate

    def acquire(self, count: int) -> None:
        """Blocks until `count` tokens are taken, in slices no larger than the bucket."""
        left = count
        while left > 0:
            piece = min(left, math.floor(self.burst))
            wait = self.try_acquire(piece)
            if wait == 0:
                left -= piece
            else:
                self._sleep(wait)


_LOCAL: dict[str, LocalTokenBucket] = {}
_LOCAL_LOCK = threading.Lock()


def local_bucket(key: str, *, rate: float) -> LocalTokenBucket:
    """This process's bucket for an account, shared by every gateway object of the account in the process."""
    with _LOCAL_LOCK:
        bucket = _LOCAL.get(key)
        if bucket is None or bucket.rate != rate:
            bucket = _LOCAL[key] = LocalTokenBucket(rate=rate)
        return bucket


def bucket_key(prefix: str, gateway: str, account: str) -> str:
    """The Redis key of a gateway account's bucket (the account id, never a secret)."""
    return f"{prefix}outreach:sms-rate:{gateway}:{account}"
