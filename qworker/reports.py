"""What QueueService reads to report: queue lengths and counters, job records, live workers,
rate limiters. Plain reads (pipelines, no scripts); the service turns a lost connection into
RedisUnavailable around them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import cast

import redis.asyncio as aioredis

from qworker.clock import Clock
from qworker.keys import (
    PRIORITIES,
    STAT_CANCELED,
    STAT_DEAD,
    STAT_DRY_RUN,
    STAT_FAILED,
    STAT_PROCESSED,
    STAT_UNKNOWN_TYPE_WAITING,
    QueueKeys,
)
from qworker.models import JobRecord, Pause, QueueStats, RateLimitStats, WorkerInfo
from qworker.routing import SERVES_ALL_FIELD, read_lane_lengths, read_unserved, served_types


async def read_queue_stats(client: aioredis.Redis, k: QueueKeys, now_ms: int) -> QueueStats:
    pipe = client.pipeline(transaction=False)
    for key in k.priorities:
        pipe.llen(key)
    pipe.zcard(k.retry)
    pipe.zcount(k.retry, "-inf", now_ms)
    pipe.zcard(k.scheduled)
    pipe.zcard(k.parked)
    pipe.zcard(k.waiting)
    pipe.zcard(k.dead_letter)
    pipe.zcard(k.inflight)
    pipe.hgetall(k.stats)
    pipe.hgetall(k.pauses)
    (
        *lengths,
        retry,
        retry_due,
        scheduled,
        parked,
        waiting,
        dead,
        inflight,
        counters,
        pause_entries,
    ) = await pipe.execute()
    queues = dict(zip(k.priorities, (int(n) for n in lengths), strict=True))
    # A priority's ready jobs include those in the lanes (routing.py).
    lanes = await read_lane_lengths(client, k)
    for per_priority in lanes.values():
        for priority, count in zip(PRIORITIES, per_priority, strict=True):
            queues[k.priority(priority)] += count
    lane_totals = {job_type: sum(counts) for job_type, counts in lanes.items()}
    # The seed names queues without the namespace; keep that shape for its callers.
    queues = {name.removeprefix(k.prefix): n for name, n in queues.items()}
    return QueueStats(
        total_jobs=sum(queues.values()),
        queues=queues,
        total_processed=int(counters.get(STAT_PROCESSED, 0)),
        total_failed=int(counters.get(STAT_FAILED, 0)),
        total_dead=int(counters.get(STAT_DEAD, 0)),
        dead_letter_dropped=int(counters.get("dead_dropped", 0)),
        recovered=int(counters.get("recovered", 0)),
        # A gauge the scripts move both ways; a clear of the queue it counts can leave it high.
        unknown_type_waiting=min(
            max(int(counters.get(STAT_UNKNOWN_TYPE_WAITING, 0)), 0), scheduled
        ),
        retry=retry,
        retry_due=retry_due,
        scheduled=scheduled,
        parked=parked,
        waiting=waiting,
        dead_letter=dead,
        in_flight=inflight,
        canceled=int(counters.get(STAT_CANCELED, 0)),
        pauses=await read_pauses(client, k, now_ms, pause_entries),
        lanes=lane_totals,
        waiting_without_worker=await read_unserved(client, k, lane_totals),
        dry_run=int(counters.get(STAT_DRY_RUN, 0)),
    )


async def read_pauses(
    client: aioredis.Redis, k: QueueKeys, now_ms: int, entries: dict[str, str] | None = None
) -> list[Pause]:
    """What is paused now (priorities first), with the jobs each paused type holds. A pause
    that has ended but still holds jobs (a worker moves them back within a second) is shown
    until they are back."""
    if entries is None:
        entries = cast(dict[str, str], await client.hgetall(k.pauses))
    pauses = []
    for name, value in entries.items():
        kind, _, target = name.partition(":")
        ends_ms = int(value) if value.lstrip("-").isdigit() else 0
        active = ends_ms == -1 or ends_ms > now_ms
        if kind == "priority" and active and target.isdigit():
            pauses.append(Pause(priority=int(target), until_ms=None if ends_ms == -1 else ends_ms))
        elif kind == "type":
            pauses.append(
                Pause(job_type=target, until_ms=None if ends_ms == -1 else max(ends_ms, 0))
            )
    typed = [pause for pause in pauses if pause.job_type is not None]
    if typed:
        pipe = client.pipeline(transaction=False)
        for pause in typed:
            pipe.zcard(k.held(cast(str, pause.job_type)))
        for pause, held in zip(typed, await pipe.execute(), strict=True):
            pause.held_jobs = int(held)
    pauses = [pause for pause in pauses if pause.active(now_ms) or pause.held_jobs]
    return sorted(pauses, key=lambda p: (p.priority is None, p.priority or 0, p.job_type or ""))


async def read_records(
    client: aioredis.Redis, k: QueueKeys, job_ids: Sequence[str]
) -> list[JobRecord]:
    """The records of the jobs that exist, in the order asked."""
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hgetall(k.job(job_id))
    rows = await pipe.execute()
    return [
        JobRecord.from_hash(job_id, fields)
        for job_id, fields in zip(job_ids, rows, strict=True)
        if fields
    ]


# The fields every heartbeat writes into a worker's record (heartbeat.py), which read_workers needs.
HEARTBEAT_FIELDS = frozenset({"host", "pid", "started_at_ms", "last_seen_ms"})


async def read_workers(client: aioredis.Redis, k: QueueKeys) -> list[WorkerInfo]:
    """Live workers: those of the registry whose heartbeat record is there (and whole).

    A registry entry without its record is left out, not removed: its worker may be writing it
    again this very moment (back from a stall), and a removal here would hide a live worker
    until its next beat. The heartbeats prune entries older than REGISTRY_HORIZON_MS."""
    worker_ids = cast(list[str], await client.zrange(k.workers, 0, -1))
    pipe = client.pipeline(transaction=False)
    for worker_id in worker_ids:
        pipe.hgetall(k.worker(worker_id))
    rows = await pipe.execute()
    return [
        WorkerInfo(
            id=worker_id,
            host=row["host"],
            pid=int(row["pid"]),
            started_at_ms=int(row["started_at_ms"]),
            last_seen_ms=int(row["last_seen_ms"]),
            jobs_done=int(row.get("jobs_done", 0)),
            concurrency=int(row.get("concurrency", 1)),
            current_jobs=json.loads(row.get("current_jobs", "[]")),
            running=int(row.get("running", 0)),
            prefetched=int(row.get("prefetched", 0)),
            serves_all=row.get(SERVES_ALL_FIELD, "1") == "1",
            job_types=sorted(served_types(row) or []),
        )
        for worker_id, row in zip(worker_ids, rows, strict=True)
        if row.keys() >= HEARTBEAT_FIELDS
    ]


async def read_rate_limits(
    client: aioredis.Redis, k: QueueKeys, clock: Clock
) -> list[RateLimitStats]:
    """Every rate-limit key workers have used, with the limits they enforce and the usage."""
    from qworker.rate_limiter import RateLimit, rate_limit_stats

    known = cast(dict[str, str], await client.hgetall(k.rate_keys))
    stats = []
    for rate_key, encoded in sorted(known.items()):
        day, hour, interval_ms = encoded.split("|")
        limit = RateLimit(
            max_per_day=int(day) if day else None,
            max_per_hour=int(hour) if hour else None,
            min_interval_minutes=int(interval_ms or 0) / 60_000,
        )
        stats.append(await rate_limit_stats(client, k, rate_key, limit, clock))
    return stats
