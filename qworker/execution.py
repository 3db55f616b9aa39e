"""Running one claimed job: decode it, gate it through its rate limiter, execute it, and turn
the outcome into the settlement that moves it (done, retry, parked or dead).

Settlements are not sent here: they wait in a :class:`SettlementBuffer` and the worker sends them
with its next claim, one round trip for a whole batch of finished jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from qworker.clients import ClientContainer
from qworker.clock import Clock
from qworker.config import Settings
from qworker.error_records import (
    error_json,
    one_line,
    text_of,
    traceback_tail,
)
from qworker.errors import (
    AlreadyDone,
    JobError,
    LeaseLost,
    PayloadTooLarge,
    PermanentJobError,
    RateLimitedJobError,
    RetryableJobError,
    ValidationFailed,
)
from qworker.jobs.base import BaseJob, JobContext, JobFactory
from qworker.logs import log_job_outcome
from qworker.models import CHECKPOINT_FIELD_PREFIX, RateLimitStats
from qworker.policy import GiveUp, RetryPolicy, decide_after_failure
from qworker.rate_limiter import RateLimit, RateLimiter, Reservation
from qworker.scripts import ClaimedJob, QueueScripts, ScriptCall
from qworker.service import QueueService

log = logging.getLogger("qworker.worker")

RECONNECT_BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
# checkpoint.lua marks a job that has checkpoints, so most jobs skip looking for them.
HAS_CHECKPOINTS_FIELD = "has_checkpoints"


@dataclass
class RunningJob:
    claimed: ClaimedJob
    owner: str
    priority: int
    attempt: int
    started: float
    task: asyncio.Task[None] | None = None
    # Claim order within this worker, so jobs handed back at a stop keep their order.
    seq: int = 0
    # perf_counter() time after which the watchdog cancels the job (BaseJob.timeout_s).
    deadline: float | None = None
    timed_out: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """Identifies this claim: the same job may be claimed again once recovered."""
        return (self.claimed.id, self.owner)


class RedisJobContext(JobContext):
    """A context whose checkpoints are written to the job in Redis, if the job is still ours."""

    def __init__(
        self, service: QueueService, running: RunningJob, checkpoints: dict[str, str]
    ) -> None:
        super().__init__(running.claimed.id, running.attempt, checkpoints)
        self._service = service
        self._running = running

    async def checkpoint(self, name: str, value: str) -> None:
        call = self._service.scripts.checkpoint(
            self.job_id, self._running.owner, CHECKPOINT_FIELD_PREFIX + name, value
        )
        if not await self._service.runner.run(call):
            raise LeaseLost(f"job {self.job_id} is no longer owned by this worker")
        self.checkpoints[name] = value


class SettlementBuffer:
    """Settlements of finished jobs waiting to be sent, and the jobs this worker must not settle
    because their lease was lost (the heartbeat thread reports those)."""

    def __init__(self, scripts: QueueScripts) -> None:
        self.scripts = scripts
        self.calls: list[ScriptCall[Any]] = []
        # Finished jobs: one complete.lua call acknowledges all of them.
        self.completed: list[tuple[str, str]] = []
        self._lost: set[tuple[str, str]] = set()  # (job id, owner token)
        self._lock = threading.Lock()

    def still_ours(self, running: RunningJob) -> bool:
        """False (once) for a job whose lease the heartbeat found lost."""
        with self._lock:
            if running.key in self._lost:
                self._lost.discard(running.key)
                return False
        return True

    def add(self, running: RunningJob, call: ScriptCall[Any]) -> None:
        if self.still_ours(running):
            self.calls.append(call)

    def add_completed(self, running: RunningJob) -> None:
        if self.still_ours(running):
            self.completed.append((running.claimed.id, running.owner))

    def mark_lost(self, claims: list[tuple[str, str]]) -> None:
        """``claims``: (job id, owner token) of the claims whose lease was lost."""
        with self._lock:
            self._lost.update(claims)

    def take(self) -> list[ScriptCall[Any]]:
        calls, self.calls = self.calls, []
        if self.completed:
            calls.insert(0, self.scripts.complete(self.completed))
            self.completed = []
        return calls

    def put_back(self, calls: list[ScriptCall[Any]]) -> None:
        self.calls = calls + self.calls

    def __len__(self) -> int:
        return len(self.calls) + len(self.completed)


class JobExecutor:
    """Everything that happens to one claimed job between the claim and its settlement."""

    def __init__(
        self,
        *,
        service: QueueService,
        settings: Settings,
        clients: ClientContainer,
        clock: Clock,
        rng: random.Random,
        settlements: SettlementBuffer,
        stopping: Callable[[], bool],
    ) -> None:
        self.service = service
        self.redis = service.redis
        self.keys = service.keys
        self.scripts = service.scripts
        self.settings = settings
        self.clients = clients
        self.clock = clock
        self.rng = rng
        self.settlements = settlements
        self.stopping = stopping
        self._limiters: dict[tuple[str, RateLimit], RateLimiter] = {}

    async def run(self, running: RunningJob) -> bool:
        """Run one job to its settlement; True when it is done."""
        job = self.decode(running)
        return job is not None and await self._gate_and_execute(job, running)

    async def get_stats(self) -> dict[str, RateLimitStats]:
        return {key: await limiter.get_stats() for (key, _), limiter in self._limiters.items()}

    def decode(self, running: RunningJob) -> BaseJob[Any] | None:
        """Turn the stored payload into a job; a bad payload goes to the dead-letter queue."""
        fields = running.claimed.fields
        try:
            payload = fields.get("payload", "")
            limit = self.settings.max_payload_bytes
            # Characters are at most 4 bytes: encode only when the count alone cannot tell.
            if len(payload) * 4 > limit and len(size := payload.encode()) > limit:
                raise PayloadTooLarge(len(size), limit)
            params = JobFactory.parse_payload(fields.get("job_type"), payload)
            job = JobFactory.create_job(params, self.settings, self.clients)
        except ValidationFailed as exc:
            self._bury(running, error_json("InvalidPayload", str(exc)), attempt_failed=False)
            self._log_outcome(running, "-", "dead", f"invalid payload: {exc}")
            return None
        except Exception as exc:
            # Whatever else a payload can do to a decoder (or a plugin's constructor) must not
            # leave the job in flight to crash the next worker too.
            error = error_json("InvalidPayload", one_line(exc), traceback_tail(exc))
            self._bury(running, error, attempt_failed=False)
            self._log_outcome(running, "-", "dead", f"cannot decode: {one_line(exc)}")
            return None
        checkpoints = (
            {
                name.removeprefix(CHECKPOINT_FIELD_PREFIX): value
                for name, value in fields.items()
                if name.startswith(CHECKPOINT_FIELD_PREFIX)
            }
            if HAS_CHECKPOINTS_FIELD in fields
            else {}
        )
        job.context = RedisJobContext(self.service, running, checkpoints)
        return job

    async def _gate_and_execute(self, job: BaseJob[Any], running: RunningJob) -> bool:
        limiter = self._limiter_for(job)
        reservation: Reservation | None = None
        if limiter is not None:
            reservation = await self._reserve(limiter, running)
            if not reservation.granted:
                self._park(running, reservation.next_allowed_ms, limiter.rate_key)
                self._log_outcome(running, job, "rate-limited", _until(reservation.next_allowed_ms))
                return False
        if job.timeout_s is not None:
            running.deadline = time.perf_counter() + job.timeout_s
        try:
            succeeded = await job.execute()
        except asyncio.CancelledError:
            running.deadline = None
            if not running.timed_out:
                raise
            # Cancelled by the worker's watchdog, not by a shutdown: a failed attempt.
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            overrun = TimeoutError(f"the job ran longer than its timeout of {job.timeout_s}s")
            await self._on_failure(job, running, overrun, limiter, reservation)
            return False
        except Exception as exc:
            running.deadline = None  # what follows is qworker's, not the job's, time
            await self._on_failure(job, running, exc, limiter, reservation)
            return False
        running.deadline = None
        if not succeeded:
            error = RetryableJobError("execute() returned False")
            await self._on_failure(job, running, error, limiter, reservation)
            return False
        self._complete(running)
        self._log_outcome(running, job, "done")
        return True

    async def _reserve(self, limiter: RateLimiter, running: RunningJob) -> Reservation:
        """Reserve a slot, waiting out a Redis outage: the job is ours (the heartbeat keeps its
        lease) and has not run, so it must neither fail nor be left to its lease."""
        for attempt in itertools.count():
            try:
                return await limiter.reserve(running.claimed.id)
            except redis.RedisError as exc:
                if self.stopping():
                    raise asyncio.CancelledError from exc  # handed back by _run_job
                delay_s = RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)]
                log.debug("rate limiter unreachable (%s); retrying in %.2fs", exc, delay_s)
                await asyncio.sleep(delay_s)
        raise AssertionError("unreachable")

    def _limiter_for(self, job: BaseJob[Any]) -> RateLimiter | None:
        limit = job.get_rate_limit()
        if limit is None or limit.is_unlimited:
            return None
        key = (job.get_rate_limit_key(), limit)
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = RateLimiter.for_key(key[0], limit, self.redis, self.keys, self.clock)
            self._limiters[key] = limiter
        return limiter

    async def _on_failure(
        self,
        job: BaseJob[Any],
        running: RunningJob,
        exc: Exception,
        limiter: RateLimiter | None,
        reservation: Reservation | None,
    ) -> None:
        if isinstance(exc, AlreadyDone):
            self._complete(running)
            self._log_outcome(running, job, "done", str(exc) or "already done")
            return
        if isinstance(exc, RateLimitedJobError):
            reset_ms = int(exc.reset_at * 1000)
            if limiter is not None:
                with contextlib.suppress(redis.RedisError):  # the job itself still waits
                    reset_ms = await limiter.block_until(reset_ms, give_back=reservation)
            self._park(running, reset_ms, limiter.rate_key if limiter else "")
            self._log_outcome(running, job, "rate-limited", f"remote: {_until(reset_ms)}")
            return
        gave_back = isinstance(exc, JobError) and not exc.reached_remote
        if limiter is not None and reservation is not None and gave_back:
            with contextlib.suppress(redis.RedisError):  # keeping the slot errs on the safe side
                await limiter.release(reservation)
        self._retry_or_bury(job, running, exc)

    def _retry_or_bury(self, job: BaseJob[Any], running: RunningJob, exc: Exception) -> None:
        policy = RetryPolicy.from_config(job.get_retry_config())
        retry_after = exc.retry_after if isinstance(exc, RetryableJobError) else None
        decision = decide_after_failure(
            running.attempt,
            policy,
            self.rng,
            permanent=isinstance(exc, PermanentJobError),
            retry_after_s=retry_after,
        )
        error = error_json(type(exc).__name__, text_of(exc), traceback_tail(exc))
        if isinstance(decision, GiveUp):
            self._bury(running, error, attempt_failed=True)
            self._log_outcome(running, job, "dead", f"{decision.reason}: {one_line(exc)}")
            return
        now_ms = self.clock.now_ms()
        due_ms = now_ms + int(decision.delay_s * 1000)
        self.settlements.add(
            running,
            self.scripts.defer(
                self.keys.retry,
                running.claimed.id,
                running.owner,
                due_ms,
                running.attempt,
                error,
                now_ms,
            ),
        )
        self._log_outcome(running, job, "retry", f"in {decision.delay_s:.0f}s: {one_line(exc)}")

    def _log_outcome(
        self, running: RunningJob, job: BaseJob[Any] | str, outcome: str, detail: str = ""
    ) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        duration_ms = (time.perf_counter() - running.started) * 1000
        job_type = job if isinstance(job, str) else job.params.job_type
        job_id, priority, attempt = running.claimed.id, running.priority, running.attempt
        message = (
            f"job {job_id} {job_type} p{priority} attempt {attempt} {outcome} "
            f"in {duration_ms:.1f}ms{': ' + detail if detail else ''}"
        )
        fields = {
            "job_id": job_id,
            "job_type": job_type,
            "priority": priority,
            "attempt": attempt,
            "outcome": outcome,
            "duration_ms": round(duration_ms, 2),
        }
        log_job_outcome(log, message, fields)

    # -- settling --------------------------------------------------------------------------

    def _complete(self, running: RunningJob) -> None:
        self.settlements.add_completed(running)

    def _park(self, running: RunningJob, until_ms: int, rate_key: str) -> None:
        call = self.scripts.defer(
            self.keys.parked, running.claimed.id, running.owner, until_ms, None, "",
            self.clock.now_ms(), rate_key,
        )  # fmt: skip
        self.settlements.add(running, call)

    def _bury(self, running: RunningJob, error: str, *, attempt_failed: bool) -> None:
        call = self.scripts.bury(
            running.claimed.id, running.owner, running.attempt, error,
            self.clock.now_ms(), attempt_failed=attempt_failed,
        )  # fmt: skip
        self.settlements.add(running, call)

    def hand_back_all(self, jobs: list[RunningJob]) -> None:
        """Hand back several jobs in one call, keeping their order at the front of the list
        (each goes on the front, so the last goes first)."""
        pairs = [
            (running.claimed.id, running.owner)
            for running in reversed(jobs)
            if self.settlements.still_ours(running)
        ]
        if pairs:
            self.settlements.calls.append(self.scripts.hand_back(pairs))


def _until(at_ms: int) -> str:
    return "until " + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at_ms / 1000))
