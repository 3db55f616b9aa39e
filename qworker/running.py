"""A claimed job while this worker holds it, and what surrounds its run: the job's context (its
checkpoints, written to Redis), the buffer of settlements waiting for the next round trip, and
the retry of qworker's own bookkeeping calls when a connection is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis

from qworker.connection import CONNECTION_ERRORS
from qworker.errors import LeaseLost
from qworker.jobs.base import JobContext
from qworker.models import CHECKPOINT_FIELD_PREFIX
from qworker.scripts import ClaimedJob, QueueScripts, ScriptCall
from qworker.service import QueueService

log = logging.getLogger("qworker.worker")

T = TypeVar("T")

RECONNECT_BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
# What a lost connection, a failover or a migrating cluster slot look like: they pass with time.
TRANSIENT_REDIS_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,
)
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, *CONNECTION_ERRORS)


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
    # Set once execute() is entered: a hand-back after that counts against max_handbacks.
    ran: bool = False
    # Set when the heartbeat found the lease lost: the job is no longer ours to settle.
    lost: bool = False
    # Set when an operator's cancel was delivered to the job's task: it ends 'canceled'.
    cancel_delivered: bool = False
    # How many cancel shields (JobContext.cancel_shield) the job is inside: a cancel waits.
    shields: int = 0
    # Set when a cancel arrived while the job was inside a shield (it was not delivered yet).
    cancel_held: bool = False
    # For the worker's metrics only (else left as is): how long the job waited to start, and
    # the perf_counter() time execute() was entered.
    wait_s: float | None = None
    executing_since: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        """Identifies this claim: the same job may be claimed again once recovered."""
        return (self.claimed.id, self.owner)


class RedisJobContext(JobContext):
    """A context whose checkpoints are written to the job in Redis, if the job is still ours."""

    def __init__(
        self, service: QueueService, running: RunningJob, checkpoints: dict[str, str]
    ) -> None:
        fields = running.claimed.fields
        scheduled_for_ms = fields.get("scheduled_for_ms")
        super().__init__(
            running.claimed.id,
            running.attempt,
            checkpoints,
            schedule=fields.get("schedule") or None,
            scheduled_for=(
                datetime.fromtimestamp(int(scheduled_for_ms) / 1000, UTC)
                if scheduled_for_ms
                else None
            ),
        )
        self._service = service
        self._running = running

    async def checkpoint(self, name: str, value: str) -> None:
        call = self._service.scripts.checkpoint(
            self.job_id, self._running.owner, CHECKPOINT_FIELD_PREFIX + name, value
        )
        # Recording the same value twice is harmless, so a lost connection (a stale pooled one
        # after a Redis restart) is retried here instead of failing the job's attempt.
        run = self._service.runner.run
        if not await retry_bookkeeping(lambda: run(call), f"checkpoint of job {self.job_id}"):
            raise LeaseLost(f"job {self.job_id} is no longer owned by this worker")
        self.checkpoints[name] = value

    async def record_dry_run(self) -> None:
        call = self._service.scripts.mark_dry_run(
            self.job_id, self._running.owner, self._service.clock.now_ms()
        )
        run = self._service.runner.run
        await retry_bookkeeping(lambda: run(call), f"dry-run mark of job {self.job_id}")
        self.dry_run = True

    @contextlib.contextmanager
    def cancel_shield(self) -> Iterator[None]:
        # The worker's cancel watch skips a job inside a shield, and looks again a second later.
        self._running.shields += 1
        try:
            yield
        finally:
            self._running.shields -= 1


async def retry_bookkeeping(
    call: Callable[[], Awaitable[T]], what: str, give_up: Callable[[], bool] = lambda: False
) -> T:
    """Run one of qworker's own idempotent steps around a job (a checkpoint, a rate-limiter
    call) until Redis answers: a lost connection is qworker's problem, never the job's attempt.
    Each retry takes a fresh connection; the delays are ``RECONNECT_BACKOFF_S``. Raises the
    connection error only once ``give_up()`` says so (at a stop, for steps that may be skipped).
    """
    for attempt in itertools.count():
        try:
            return await call()
        except TRANSIENT_REDIS_ERRORS as exc:
            if give_up():
                raise
            delay_s = RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)]
            # The first failure is most often one stale pooled connection: not worth a warning.
            level = logging.DEBUG if attempt == 0 else logging.WARNING
            log.log(level, "%s: Redis unreachable (%s); retrying in %.2fs", what, exc, delay_s)
            await asyncio.sleep(delay_s)
    raise AssertionError("unreachable")


class SettlementBuffer:
    """Settlements of finished jobs waiting to be sent, and the jobs this worker must not settle
    because their lease was lost (the heartbeat thread reports those)."""

    def __init__(
        self, scripts: QueueScripts, keep_ms: int, now_ms: Callable[[], int | None]
    ) -> None:
        self.scripts = scripts
        self.keep_ms = keep_ms
        self.now_ms = now_ms
        self.calls: list[ScriptCall[Any]] = []
        # The claims each of those calls settles (the same order).
        self._claims: list[tuple[tuple[str, str], ...]] = []
        # Finished jobs (id, owner token, result JSON or ''): one complete.lua call
        # acknowledges all of them.
        self.completed: list[tuple[str, str, str]] = []
        self._lost: set[tuple[str, str]] = set()  # (job id, owner token)
        self._lock = threading.Lock()
        # The claims (job id, owner token) settled here whose settlement Redis may not have yet
        # (lost_claims.py reads them): those of the sends on their way, by send number, and
        # those of the next send. A list append per job; an acknowledged send drops its list.
        self._sent_claims: dict[int, list[tuple[str, str]]] = {}
        self._next_claims: list[tuple[str, str]] = []
        self._next_send = 0

    def still_ours(self, running: RunningJob) -> bool:
        """False (once) for a job whose lease the heartbeat found lost."""
        with self._lock:
            if running.key in self._lost:
                self._lost.discard(running.key)
                return False
        return True

    def is_lost(self, running: RunningJob) -> bool:
        """Whether the job was marked lost, without using the mark up (see still_ours)."""
        with self._lock:
            return running.key in self._lost

    def begin(self, running: RunningJob) -> bool:
        """Mark the job as entering execute() unless it was marked lost. The check and the mark
        are one step under the lock ``lose_waiting`` takes, so a job the heartbeat hands back is
        never also run here."""
        with self._lock:
            if running.key in self._lost:
                return False
            running.ran = True
            return True

    def lose_waiting(self, held: list[RunningJob]) -> list[tuple[str, str]]:
        """Mark lost the held jobs that have not entered execute(), for the heartbeat to hand
        back; their claims (job id, owner token)."""
        with self._lock:
            waiting = [running.key for running in held if not running.ran]
            self._lost.update(waiting)
            return waiting

    def add(self, running: RunningJob, *calls: ScriptCall[Any]) -> bool:
        """Queue ``calls`` (in order) unless the job's lease was lost; True when queued."""
        if self.still_ours(running):
            self.calls.extend(calls)
            self._claims.extend([(running.key,)] * len(calls))
            self._next_claims.append(running.key)
            return True
        return False

    def add_completed(self, running: RunningJob, result_json: str = "") -> bool:
        if self.still_ours(running):
            self.completed.append((running.claimed.id, running.owner, result_json))
            self._next_claims.append(running.key)
            return True
        return False

    def add_for(self, jobs: list[RunningJob], call: ScriptCall[Any]) -> None:
        """Queue one call that settles several jobs (a hand-back of many)."""
        self.retry(call, tuple(running.key for running in jobs))

    def retry(self, call: ScriptCall[Any], claims: tuple[tuple[str, str], ...]) -> None:
        """Queue ``call`` (one Redis refused) for the next send, with the claims it settles."""
        self.calls.append(call)
        self._claims.append(claims)
        self._next_claims.extend(claims)

    def acknowledged(self, send: int) -> None:
        """Redis answered every call of ``send`` (those it refused are queued again, with a
        later number): their claims are no longer unacknowledged."""
        for number in [number for number in self._sent_claims if number <= send]:
            del self._sent_claims[number]

    @property
    def unacknowledged(self) -> set[tuple[str, str]]:
        """The claims settled here whose settlement Redis may not have yet."""
        claims = set(self._next_claims)
        for sent in self._sent_claims.values():
            claims.update(sent)
        return claims

    def mark_lost(self, claims: list[tuple[str, str]]) -> None:
        """``claims``: (job id, owner token) of the claims whose lease was lost."""
        with self._lock:
            self._lost.update(claims)

    def take(
        self,
    ) -> tuple[list[ScriptCall[Any]], list[tuple[tuple[str, str], ...]], int]:
        """Everything buffered, to send: the calls, the claims each settles, and the number of
        this send (see acknowledged)."""
        calls, self.calls = self.calls, []
        claims, self._claims = self._claims, []
        if self.completed:
            calls.insert(0, self.scripts.complete(self.completed, self.now_ms(), self.keep_ms))
            claims.insert(0, tuple((job_id, owner) for job_id, owner, _ in self.completed))
            self.completed = []
        send, self._next_send = self._next_send, self._next_send + 1
        self._sent_claims[send], self._next_claims = self._next_claims, []
        return calls, claims, send

    def put_back(
        self, calls: list[ScriptCall[Any]], claims: list[tuple[tuple[str, str], ...]]
    ) -> None:
        """A send whose fate is unknown (the connection was lost): all of it goes again."""
        self.calls = calls + self.calls
        self._claims = claims + self._claims

    def __len__(self) -> int:
        return len(self.calls) + len(self.completed)
