"""RateLimiter: one limiter per rate-limit key, kept in Redis and shared by every worker.

Windows roll (the last 24 hours, the last hour), as the X API counts, and their log expires by
itself. A worker *reserves* a slot before it runs a job (check and reserve are one Lua step) and
gives it back when the attempt never reached the remote API. A refused reservation says when
the limiter opens again; the worker parks the job until then instead of spinning on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from qworker.clock import SYSTEM_CLOCK, Clock
from qworker.connection import ScriptRunner
from qworker.keys import QueueKeys
from qworker.models import RateLimitStats
from qworker.scripts import QueueScripts

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class RateLimit:
    """Limits of one key; ``None`` (or 0 for the interval) means no such limit."""

    max_per_day: int | None = None
    max_per_hour: int | None = None
    min_interval_minutes: float = 0.0

    @property
    def min_interval_ms(self) -> int:
        return int(self.min_interval_minutes * 60_000)

    @property
    def is_unlimited(self) -> bool:
        return self.max_per_day is None and self.max_per_hour is None and not self.min_interval_ms


@dataclass(frozen=True)
class Reservation:
    granted: bool
    member: str
    next_allowed_ms: int


class RateLimiter:
    """The limiter of one key. ``RateLimiter(max_per_day, max_per_hour, min_interval_minutes)``
    as in the seed, bound to Redis with :meth:`bind` (the worker does this)."""

    def __init__(
        self,
        max_per_day: int | None = None,
        max_per_hour: int | None = None,
        min_interval_minutes: float = 0.0,
        *,
        rate_key: str = "",
        redis: aioredis.Redis | None = None,
        keys: QueueKeys | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.limit = RateLimit(max_per_day, max_per_hour, min_interval_minutes)
        self.rate_key = rate_key
        self.keys = keys or QueueKeys()
        self.scripts = QueueScripts(self.keys)
        self._redis = redis
        self._runner = ScriptRunner(redis) if redis is not None else None
        self.clock = clock

    @classmethod
    def for_key(
        cls,
        rate_key: str,
        limit: RateLimit,
        redis: aioredis.Redis,
        keys: QueueKeys,
        clock: Clock = SYSTEM_CLOCK,
    ) -> RateLimiter:
        return cls(
            limit.max_per_day,
            limit.max_per_hour,
            limit.min_interval_minutes,
            rate_key=rate_key,
            redis=redis,
            keys=keys,
            clock=clock,
        )

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError("this RateLimiter is not bound to Redis (use RateLimiter.for_key)")
        return self._redis

    @property
    def runner(self) -> ScriptRunner:
        if self._runner is None:
            raise RuntimeError("this RateLimiter is not bound to Redis (use RateLimiter.for_key)")
        return self._runner

    async def reserve(self, job_id: str) -> Reservation:
        """Take a slot for ``job_id`` if every limit allows it now."""
        # Unique per reservation whatever the clocks say: the time only keeps members apart.
        member = f"{self.clock.now_ms()}:{job_id}"
        granted, next_allowed_ms = await self.runner.run(
            self.scripts.rate_reserve(
                self.rate_key,
                self.clock.script_now_ms(),
                member,
                self.limit.max_per_day,
                self.limit.max_per_hour,
                self.limit.min_interval_ms,
            )
        )
        return Reservation(bool(granted), member, next_allowed_ms)

    async def release(self, reservation: Reservation) -> None:
        """Give a slot back: the attempt never reached the remote API."""
        await self.redis.zrem(self.keys.rate_log(self.rate_key), reservation.member)

    async def block_until(self, until_ms: int, give_back: Reservation | None = None) -> int:
        """The remote side refused until ``until_ms``: no worker tries before then. The slot
        of ``give_back`` (the refused attempt's) is released in the same step."""
        member = give_back.member if give_back is not None else ""
        call = self.scripts.rate_block(self.rate_key, until_ms, self.clock.script_now_ms(), member)
        blocked_until_ms: int = await self.runner.run(call)
        return blocked_until_ms

    async def get_stats(self) -> RateLimitStats:
        return await rate_limit_stats(self.redis, self.keys, self.rate_key, self.limit, self.clock)


async def rate_limit_stats(
    redis: aioredis.Redis,
    keys: QueueKeys,
    rate_key: str,
    limit: RateLimit | None,
    clock: Clock = SYSTEM_CLOCK,
) -> RateLimitStats:
    """Usage of one key over the rolling windows, and when the next job may run."""
    now_ms = clock.now_ms()
    log_key = keys.rate_log(rate_key)
    pipe = redis.pipeline(transaction=False)
    pipe.zcount(log_key, f"({now_ms - DAY_MS}", "+inf")
    pipe.zcount(log_key, f"({now_ms - HOUR_MS}", "+inf")
    pipe.zrange(log_key, -1, -1, withscores=True)
    pipe.get(keys.rate_blocked(rate_key))
    pipe.zrangebyscore(log_key, f"({now_ms - DAY_MS}", "+inf", withscores=True)
    used_day, used_hour, last, blocked, window = await pipe.execute()
    limit = limit or RateLimit()
    times_ms = [int(score) for _member, score in window]
    next_allowed_ms = next_allowed(times_ms, limit, now_ms)
    blocked_until_ms = int(blocked) if blocked else None
    if blocked_until_ms is not None:
        next_allowed_ms = max(next_allowed_ms, blocked_until_ms)
    return RateLimitStats(
        rate_key=rate_key,
        max_per_day=limit.max_per_day,
        max_per_hour=limit.max_per_hour,
        min_interval_s=limit.min_interval_ms / 1000,
        used_last_day=used_day,
        used_last_hour=used_hour,
        last_execution_ms=int(last[0][1]) if last else None,
        blocked_until_ms=blocked_until_ms,
        next_allowed_ms=next_allowed_ms,
    )


def next_allowed(times_ms: list[int], limit: RateLimit, now_ms: int) -> int:
    """When every limit allows one more execution, given the executions of the last day.

    The same rule as ``rate_reserve.lua``; stats use it to report without reserving."""
    result = now_ms
    for window_ms, cap in ((DAY_MS, limit.max_per_day), (HOUR_MS, limit.max_per_hour)):
        if cap is None:
            continue
        recent = sorted(t for t in times_ms if t > now_ms - window_ms)
        if len(recent) >= cap:
            result = max(result, now_ms + window_ms if cap == 0 else recent[-cap] + window_ms)
    if limit.min_interval_ms and times_ms:
        result = max(result, max(times_ms) + limit.min_interval_ms)
    return result
