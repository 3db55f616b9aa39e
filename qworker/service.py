"""QueueService: everything a producer or an operator does to the queue, as async methods.

Producers call ``add_job``/``add_jobs``; operators (through the CLI) read ``get_queue_stats``,
list and requeue dead jobs, drain retries and clear queues. Every step that moves a job is one
Lua script (see ``scripts/``); reads that only report are plain pipelines.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from qworker.clients import ClientContainer
from qworker.clock import SYSTEM_CLOCK, Clock
from qworker.config import Settings, namespace_problem
from qworker.connection import CONNECTION_ERRORS, ScriptRunner, async_client, unavailable
from qworker.dependencies import enqueue_flow, expire_waiting
from qworker.errors import (
    ConfigurationError,
    EnqueueIncomplete,
    JobNotFound,
    ReplicationUnconfirmed,
    ValidationFailed,
)
from qworker.flows import Flow, FlowNode, Step
from qworker.job_control import (
    NoSuchJob,
    NotWaiting,
    WaitTimedOut,
    is_finished,
    list_jobs,
    minimal_record,
    pause_end_ms,
    pause_field,
    read_job,
    resolve_job_id,
)
from qworker.jobs.base import BaseJobParams
from qworker.keys import QueueKeys
from qworker.memory import eviction_risk, read_memory
from qworker.models import (
    CancelResult,
    EnqueueResult,
    JobPage,
    JobRecord,
    Pause,
    QueueStats,
    RateLimitStats,
    RedisMemory,
    RequeueResult,
    WorkerInfo,
)
from qworker.producing import (
    ENQUEUE_CHUNK,
    check_job_ids,
    check_priority,
    prepare,
    run_at_ms,
    split_by_outcome,
    with_unique_key,
)
from qworker.reports import (
    read_pauses,
    read_queue_stats,
    read_rate_limits,
    read_records,
    read_workers,
)
from qworker.script_lane import ScriptLane
from qworker.scripts import DELETE_BATCH, EnqueueItem, QueueScripts, ScriptCall

log = logging.getLogger("qworker.service")

DRAIN_CHUNK = 1000
# wait_for_job blocks in slices shorter than the client's socket timeout.
WAIT_SLICE_S = 10.0


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
        if namespace is not None and (problem := namespace_problem(namespace)):
            raise ConfigurationError(problem)
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
        self._lane = ScriptLane(self.redis)
        self.runner = ScriptRunner(self.redis, lane=self._lane)
        # Jobs are built at enqueue only to ask their retry config; no client is ever made.
        self._clients = ClientContainer(self.settings)
        self._memory_checked = False
        self.clock = clock

    async def close(self) -> None:
        await self._lane.close()
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
        delay_s: float | None,
        at_ms: int | None,
        job_id: str | None,
    ) -> EnqueueItem:
        ready_at_ms = run_at_ms(delay_s, at_ms, self.clock.now_ms())
        return prepare(job_data, priority, ready_at_ms, job_id, self.settings, self._clients)

    async def add_job(
        self,
        job_data: dict[str, Any] | BaseJobParams,
        priority: int = 3,
        *,
        delay_s: float | None = None,
        run_at_ms: int | None = None,
        job_id: str | None = None,
        unique_key: str | None = None,
        unique_for_s: float | None = None,
        unique_until: str = "finished",
        depends_on: Sequence[str] | None = None,
        on_dep_fail: str = "fail",
        dep_timeout_s: float | None = None,
    ) -> str:
        """Validate and enqueue one job; returns its id. Nothing is queued if validation fails.

        ``job_id`` (1-64 of ``A-Za-z0-9._:-``) makes a retried call safe: while a job with that
        id exists (queued, scheduled, running, retrying, dead, or finished and still kept), a
        second call queues nothing and returns the same id.

        ``unique_key``: while another job holds the key, nothing is queued and that job's id is
        returned (``enqueue_job`` says which happened). The key is held until the job has
        ``started`` or ``finished`` (done, dead or canceled), or for ``unique_for_s``.

        ``depends_on``: the job waits until those jobs are done (see flows.py); when one ends
        dead or canceled it is dead-lettered (``on_dep_fail="fail"``) or runs anyway
        (``"run"``); after ``dep_timeout_s`` (7 days) of waiting it is dead-lettered. With
        ``depends_on``, ``delay_s`` counts from the moment they are done, and ``run_at_ms`` is
        the earliest it may run."""
        result = await self.enqueue_job(
            job_data,
            priority,
            delay_s=delay_s,
            run_at_ms=run_at_ms,
            job_id=job_id,
            unique_key=unique_key,
            unique_for_s=unique_for_s,
            unique_until=unique_until,
            depends_on=depends_on,
            on_dep_fail=on_dep_fail,
            dep_timeout_s=dep_timeout_s,
        )
        return result.job_id

    async def enqueue_job(
        self,
        job_data: dict[str, Any] | BaseJobParams,
        priority: int = 3,
        *,
        delay_s: float | None = None,
        run_at_ms: int | None = None,
        job_id: str | None = None,
        unique_key: str | None = None,
        unique_for_s: float | None = None,
        unique_until: str = "finished",
        depends_on: Sequence[str] | None = None,
        on_dep_fail: str = "fail",
        dep_timeout_s: float | None = None,
    ) -> EnqueueResult:
        """``add_job`` that also tells whether the job is new (``created``), or a duplicate of
        the job holding its unique key (``duplicate``; ``job_id`` is then that job's)."""
        if depends_on is not None:
            if unique_key is not None:
                raise ValidationFailed("a job that waits for others takes no unique key")
            step = Step(job_data, priority, job_id, on_dep_fail, delay_s, run_at_ms)
            [new_id] = await self.add_flow(
                Flow((FlowNode(step, ()),), (0,)), after=depends_on, dep_timeout_s=dep_timeout_s
            )
            return EnqueueResult(job_id=new_id, created=True)
        item = self._prepare(job_data, priority, delay_s, run_at_ms, job_id)
        item = with_unique_key(item, unique_key, unique_for_s, unique_until)
        call = self.scripts.enqueue([item], self.clock.now_ms())
        [reply] = await self._enqueue([call], [item.job_id])
        holder = reply.duplicates.get(0)
        if holder is not None:
            return EnqueueResult(job_id=holder, created=False, duplicate=True)
        return EnqueueResult(job_id=item.job_id, created=reply.stored == 1)

    async def add_jobs(
        self,
        jobs: Iterable[dict[str, Any] | BaseJobParams],
        priority: int = 3,
        *,
        job_ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Validate every job first, then enqueue them all in one round trip (one script call
        per 1,000 jobs). If any job is invalid, none is queued. ``job_ids``, one per job, work
        as ``add_job``'s ``job_id``. If Redis refuses some calls (e.g. out of memory), raises
        EnqueueIncomplete naming exactly which ids were queued and which were not."""
        jobs = list(jobs)
        ids = check_job_ids(job_ids, len(jobs))
        items = [
            self._prepare(job, priority, None, None, job_id)
            for job, job_id in zip(jobs, ids, strict=True)
        ]
        chunks = [items[i : i + ENQUEUE_CHUNK] for i in range(0, len(items), ENQUEUE_CHUNK)]
        now_ms = self.clock.now_ms()
        calls = [self.scripts.enqueue(chunk, now_ms) for chunk in chunks]
        all_ids = [item.job_id for item in items]
        replies = await self._enqueue(calls, all_ids, raise_on_error=False)
        refused = [reply for reply in replies if isinstance(reply, Exception)]
        if refused:
            queued, not_queued = split_by_outcome(chunks, replies)
            # Redis names the script and line after the reason: of no use to the producer.
            reason = str(refused[0]).split(". script: ")[0]
            raise EnqueueIncomplete(queued, not_queued, f"Redis refused: {reason}")
        return all_ids

    async def add_flow(
        self,
        flow: Flow,
        *,
        after: Sequence[str] = (),
        dep_timeout_s: float | None = None,
    ) -> list[str]:
        """Enqueue a flow (``chain``, ``group``, flows.py) as one whole, in one script call:
        if anything is invalid, or Redis fails midway, nothing of it is queued. Returns the
        ids in the flow's order. ``after``: stored jobs its first steps wait for."""
        return await enqueue_flow(self, flow, after=after, dep_timeout_s=dep_timeout_s)

    async def expire_waiting(self) -> int:
        """Dead-letter the jobs that waited past their dep-timeout; returns how many."""
        return await expire_waiting(self)

    async def _enqueue(
        self,
        calls: Sequence[ScriptCall[Any]],
        job_ids: list[str],
        *,
        raise_on_error: bool = True,
    ) -> list[Any]:
        """Run enqueue calls in one round trip, after the eviction check (once per service);
        with ``durable_replicas`` set, WAIT on the same connection and raise
        ReplicationUnconfirmed if fewer replicas confirmed in time. Replies in call order; with
        ``raise_on_error`` off, a call Redis refused has its error as its reply."""
        if not calls:
            return []
        if not self._memory_checked:
            await self.check_memory_policy()
        wanted, timeout_ms = self.settings.durable_replicas, self.settings.durable_timeout_ms
        acked = wanted
        try:  # as _reaching_redis does, without a context manager's cost on every enqueue
            if not wanted and len(calls) == 1 and raise_on_error:
                # One command costs less than a pipeline of one.
                return [await self.runner.run(calls[0])]
            if not wanted:
                replies = await self.runner.run_each(calls)
            else:
                # WAIT counts the writes of its own connection: writes and WAIT in one pipeline.
                replies, confirmed = await self.runner._run_each(
                    calls, ("WAIT", wanted, timeout_ms)
                )
                acked = wanted if confirmed is None else confirmed
        except CONNECTION_ERRORS as exc:
            raise unavailable(self.redis_url, exc) from exc
        errors = [reply for reply in replies if isinstance(reply, Exception)]
        if errors and raise_on_error:
            raise errors[0]
        if acked < wanted and not errors:
            raise ReplicationUnconfirmed(job_ids, acked, wanted, timeout_ms)
        return replies

    async def check_memory_policy(self) -> None:
        """Refuse a Redis that may evict keys when full (its ``maxmemory-policy`` is not
        ``noeviction``): eviction deletes queued jobs without a trace. Raises ConfigurationError
        with the fix, unless ``allow_eviction`` is set (then one warning). Reads ``INFO memory``
        (allowed where CONFIG is not) once per service; later calls return at once."""
        if self._memory_checked:
            return
        with self._reaching_redis():
            risk = await eviction_risk(self.redis, self.keys)
        if risk and not self.settings.allow_eviction:
            raise ConfigurationError(f"Redis at {self._masked_url()} {risk.problem}: {risk.fix}")
        if risk and not self._memory_checked:  # concurrent first calls warn once
            log.warning(
                "Redis at %s %s; going on as QWORKER_ALLOW_EVICTION allows",
                self._masked_url(),
                risk.problem,
            )
        self._memory_checked = True

    async def get_memory(self) -> RedisMemory | None:
        """Redis's memory use, limit and eviction policy; None when Redis does not say (INFO
        not allowed for this user, or a server without it)."""
        with self._reaching_redis():
            try:
                return await read_memory(self.redis, self.keys)
            except ResponseError:
                return None

    def _masked_url(self) -> str:
        return self.connection_settings.masked_redis_url()

    # -- reading ---------------------------------------------------------------------------

    async def get_queue_stats(self) -> QueueStats:
        with self._reaching_redis():
            return await read_queue_stats(self.redis, self.keys, self.clock.now_ms())

    async def get_job(self, job_id: str) -> JobRecord | None:
        """The job's record: its state, timings, error, result, checkpoints and, while it
        waits, why (``waiting``). None when there is no such job (or its kept record expired).
        """
        with self._reaching_redis():
            return await read_job(self.redis, self.keys, job_id, self.clock.now_ms())

    async def resolve_job_id(self, job_id_or_prefix: str) -> str:
        """The full id of the job ``job_id_or_prefix`` names: an id, or a prefix of at least 6
        characters that only one job's id starts with (AmbiguousJobId lists the others)."""
        with self._reaching_redis():
            return await resolve_job_id(self.redis, self.keys, job_id_or_prefix)

    async def find_job(self, job_id_or_prefix: str) -> JobRecord:
        """``get_job`` by an id or a unique prefix; NoSuchJob when there is none."""
        job_id = await self.resolve_job_id(job_id_or_prefix)
        record = await self.get_job(job_id)
        if record is None:
            raise NoSuchJob(job_id)
        return record

    async def list_jobs(
        self,
        state: str,
        *,
        job_type: str | None = None,
        priority: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """One page of the jobs in ``state`` (see ``job_control.list_jobs``)."""
        with self._reaching_redis():
            return await list_jobs(
                self.redis,
                self.keys,
                state,
                job_type=job_type,
                priority=priority,
                limit=limit,
                cursor=cursor,
            )

    async def list_dead(self, limit: int = 20) -> list[JobRecord]:
        """Dead jobs, newest first."""
        if limit < 1:
            raise ValidationFailed(f"limit must be at least 1, not {limit}")
        with self._reaching_redis():
            job_ids = cast(
                list[str], await self.redis.zrevrange(self.keys.dead_letter, 0, limit - 1)
            )
            return await read_records(self.redis, self.keys, job_ids)

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
            return await read_workers(self.redis, self.keys)

    async def get_rate_limit_stats(self) -> list[RateLimitStats]:
        """Every rate-limit key workers have used, with the limits they enforce and the usage."""
        with self._reaching_redis():
            return await read_rate_limits(self.redis, self.keys, self.clock)

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
            self.scripts.requeue_dead(
                job_ids,
                requeue_all=requeue_all,
                priority=priority,
                now_ms=self.clock.script_now_ms(),
            )
        )
        done = set(requeued)
        return RequeueResult(
            requeued=requeued, missing=[job_id for job_id in job_ids if job_id not in done]
        )

    async def delete_dead(self, job_ids: Sequence[str]) -> list[str]:
        """Delete dead jobs and their records for good; returns the ids deleted (an id not in
        the dead-letter queue is left out, and left alone)."""
        if not job_ids:
            raise ValidationFailed("name the dead job ids to delete")
        call = self.scripts.delete_dead(job_ids, keep_ms=self.settings.keep_finished_ms)
        return cast(list[str], await self.run(call))

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
        laned: list[str] = []
        if everything or priorities:  # a priority's jobs include those in lanes (routing.py)
            with self._reaching_redis():
                laned = cast(list[str], await self.redis.hkeys(k.lanes))
        if everything:
            lanes = [key for t in laned for key in k.lane_lists(t)]
            queue_keys = [*k.priorities, *lanes, k.retry, k.scheduled, k.parked, k.dead_letter]
            queue_keys.append(k.inflight)
        else:
            queue_keys = [key for p in priorities for key in (k.priority(p), *k.lanes_at(laned, p))]
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
        keep_ms = self.settings.keep_finished_ms
        deleted = await self._in_batches(self.scripts.clear(queue_keys, keep_ms=keep_ms))
        if everything:
            await self._delete_dynamic_keys()
        return deleted

    async def trim_dead_letter(self) -> int:
        """Apply the dead-letter retention cap (``dead_letter_max_jobs``, ``..._max_age_days``)
        now; returns how many of the oldest entries were dropped."""
        max_age_ms = int(self.settings.dead_letter_max_age_days * 86_400_000)
        oldest_kept_ms = self.clock.now_ms() - max_age_ms
        call = self.scripts.trim_dead_letter(
            oldest_kept_ms,
            self.settings.dead_letter_max_jobs,
            keep_ms=self.settings.keep_finished_ms,
        )
        return await self._in_batches(call)

    async def _in_batches(self, call: ScriptCall[int]) -> int:
        """Run a bounded deleting call (clear, trim_dead_letter) until it has less to do than
        one batch: other clients get Redis between the batches."""
        total = 0
        while True:
            done = int(await self.run(call))
            total += done
            if done < DELETE_BATCH:
                return total

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

    # -- job control -----------------------------------------------------------------------

    async def wait_for_job(self, job_id: str, timeout_s: float | None = None) -> JobRecord:
        """Block until the job has finished (done, dead or canceled) and return its record;
        WaitTimedOut after ``timeout_s`` (None: no limit). No polling: the script that ends
        the job wakes every waiter registered by watch.lua."""
        if timeout_s is not None and not timeout_s > 0:
            raise ValidationFailed(f"a wait's timeout must be a positive time, not {timeout_s}")
        state = str(await self.run(self.scripts.watch(job_id)))
        if not state:
            raise NoSuchJob(job_id)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not is_finished(state):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise WaitTimedOut(job_id, state, cast(float, timeout_s))
            # In slices under the socket timeout; each slice ends with a look at the record, so
            # a signal lost with a Redis restart costs at most one slice.
            slice_s = WAIT_SLICE_S if left is None else min(left, WAIT_SLICE_S)
            with self._reaching_redis():
                popped = await self.redis.blpop([self.keys.signal(job_id)], timeout=slice_s)
            if popped is not None:
                state = str(popped[1])
                break
            record = await self.get_job(job_id)
            if record is None:
                raise NoSuchJob(job_id, " (deleted while waiting: cleared?)")
            state = record.state
        record = await self.get_job(job_id)
        return record if record is not None else minimal_record(job_id, state)

    async def cancel_job(self, job_id: str, *, wait_s: float = 0) -> CancelResult:
        """Cancel a job: a waiting one (queued, scheduled, retry, parked, paused) ends
        canceled at once; a running one is stopped by its worker within about a second (with
        ``wait_s``, wait that long for it to end and report how it did). A finished job is
        left as it is (outcome 'finished')."""
        step = await self.run(
            self.scripts.cancel(job_id, self.clock.script_now_ms(), self.settings.keep_finished_ms)
        )
        if step.outcome == "missing":
            raise NoSuchJob(job_id)
        if step.outcome == "finished":
            return CancelResult(
                job_id=job_id, outcome="finished", state=step.state, previous_state=step.state
            )
        if step.outcome == "canceled":
            return CancelResult(
                job_id=job_id, outcome="canceled", state="canceled", previous_state=step.state
            )
        state = step.state
        if wait_s > 0:
            with contextlib.suppress(WaitTimedOut):
                state = (await self.wait_for_job(job_id, wait_s)).state
        return CancelResult(
            job_id=job_id, outcome="requested", state=state, previous_state=step.state
        )

    async def run_job_now(self, job_id: str) -> str:
        """Move a scheduled, retry or parked job to the front of its list; returns the state
        it left. NotWaiting when it is in another state."""
        step = await self.run(self.scripts.run_now(job_id, self.clock.script_now_ms()))
        if step.outcome == "missing":
            raise NoSuchJob(job_id)
        if step.outcome == "not_waiting":
            raise NotWaiting(
                f"job {job_id} is {step.state}, not waiting for a time (scheduled, retry or "
                "parked): nothing to run now"
            )
        return str(step.state)

    async def pause(
        self,
        *,
        priority: int | None = None,
        job_type: str | None = None,
        for_s: float | None = None,
    ) -> Pause:
        """Stop workers claiming a priority's or a job type's jobs, until ``resume`` or for
        ``for_s`` seconds. Nothing moves now: a worker skips a paused priority, and moves a
        paused type's jobs aside (state 'paused') as they reach the front of their list."""
        name = pause_field(priority, job_type)
        now_ms = self.clock.now_ms()
        ends_ms = pause_end_ms(for_s, now_ms)
        with self._reaching_redis():
            await self.redis.hset(self.keys.pauses, name, ends_ms)
        until_ms = None if ends_ms == -1 else ends_ms
        return Pause(priority=priority, job_type=job_type, until_ms=until_ms)

    async def resume(self, *, priority: int | None = None, job_type: str | None = None) -> bool:
        """End a pause now (its held jobs go back to the front of their lists); False when it
        was not paused."""
        end_now = pause_field(priority, job_type)
        was_paused = False
        while True:
            call = self.scripts.lift_pauses(self.clock.script_now_ms(), DRAIN_CHUNK, end_now)
            moved, _left, ended = await self.run(call)
            was_paused = was_paused or ended == 1
            end_now = ""  # ended; what is left is moving its held jobs back
            if moved < DRAIN_CHUNK:
                return was_paused

    async def list_pauses(self) -> list[Pause]:
        """What is paused now, and until when."""
        with self._reaching_redis():
            return await read_pauses(self.redis, self.keys, self.clock.now_ms())

    async def ping(self) -> None:
        with self._reaching_redis():
            await self.redis.ping()
