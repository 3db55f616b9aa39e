"""The run's own window on Redis: progress, the in-flight set, and the final state.

Redis goes away on purpose during the run, so every read retries until Redis answers again.
Key names come from ``QueueKeys``; nothing here formats a key itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from chaoslib.contract import RATE_KEYS
from chaoslib.history import DeadEntry, FinalState
from qworker.connection import CONNECTION_ERRORS
from qworker.errors import RedisUnavailable
from qworker.models import JobRecord, QueueStats
from qworker.service import QueueService

T = TypeVar("T")
RETRY_FOR_S = 60.0
RETRIED_ERRORS: tuple[type[BaseException], ...] = (RedisUnavailable, *CONNECTION_ERRORS)


async def retrying(read: Callable[[], Awaitable[T]], timeout_s: float = RETRY_FOR_S) -> T:
    """Run ``read`` until Redis answers (it may be down or loading its AOF)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await read()
        except RETRIED_ERRORS:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


class RedisView:
    def __init__(self, service: QueueService) -> None:
        self.service = service
        self.keys = service.keys
        self.redis = service.redis

    async def stats(self) -> QueueStats:
        return await retrying(self.service.get_queue_stats)

    async def inflight(self) -> set[str]:
        async def read() -> list[str]:
            return cast(list[str], await self.redis.zrange(self.keys.inflight, 0, -1))

        return set(await retrying(read))

    async def counters(self) -> dict[str, int]:
        raw = await retrying(lambda: self.redis.hgetall(self.keys.stats))
        return {name: int(value) for name, value in cast(dict[str, str], raw).items()}

    async def registered_pids(self) -> set[int]:
        """Pids of the workers whose heartbeat is on record: they are up and talking to Redis."""
        return {worker.pid for worker in await retrying(self.service.list_workers)}

    async def owned_by(self, pid: int | None, job_ids: set[str]) -> set[str]:
        """The jobs among ``job_ids`` that the worker process ``pid`` owns right now."""
        if pid is None or not job_ids:
            return set()
        workers = await retrying(self.service.list_workers)
        prefixes = tuple(f"{w.id}:" for w in workers if w.pid == pid)
        if not prefixes:
            return set()
        ids = sorted(job_ids)

        async def owners() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            for job_id in ids:
                pipe.hget(self.keys.job(job_id), "owner")
            return list(await pipe.execute())

        found = await retrying(owners)
        return {
            i for i, owner in zip(ids, found, strict=True) if (owner or "").startswith(prefixes)
        }

    async def final_state(self) -> FinalState:
        return await retrying(self._final_state)

    async def _final_state(self) -> FinalState:
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        for key in k.priorities:
            pipe.lrange(key, 0, -1)
        for key in (k.retry, k.scheduled, k.parked, k.inflight, k.dead_letter):
            pipe.zrange(key, 0, -1)
        pipe.hgetall(k.stats)
        for rate_key in RATE_KEYS:
            pipe.zrange(k.rate_log(rate_key), 0, -1, withscores=True)
        replies = await pipe.execute()
        logs = replies[-len(RATE_KEYS) :]
        *lists, retry, scheduled, parked, inflight, dead_ids, counters = replies[: -len(RATE_KEYS)]
        places = {f"p{p}": ids for p, ids in enumerate(lists, start=1)}
        places |= {"retry": retry, "scheduled": scheduled, "parked": parked, "inflight": inflight}
        return FinalState(
            places=places,
            dead=await self._dead_entries(dead_ids),
            job_hashes=await self._job_hashes(),
            counters={name: int(value) for name, value in counters.items()},
            reservations={
                rate_key: [(member, int(score)) for member, score in log]
                for rate_key, log in zip(RATE_KEYS, logs, strict=True)
            },
        )

    async def _dead_entries(self, dead_ids: list[str]) -> dict[str, DeadEntry]:
        pipe = self.redis.pipeline(transaction=False)
        for job_id in dead_ids:
            pipe.hgetall(self.keys.job(job_id))
        entries = {}
        for job_id, fields in zip(dead_ids, await pipe.execute(), strict=True):
            if not fields:
                # An id in the dead-letter set without its hash is a finding, not a crash here.
                entries[job_id] = DeadEntry(job_id, -1, None, "<no job hash>")
                continue
            record = JobRecord.from_hash(job_id, fields)
            error = record.error
            entries[job_id] = DeadEntry(
                job_id,
                record.attempts,
                error.type if error else None,
                error.message if error else "",
            )
        return entries

    async def _job_hashes(self) -> set[str]:
        prefix = self.keys.job_prefix
        found = set()
        for pattern in self.keys.scan_patterns:
            async for key in self.redis.scan_iter(pattern, 1000):
                if key.startswith(prefix):
                    found.add(key.removeprefix(prefix))
        return found
