"""QueueService: everything a producer or an operator does to the queue, as async methods.

Producers call ``add_job``/``add_jobs``; operators (through the CLI) read ``get_queue_stats``,
list and requeue dead jobs, drain retries and clear queues. Every step that moves a job is one
Lua script (see ``scripts.py``); reads that only report are plain pipelines.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

import redis.asyncio as aioredis

from qworker.clients import ClientContainer
from qworker.clock import SYSTEM_CLOCK, Clock
from qworker.config import Settings
from qworker.connection import CONNECTION_ERRORS, ScriptRunner, async_client, unavailable
from qworker.errors import JobNotFound, PayloadTooLarge, ReplicationUnconfirmed, ValidationFailed
from qworker.jobs.base import BaseJobParams, JobFactory
from qworker.keys import PRIORITIES, STAT_DEAD, STAT_FAILED, STAT_PROCESSED, QueueKeys
from qworker.models import JobRecord, QueueStats, RateLimitStats, RequeueResult, WorkerInfo
from qworker.policy import RetryPolicy
from qworker.scripts import EnqueueItem, QueueScripts, ScriptCall

# One script call carries at most this many jobs, so a huge batch never blocks Redis for long.
ENQUEUE_CHUNK = 1000
DRAIN_CHUNK = 1000


def check_priority(priority: int) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or priority not in PRIORITIES:
        raise ValidationFailed(f"priority must be 1 (urgent) to 4 (low), not {priority!r}")
    return priority


def new_job_id() -> str:
    """128 random bits as 32 hex characters (what uuid4().hex gives, at a fraction of the cost)."""
    return os.urandom(16).hex()


class QueueService:
    """Async access to one qworker namespace on one Redis.

    ``QueueService("redis://host:6379/0")`` or ``QueueService(settings=Settings())``; pass an
    existing ``redis.asyncio.Redis`` (made with ``decode_responses=True``) to share a client.
    Sentinel, Cluster and TLS come from the settings (a URL given here replaces theirs).
    """

    def __init__(
        self,
        redis_url_or_client: str | aioredis.Redis | None = None,
        *,
        settings: Settings | None = None,
        namespace: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings or Settings()
        self.keys = QueueKeys(self.settings.namespace if namespace is None else namespace)
        # The settings this service connects with, for the worker's heartbeat to do the same.
        self.connection_settings = self.settings
        if isinstance(redis_url_or_client, aioredis.Redis):
            self.redis = redis_url_or_client
            self.redis_url = "<client>"
        else:
            self.redis_url = redis_url_or_client or self.settings.redis_url
            if self.redis_url != self.settings.redis_url:
                self.connection_settings = self.settings.model_copy(
                    update={"redis_url": self.redis_url}
                )
            self.redis = async_client(self.connection_settings, namespace=self.keys.namespace)
        self.scripts = QueueScripts(self.keys)
        self.runner = ScriptRunner(self.redis)
        # Jobs are built at enqueue only to ask their retry config; no client is ever made.
        self._clients = ClientContainer(self.settings)
        self._max_retries_by_type: dict[str, int] = {}
        self.clock = clock

    async def close(self) -> None:
        await self.redis.aclose()

    async def __aenter__(self) -> QueueService:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @contextlib.contextmanager
    def _reaching_redis(self) -> Iterator[None]:
        """A lost connection becomes one RedisUnavailable that names the (masked) URL."""
        try:
            yield
        except CONNECTION_ERRORS as exc:
            raise unavailable(self.redis_url, exc) from exc

    async def run(self, call: ScriptCall[Any]) -> Any:
        """Run one script call, turning a lost connection into RedisUnavailable."""
        with self._reaching_redis():
            return await self.runner.run(call)

    # -- producing -------------------------------------------------------------------------

    def _prepare(
        self,
        job_data: dict[str, Any] | BaseJobParams,
        priority: int,
        run_at_ms: int | None,
    ) -> EnqueueItem:
        check_priority(priority)
        params = JobFactory.validate_params(job_data)
        payload = params.model_dump_json()
        size_bytes = len(payload.encode())
        if size_bytes > self.settings.max_payload_bytes:
            raise PayloadTooLarge(size_bytes, self.settings.max_payload_bytes)
        max_retries = self._max_retries(params)
        return EnqueueItem(new_job_id(), priority, params.job_type, payload, max_retries, run_at_ms)

    def _max_retries(self, params: BaseJobParams) -> int:
        """Stored with each job, so that whichever worker recovers it after a crash applies the
        job type's own retry limit without decoding it. Asked once per job type."""
        max_retries = self._max_retries_by_type.get(params.job_type)
        if max_retries is None:
            job = JobFactory.create_job(params, self.settings, self._clients)
            max_retries = RetryPolicy.from_config(job.get_retry_config()).max_retries
            self._max_retries_by_type[params.job_type] = max_retries
        return max_retries

    def _run_at_ms(self, delay_s: float | None, run_at_ms: int | None) -> int | None:
        if delay_s is not None and run_at_ms is not None:
            raise ValidationFailed("give a delay or a start time, not both")
        if delay_s is not None:
            if delay_s < 0:
                raise ValidationFailed(f"delay must not be negative, not {delay_s}")
            return self.clock.now_ms() + int(delay_s * 1000)
        return run_at_ms

    async def add_job(
        self,
        job_data: dict[str, Any] | BaseJobParams,
        priority: int = 3,
        *,
        delay_s: float | None = None,
        run_at_ms: int | None = None,
    ) -> str:
        """Validate and enqueue one job; returns its id. Nothing is queued if validation fails."""
        item = self._prepare(job_data, priority, self._run_at_ms(delay_s, run_at_ms))
        await self._enqueue([self.scripts.enqueue([item], self.clock.now_ms())], [item.job_id])
        return item.job_id

    async def add_jobs(
        self, jobs: Iterable[dict[str, Any] | BaseJobParams], priority: int = 3
    ) -> list[str]:
        """Validate every job first, then enqueue them all in one round trip (one script call
        per 1,000 jobs). If any job is invalid, none is queued."""
        items = [self._prepare(job, priority, None) for job in jobs]
        calls = [
            self.scripts.enqueue(items[start : start + ENQUEUE_CHUNK], self.clock.now_ms())
            for start in range(0, len(items), ENQUEUE_CHUNK)
        ]
        job_ids = [item.job_id for item in items]
        await self._enqueue(calls, job_ids)
        return job_ids

    async def _enqueue(self, calls: Sequence[ScriptCall[Any]], job_ids: list[str]) -> None:
        """Run enqueue calls in one round trip; with ``durable_replicas`` set, WAIT on the same
        connection and raise ReplicationUnconfirmed if fewer replicas confirmed in time."""
        wanted, timeout_ms = self.settings.durable_replicas, self.settings.durable_timeout_ms
        with self._reaching_redis():
            if not wanted and len(calls) == 1:
                await self.runner.run(calls[0])  # one command costs less than a pipeline of one
                return
            if not wanted:
                await self.runner.run_many(calls)
                return
            _replies, acked = await self.runner.run_durable(calls, wanted, timeout_ms)
        if acked < wanted:
            raise ReplicationUnconfirmed(job_ids, acked, wanted, timeout_ms)

    # -- reading ---------------------------------------------------------------------------

    async def get_queue_stats(self) -> QueueStats:
        k = self.keys
        now_ms = self.clock.now_ms()
        with self._reaching_redis():
            pipe = self.redis.pipeline(transaction=False)
            for key in k.priorities:
                pipe.llen(key)
            pipe.zcard(k.retry)
            pipe.zcount(k.retry, "-inf", now_ms)
            pipe.zcard(k.scheduled)
            pipe.zcard(k.parked)
            pipe.zcard(k.dead_letter)
            pipe.zcard(k.inflight)
            pipe.hgetall(k.stats)
            (
                *lengths,
                retry,
                retry_due,
                scheduled,
                parked,
                dead,
                inflight,
                counters,
            ) = await pipe.execute()
        queues = dict(zip(k.priorities, (int(n) for n in lengths), strict=True))
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
            retry=retry,
            retry_due=retry_due,
            scheduled=scheduled,
            parked=parked,
            dead_letter=dead,
            in_flight=inflight,
        )

    async def get_job(self, job_id: str) -> JobRecord | None:
        with self._reaching_redis():
            fields = cast(dict[str, str], await self.redis.hgetall(self.keys.job(job_id)))
        return JobRecord.from_hash(job_id, fields) if fields else None

    async def _records(self, job_ids: Sequence[str]) -> list[JobRecord]:
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self.keys.job(job_id))
        rows = await pipe.execute()
        return [
            JobRecord.from_hash(job_id, fields)
            for job_id, fields in zip(job_ids, rows, strict=True)
            if fields
        ]

    async def list_dead(self, limit: int = 20) -> list[JobRecord]:
        """Dead jobs, newest first."""
        if limit < 1:
            raise ValidationFailed(f"limit must be at least 1, not {limit}")
        with self._reaching_redis():
            job_ids = cast(
                list[str], await self.redis.zrevrange(self.keys.dead_letter, 0, limit - 1)
            )
            return await self._records(job_ids)

    async def get_dead(self, job_id: str) -> JobRecord:
        with self._reaching_redis():
            score = await self.redis.zscore(self.keys.dead_letter, job_id)
        record = await self.get_job(job_id) if score is not None else None
        if record is None:
            raise JobNotFound([job_id], "dead-letter queue")
        return record

    async def list_workers(self) -> list[WorkerInfo]:
        """Live workers: those whose heartbeat record has not expired."""
        with self._reaching_redis():
            worker_ids = cast(list[str], await self.redis.zrange(self.keys.workers, 0, -1))
            pipe = self.redis.pipeline(transaction=False)
            for worker_id in worker_ids:
                pipe.hgetall(self.keys.worker(worker_id))
            rows = await pipe.execute()
            gone = [wid for wid, row in zip(worker_ids, rows, strict=True) if not row]
            if gone:
                await self.redis.zrem(self.keys.workers, *gone)
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
            )
            for worker_id, row in zip(worker_ids, rows, strict=True)
            if row
        ]

    async def get_rate_limit_stats(self) -> list[RateLimitStats]:
        """Every rate-limit key workers have used, with the limits they enforce and the usage."""
        from qworker.rate_limiter import RateLimit, rate_limit_stats

        with self._reaching_redis():
            known = cast(dict[str, str], await self.redis.hgetall(self.keys.rate_keys))
            stats = []
            for rate_key, encoded in sorted(known.items()):
                day, hour, interval_ms = encoded.split("|")
                limit = RateLimit(
                    max_per_day=int(day) if day else None,
                    max_per_hour=int(hour) if hour else None,
                    min_interval_minutes=int(interval_ms or 0) / 60_000,
                )
                stats.append(
                    await rate_limit_stats(self.redis, self.keys, rate_key, limit, self.clock)
                )
        return stats

    # -- operating -------------------------------------------------------------------------

    async def retry_drain(self, *, include_not_due: bool = False, dry_run: bool = False) -> int:
        """Move due retries (or all with ``include_not_due``) back to their priority lists."""
        max_due: int | str = "+inf" if include_not_due else self.clock.now_ms()
        if dry_run:
            with self._reaching_redis():
                return int(await self.redis.zcount(self.keys.retry, "-inf", max_due))
        moved_total = 0
        while True:
            moved, _next_due_ms = await self.run(
                self.scripts.promote(self.keys.retry, max_due, DRAIN_CHUNK)
            )
            moved_total += int(moved)
            if int(moved) < DRAIN_CHUNK:
                return moved_total

    async def requeue_dead(
        self,
        job_ids: Sequence[str] = (),
        *,
        requeue_all: bool = False,
        priority: int | None = None,
    ) -> RequeueResult:
        """Back to their lists with attempts reset; ids not in the dead-letter queue are named."""
        if priority is not None:
            check_priority(priority)
        if not requeue_all and not job_ids:
            raise ValidationFailed("name the dead job ids to requeue, or ask for all of them")
        requeued = await self.run(
            self.scripts.requeue_dead(job_ids, requeue_all=requeue_all, priority=priority)
        )
        done = set(requeued)
        return RequeueResult(
            requeued=requeued, missing=[job_id for job_id in job_ids if job_id not in done]
        )

    async def clear_queue(
        self,
        priorities: Sequence[int] = (),
        *,
        retry: bool = False,
        scheduled: bool = False,
        parked: bool = False,
        dead_letter: bool = False,
        everything: bool = False,
    ) -> int:
        """Delete the chosen queues and their jobs; ``everything`` also deletes in-flight jobs,
        counters, rate-limit logs and worker records. Never touches keys outside qworker's own.
        Returns the number of entries deleted from the queues."""
        k = self.keys
        for priority in priorities:
            check_priority(priority)
        if everything:
            queue_keys = [*k.priorities, k.retry, k.scheduled, k.parked, k.dead_letter, k.inflight]
        else:
            queue_keys = [k.priority(p) for p in priorities]
            queue_keys += [
                key
                for key, wanted in (
                    (k.retry, retry),
                    (k.scheduled, scheduled),
                    (k.parked, parked),
                    (k.dead_letter, dead_letter),
                )
                if wanted
            ]
        if not queue_keys:
            return 0
        deleted = int(await self.run(self.scripts.clear(queue_keys)))
        if everything:
            await self._delete_dynamic_keys()
        return deleted

    async def _delete_dynamic_keys(self) -> None:
        k = self.keys
        with self._reaching_redis():
            await self.redis.delete(*k.static_keys)
            for pattern in k.scan_patterns:
                batch: list[str] = []
                async for key in self.redis.scan_iter(match=pattern, count=1000):
                    batch.append(key)
                    if len(batch) >= 1000:
                        await self.redis.unlink(*batch)
                        batch.clear()
                if batch:
                    await self.redis.unlink(*batch)

    async def ping(self) -> None:
        with self._reaching_redis():
            await self.redis.ping()
