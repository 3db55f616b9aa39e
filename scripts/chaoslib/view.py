"""The run's own window on Redis: progress, the in-flight set, and the final state (every
structure, and each job's record read by its id).

Redis goes away on purpose during the run, so every read retries until Redis answers again.
Key names come from ``QueueKeys``; nothing here formats a key itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from chaoslib.contract import RATE_KEYS
from chaoslib.history import DeadEntry, FinalState, JobFinal
from qworker.connection import CONNECTION_ERRORS
from qworker.errors import RedisUnavailable
from qworker.models import JobError, QueueStats
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

    async def final_count(self) -> int:
        """Jobs final so far: acknowledged done, dead-lettered or canceled."""
        stats = await self.stats()
        return stats.total_processed + stats.dead_letter + stats.canceled

    async def waiting_ids(self) -> set[str]:
        """The jobs in the retry and parked sets: waiting for a time."""

        async def read() -> list[list[str]]:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zrange(self.keys.retry, 0, -1)
            pipe.zrange(self.keys.parked, 0, -1)
            return cast(list[list[str]], await pipe.execute())

        return {job_id for ids in await retrying(read) for job_id in ids}

    async def final_state(self, job_ids: list[str]) -> FinalState:
        """Every structure, and the records of ``job_ids`` and of every id found anywhere."""
        return await retrying(lambda: self._final_state(job_ids))

    async def _final_state(self, job_ids: list[str]) -> FinalState:
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        for key in k.priorities:
            pipe.lrange(key, 0, -1)
        for key in (k.retry, k.scheduled, k.parked, k.inflight, k.dead_letter):
            pipe.zrange(key, 0, -1)
        pipe.hgetall(k.stats)
        for state in RECENT_STATES:
            pipe.lrange(k.recent(state), 0, -1)
        for rate_key in RATE_KEYS:
            pipe.zrange(k.rate_log(rate_key), 0, -1, withscores=True)
        replies = await pipe.execute()
        logs = replies[-len(RATE_KEYS) :]
        recent = replies[-len(RATE_KEYS) - len(RECENT_STATES) : -len(RATE_KEYS)]
        *lists, retry, scheduled, parked, inflight, dead_ids, counters = replies[
            : -len(RATE_KEYS) - len(RECENT_STATES)
        ]
        places = {f"p{p}": ids for p, ids in enumerate(lists, start=1)}
        places |= {"retry": retry, "scheduled": scheduled, "parked": parked, "inflight": inflight}
        found = {job_id for ids in places.values() for job_id in ids} | set(dead_ids)
        records = await self._records([*job_ids, *sorted(found - set(job_ids))])
        return FinalState(
            places=places,
            dead={job_id: dead_entry(job_id, records.get(job_id)) for job_id in dead_ids},
            records={job_id: final for job_id, (final, _error) in records.items()},
            recent=dict(zip(RECENT_STATES, recent, strict=True)),
            counters={name: int(value) for name, value in counters.items()},
            reservations={
                rate_key: [(member, int(score)) for member, score in log]
                for rate_key, log in zip(RATE_KEYS, logs, strict=True)
            },
        )

    async def _records(self, job_ids: list[str]) -> dict[str, tuple[JobFinal, JobError | None]]:
        """The records of these ids (HMGET by id, pipelined in chunks; never KEYS or SCAN)."""
        found: dict[str, tuple[JobFinal, JobError | None]] = {}
        for start in range(0, len(job_ids), RECORD_CHUNK):
            chunk = job_ids[start : start + RECORD_CHUNK]
            pipe = self.redis.pipeline(transaction=False)
            for job_id in chunk:
                pipe.hmget(self.keys.job(job_id), RECORD_FIELDS)
            for job_id, values in zip(chunk, await pipe.execute(), strict=True):
                fields = dict(zip(RECORD_FIELDS, values, strict=True))
                if fields["enqueued_at_ms"] is not None:
                    found[job_id] = job_final(fields)
        return found


# The fields the audit reads; every record has enqueued_at_ms (cancel.lua tells a record by it).
RECORD_FIELDS = (
    "enqueued_at_ms", "state", "attempts", "error", "canceled_from", "cancel_requested_at_ms",
)  # fmt: skip
RECORD_CHUNK = 2000
RECENT_STATES = ("done", "canceled")


def job_final(fields: dict[str, str | None]) -> tuple[JobFinal, JobError | None]:
    error = JobError.model_validate_json(fields["error"]) if fields["error"] else None
    requested = fields["cancel_requested_at_ms"]
    final = JobFinal(
        # A record older than job states has none: it counts as queued (as JobRecord reads it).
        state=fields["state"] or "queued",
        attempts=int(fields["attempts"] or 0),
        error_type=error.type if error else None,
        canceled_from=fields["canceled_from"] or None,
        cancel_requested_at_ms=int(requested) if requested else None,
    )
    return final, error


def dead_entry(job_id: str, record: tuple[JobFinal, JobError | None] | None) -> DeadEntry:
    if record is None:
        # An id in the dead-letter set without its record is a finding, not a crash here.
        return DeadEntry(job_id, -1, None, "<no job hash>")
    final, error = record
    return DeadEntry(job_id, final.attempts, final.error_type, error.message if error else "")
