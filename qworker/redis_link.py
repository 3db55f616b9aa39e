"""A worker's link to Redis: reaching it at start, waiting out outages, and the recovery grace
that follows both.

No worker recovers anybody's expired leases until it has been connected for one lease (from its
first contact with Redis, and again once Redis is back after an outage): a lease that lapsed
while Redis was away, or just before this worker came up, does not yet mean a dead worker. Its
owner could not renew it, and may still be running the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time

import redis

from qworker.clock import Clock
from qworker.config import mask_url
from qworker.connection import CONNECTION_ERRORS
from qworker.errors import RedisUnavailable
from qworker.running import RECONNECT_BACKOFF_S
from qworker.service import QueueService

log = logging.getLogger("qworker.worker")


class RedisLink:
    def __init__(
        self,
        service: QueueService,
        clock: Clock,
        stop_requested: asyncio.Event,
        *,
        grace_s: float,
        burst: bool,
    ) -> None:
        self.service = service
        self.clock = clock
        self.stop_requested = stop_requested
        self.grace_s = grace_s
        self.burst = burst
        self.down_since: float | None = None  # monotonic time an outage began
        self._attempt = 0
        self._grace_until_ms: int | None = None  # None: never connected yet

    async def connect(self) -> bool:
        """Reach Redis, load the scripts and check that Redis never evicts jobs. A burst worker
        gives up on an unreachable Redis at once; a long-running one keeps trying with backoff,
        so a service manager's start limit never gives up on it while Redis is away. False
        when a stop came first."""
        for attempt in itertools.count():
            try:
                await self.service.ping()
                await self.service.runner.load_all()
                # A Redis that may evict jobs is refused (ConfigurationError, not retried).
                await self.service.check_memory_policy()
            except (RedisUnavailable, redis.RedisError, *CONNECTION_ERRORS) as exc:  # type: ignore[misc]
                if self.burst:
                    raise
                delay_s = _backoff_s(attempt)
                url = mask_url(self.service.redis_url)
                reason = str(exc) if isinstance(exc, RedisUnavailable) else f"{url}: {exc}"
                log.warning(
                    "Redis not reachable (attempt %d): %s; retrying in %.1fs",
                    attempt + 1,
                    reason,
                    delay_s,
                )
                if await self._stopped_within(delay_s):
                    return False
            else:
                self._start_grace()
                return True
        raise AssertionError("unreachable")

    async def down(self, exc: BaseException) -> None:
        """A step failed on Redis: say so once per outage, then wait before the next try."""
        self._start_grace()
        if self.down_since is None:
            self.down_since = time.monotonic()
            self._attempt = 0
            log.error(
                "Redis unavailable at %s (%s); retrying", mask_url(self.service.redis_url), exc
            )
        delay_s = _backoff_s(self._attempt)
        self._attempt += 1
        await self._stopped_within(delay_s)

    def back(self) -> bool:
        """A step succeeded; True when it ended an outage."""
        if self.down_since is None:
            return False
        log.info("Redis is back after %.1fs", time.monotonic() - self.down_since)
        self.down_since = None
        self._start_grace()
        return True

    def may_recover(self) -> bool:
        """Whether expired leases may be taken to mean dead workers (see the module's doc)."""
        until_ms = self._grace_until_ms
        return until_ms is not None and self.down_since is None and self.clock.now_ms() >= until_ms

    def _start_grace(self) -> None:
        self._grace_until_ms = self.clock.now_ms() + int(self.grace_s * 1000)

    async def _stopped_within(self, delay_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_requested.wait(), timeout=delay_s)
        return self.stop_requested.is_set()


def _backoff_s(attempt: int) -> float:
    return RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)]
