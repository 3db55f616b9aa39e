"""Running one claimed job: decode it, gate it through its rate limiter, execute it, and turn
the outcome into the settlement that moves it (done, retry, parked or dead).

Settlements are not sent here: they wait in a :class:`SettlementBuffer` and the worker sends them
with its next claim, one round trip for a whole batch of finished jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from qworker.clients import ClientContainer
from qworker.clock import Clock
from qworker.config import Settings
from qworker.dependencies import dependency_results
from qworker.error_records import (
    error_json,
    one_line,
    text_of,
    traceback_tail,
)
from qworker.errors import (
    AlreadyDone,
    JobError,
    JobHookFailed,
    PayloadTooLarge,
    PermanentJobError,
    RateLimitedJobError,
    ResultNotStored,
    RetryableJobError,
    UnknownJobType,
    ValidationFailed,
)
from qworker.jobs.base import BaseJob, JobFactory
from qworker.logs import log_job_outcome
from qworker.models import CHECKPOINT_FIELD_PREFIX, RateLimitStats
from qworker.policy import (
    GiveUp,
    RetryPolicy,
    clamp_rate_limit_reset_s,
    decide_after_failure,
    finite_number,
)
from qworker.rate_limiter import RateLimit, RateLimiter, Reservation
from qworker.running import (
    RECONNECT_BACKOFF_S,
    REDIS_ERRORS,
    TRANSIENT_REDIS_ERRORS,
    RedisJobContext,
    RunningJob,
    SettlementBuffer,
    retry_bookkeeping,
)
from qworker.scripts import ScriptCall
from qworker.service import QueueService
from qworker.unknown_types import UNKNOWN_SINCE_FIELD, UnknownTypes

if TYPE_CHECKING:
    from qworker.metrics.worker import WorkerMetrics

log = logging.getLogger("qworker.worker")

# checkpoint.lua marks a job that has checkpoints, so most jobs skip looking for them.
HAS_CHECKPOINTS_FIELD = "has_checkpoints"


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
        metrics: WorkerMetrics | None = None,
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
        # How many jobs this worker settled, by outcome: done, retried, dead, parked, deferred.
        self.outcomes: Counter[str] = Counter()
        self.metrics = metrics
        self.unknown_types = UnknownTypes(
            self.keys, self.scripts, settings.unknown_type_grace_s, settings.keep_finished_ms
        )

    async def run(self, running: RunningJob) -> bool:
        """Run one job to its settlement; True when it is done."""
        if self.metrics is not None:
            ready_at_ms = _ready_at_ms(running.claimed.fields)
            running.wait_s = max(self.clock.now_ms() - ready_at_ms, 0) / 1000
        job = self.decode(running)
        if job is None:
            return False
        if UNKNOWN_SINCE_FIELD in running.claimed.fields:  # it waited for a worker like us
            await self._clear_unknown_mark(running)
        if deps := running.claimed.fields.get("deps"):  # only a job in a flow pays this read
            # A read, safe to repeat: a lost connection is retried, not the job's attempt.
            job.context.dependency_results = await retry_bookkeeping(
                lambda: dependency_results(self.service, deps.split(",")),
                f"dependency results of job {running.claimed.id}",
                self.stopping,
            )
        return await self._gate_and_execute(job, running)

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
        except UnknownJobType as exc:
            self._wait_for_a_worker_that_knows(running, exc)
            return None
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

    def _wait_for_a_worker_that_knows(self, running: RunningJob, exc: UnknownJobType) -> None:
        outcome, calls = self.unknown_types.settle(running, exc, self.clock.now_ms())
        if outcome == "dead":
            error = self.unknown_types.dead_letter_error(exc)
            self._bury(running, error, attempt_failed=False, before=calls)
        elif self.settlements.add(running, *calls):
            self._count(running, outcome)
        self._log_outcome(running, exc.job_type, outcome, "unknown job type")

    async def _clear_unknown_mark(self, running: RunningJob) -> None:
        call = self.unknown_types.clear(running, self.clock.now_ms())
        try:
            await self.service.runner.run(call)
        except REDIS_ERRORS as exc:  # only a count is off; the job itself is fine
            log.debug("could not clear the unknown-type mark of %s: %s", running.claimed.id, exc)

    async def _gate_and_execute(self, job: BaseJob[Any], running: RunningJob) -> bool:
        try:
            limiter = self._limiter_for(job)
            timeout_s = _timeout_of(job)
        except JobHookFailed as exc:
            self._retry_or_bury(job, running, exc)
            return False
        reservation: Reservation | None = None
        if limiter is not None:
            reservation = await self._reserve(limiter, running)
            if not reservation.granted:
                self._park(running, reservation.next_allowed_ms, limiter.rate_key)
                self._log_outcome(running, job, "rate-limited", _until(reservation.next_allowed_ms))
                return False
        if not self.settlements.begin(running):
            # Handed back by the heartbeat while the event loop was stuck behind another job:
            # it is someone else's now, and must not run here too.
            if limiter is not None and reservation is not None:
                await self._release(limiter, reservation)
            self.settlements.still_ours(running)  # the mark has served
            if self.metrics is not None:
                self.metrics.job_ended(job.params.job_type, "handed_back")
            self._log_outcome(running, job, "handed back", "while the event loop was stuck")
            return False
        if timeout_s is not None:
            running.deadline = time.perf_counter() + timeout_s
        try:
            if self.metrics is not None:
                running.executing_since = time.perf_counter()
            outcome = await job.execute()
        except asyncio.CancelledError:
            running.deadline = None
            if not running.timed_out or running.cancel_delivered:
                raise  # a stop (handed back) or an operator's cancel (see Worker._run_job)
            # Cancelled by the worker's watchdog, not by a shutdown: a failed attempt.
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            overrun = TimeoutError(f"the job ran longer than its timeout of {timeout_s}s")
            await self._on_failure(job, running, overrun, limiter, reservation)
            return False
        except Exception as exc:
            running.deadline = None  # what follows is qworker's, not the job's, time
            await self._on_failure(job, running, exc, limiter, reservation)
            return False
        running.deadline = None
        if running.cancel_delivered:
            # The job caught the cancel and returned: it still ends as the operator asked.
            self.cancel(running, "while it ran")
            return False
        if outcome is True or outcome is None:
            self._complete(running)
            self._log_done(running, job)
            return True
        if outcome is False:
            error = RetryableJobError("execute() returned False")
            await self._on_failure(job, running, error, limiter, reservation)
            return False
        try:
            result_json = self._result_json(outcome)
        except ResultNotStored as exc:
            await self._on_failure(job, running, exc, limiter, reservation)
            return False
        self._complete(running, result_json)
        self._log_done(running, job)
        return True

    def _count(self, running: RunningJob, outcome: str) -> None:
        """One more job settled here with ``outcome``; for the metrics, an attempt that ran out
        of its time (then retried or dead) ends as ``timeout``, and one deferred for a worker
        that knows its type as ``parked``."""
        self.outcomes[outcome] += 1
        if self.metrics is not None:
            if running.timed_out and outcome in ("retried", "dead"):
                outcome = "timeout"
            elif outcome == "deferred":
                outcome = "parked"
            since = running.executing_since
            self.metrics.job_settled(
                running.claimed.fields.get("job_type"),
                outcome,
                time.perf_counter() - since if since else None,
                running.wait_s,
            )

    def _log_done(self, running: RunningJob, job: BaseJob[Any]) -> None:
        if running.cancel_held:
            # The job record keeps cancel_requested_at_ms: job show says the same.
            detail = "a cancel arrived while it could not be interrupted; the outcome stands"
            self._log_outcome(running, job, "done", detail)
        else:
            self._log_outcome(running, job, "done")

    def _result_json(self, result: object) -> str:
        """The result as stored, or ResultNotStored saying why it cannot be."""
        try:
            text = json.dumps(result, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ResultNotStored(
                f"execute() returned {_shown(result)}, which is not JSON-serialisable ({exc})"
            ) from None
        limit = self.settings.max_result_bytes
        if len(text) * 4 > limit and (size := len(text.encode())) > limit:
            raise ResultNotStored(
                f"execute() returned a result of {size} bytes as JSON, over the "
                f"{limit} of QWORKER_MAX_RESULT_BYTES"
            )
        return text

    def cancel(self, running: RunningJob, detail: str) -> None:
        """Settle a job an operator canceled (bury.lua ends it 'canceled', never retried)."""
        error = error_json("Canceled", f"canceled by an operator {detail}")
        call = self.scripts.bury(
            running.claimed.id, running.owner, running.attempt, error, self.clock.now_ms(),
            attempt_failed=False, keep_ms=self.settings.keep_finished_ms,
        )  # fmt: skip
        if self.settlements.add(running, call):
            self._count(running, "canceled")
        job_type = running.claimed.fields.get("job_type") or "-"
        self._log_outcome(running, job_type, "canceled", detail)

    async def _reserve(self, limiter: RateLimiter, running: RunningJob) -> Reservation:
        """Reserve a slot, waiting out a Redis outage: the job is ours (the heartbeat keeps its
        lease) and has not run, so it must neither fail nor be left to its lease."""
        job_id = running.claimed.id
        try:
            return await retry_bookkeeping(
                lambda: limiter.reserve(job_id), f"rate limit of job {job_id}", self.stopping
            )
        except TRANSIENT_REDIS_ERRORS as exc:
            raise asyncio.CancelledError from exc  # a stop: handed back, never started

    def _limiter_for(self, job: BaseJob[Any]) -> RateLimiter | None:
        """The shared limiter of the job's key; what its hooks raise or answer amiss is the
        job's failure (JobHookFailed), not qworker's."""
        try:
            limit = job.get_rate_limit()
        except Exception as exc:
            raise JobHookFailed("get_rate_limit()", exc) from exc
        if limit is None:
            return None
        if not isinstance(limit, RateLimit):
            raise JobHookFailed("get_rate_limit()", f"answered {_shown(limit)}, not a RateLimit")
        if limit.is_unlimited:
            return None
        try:
            rate_key = job.get_rate_limit_key()
        except Exception as exc:
            raise JobHookFailed("get_rate_limit_key()", exc) from exc
        if not isinstance(rate_key, str) or not rate_key:
            raise JobHookFailed("get_rate_limit_key()", f"answered {_shown(rate_key)}")
        key = (rate_key, limit)
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
            self._log_outcome(running, job, "done", text_of(exc) or "already done")
            return
        if isinstance(exc, RateLimitedJobError):
            await self._wait_out_rate_limit(job, running, exc, limiter, reservation)
            return
        gave_back = isinstance(exc, JobError) and not getattr(exc, "reached_remote", True)
        if limiter is not None and reservation is not None and gave_back:
            await self._release(limiter, reservation)
        self._retry_or_bury(job, running, exc)

    async def _wait_out_rate_limit(
        self,
        job: BaseJob[Any],
        running: RunningJob,
        exc: RateLimitedJobError,
        limiter: RateLimiter | None,
        reservation: Reservation | None,
    ) -> None:
        """Park the job until the remote side's reset, which every worker's limiter learns
        (giving back the refused attempt's slot in the same step). Whatever job type reported
        it, a reset already past or absurdly far is clamped."""
        reset_at = getattr(exc, "reset_at", None)
        reset_s = finite_number(reset_at)
        if reset_s is None:
            if limiter is not None and reservation is not None:
                await self._release(limiter, reservation)
            hook = JobHookFailed("RateLimitedJobError", f"reset_at {_shown(reset_at)} is no time")
            self._retry_or_bury(job, running, hook)
            return
        reset_ms = int(clamp_rate_limit_reset_s(reset_s, self.clock.now_ms() / 1000) * 1000)
        if limiter is not None:
            with contextlib.suppress(*REDIS_ERRORS):  # the job itself still waits
                reset_ms = await retry_bookkeeping(
                    lambda: limiter.block_until(reset_ms, give_back=reservation),
                    "rate limit block",
                    self.stopping,
                )
        self._park(running, reset_ms, limiter.rate_key if limiter else "")
        self._log_outcome(running, job, "rate-limited", f"remote: {_until(reset_ms)}")

    async def _release(self, limiter: RateLimiter, reservation: Reservation) -> None:
        """Give back the slot of an attempt that never reached the remote side."""
        with contextlib.suppress(*REDIS_ERRORS):  # keeping the slot errs on the safe side
            await retry_bookkeeping(
                lambda: limiter.release(reservation), "rate limit release", self.stopping
            )

    def _retry_policy(self, job: BaseJob[Any], running: RunningJob) -> RetryPolicy:
        try:
            return RetryPolicy.from_config(job.get_retry_config())
        except Exception as exc:
            log.warning(
                "job %s: get_retry_config() failed (%s); using the default retry policy",
                running.claimed.id,
                one_line(exc),
            )
            return RetryPolicy()

    def _retry_or_bury(self, job: BaseJob[Any], running: RunningJob, exc: Exception) -> None:
        policy = self._retry_policy(job, running)
        retry_after = None
        if isinstance(exc, RetryableJobError):
            retry_after = finite_number(getattr(exc, "retry_after", None))
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
        call = self.scripts.defer(
            self.keys.retry, running.claimed.id, running.owner, due_ms, running.attempt, error,
            now_ms, state="retry", keep_ms=self.settings.keep_finished_ms,
        )  # fmt: skip
        if self.settlements.add(running, call):
            self._count(running, "retried")
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

    def _complete(self, running: RunningJob, result_json: str = "") -> None:
        if self.settlements.add_completed(running, result_json):
            self._count(running, "done")

    def _park(self, running: RunningJob, until_ms: int, rate_key: str) -> None:
        call = self.scripts.defer(
            self.keys.parked, running.claimed.id, running.owner, until_ms, None, "",
            self.clock.now_ms(), state="parked", keep_ms=self.settings.keep_finished_ms,
            rate_key=rate_key,
        )  # fmt: skip
        if self.settlements.add(running, call):
            self._count(running, "parked")

    def _bury(
        self,
        running: RunningJob,
        error: str,
        *,
        attempt_failed: bool,
        before: Sequence[ScriptCall[Any]] = (),
    ) -> None:
        call = self.scripts.bury(
            running.claimed.id, running.owner, running.attempt, error,
            self.clock.now_ms(), attempt_failed=attempt_failed,
            keep_ms=self.settings.keep_finished_ms,
        )  # fmt: skip
        if self.settlements.add(running, *before, call):
            self._count(running, "dead")

    def hand_back_all(self, jobs: list[RunningJob]) -> None:
        """Hand back several jobs in one call, keeping their order at the front of the list
        (each goes on the front, so the last goes first). A job that had started counts one
        hand-back; one handed back ``max_handbacks`` times goes to the dead-letter queue."""
        ours = [running for running in reversed(jobs) if self.settlements.still_ours(running)]
        triples = [(running.claimed.id, running.owner, running.ran) for running in ours]
        if self.metrics is not None:
            for running in ours:
                self.metrics.job_ended(running.claimed.fields.get("job_type"), "handed_back")
        if triples:
            limit = self.settings.max_handbacks
            error = error_json(
                "HandedBack",
                f"handed back {limit} times without finishing: it was running when its worker "
                "stopped, or qworker failed around it (QWORKER_MAX_HANDBACKS)",
            )
            keep_ms = self.settings.keep_finished_ms
            call = self.scripts.hand_back(triples, limit, error, self.clock.now_ms(), keep_ms)
            self.settlements.add_for(ours, call)


def _ready_at_ms(fields: dict[str, str]) -> int:
    """When a job could first have started this attempt, in ms: the end of its last backoff
    or rate-limit wait (always the latest), else of its delay, else its enqueue time."""
    value = fields.get("due_at_ms") or fields.get("run_at_ms") or fields.get("enqueued_at_ms")
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _timeout_of(job: BaseJob[Any]) -> float | None:
    """The job's ``timeout_s``, checked: a job may set it to anything."""
    try:
        timeout_s = job.timeout_s
    except Exception as exc:
        raise JobHookFailed("timeout_s", exc) from exc
    if timeout_s is None or (type(timeout_s) is float and math.isfinite(timeout_s)):
        return timeout_s  # the common cases, checked at once
    number = finite_number(timeout_s)
    if number is None:
        raise JobHookFailed("timeout_s", f"{_shown(timeout_s)} is not a number of seconds")
    return number


def _shown(value: object) -> str:
    """A short repr of what a job answered (its repr is job code too)."""
    try:
        text = repr(value)
    except Exception:
        return f"a {type(value).__name__}"
    return text if len(text) <= 80 else f"{text[:80]}..."


def _until(at_ms: int) -> str:
    return "until " + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at_ms / 1000))


__all__ = [
    "RECONNECT_BACKOFF_S",
    "JobExecutor",
    "RedisJobContext",
    "RunningJob",
    "SettlementBuffer",
    "error_json",  # kept here for callers of the former home of error records
    "retry_bookkeeping",
]
