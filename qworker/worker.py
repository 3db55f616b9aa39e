"""Worker: claims jobs in priority order under a lease, runs them, and settles each outcome.

The loop is a few named steps: *claim* (with the acknowledgements of finished jobs in the same
round trip), *decode*, *gate* (the shared rate limiter), *execute* and *settle*. Every step that
moves a job is one Lua script, so any number of workers on any number of hosts can share a
queue, and a worker killed at any moment loses nothing: its leases expire and another worker
takes the jobs back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import signal
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import redis

from qworker.clients import ClientContainer
from qworker.clock import SYSTEM_CLOCK, Clock
from qworker.config import Settings, mask_url
from qworker.connection import CONNECTION_ERRORS
from qworker.errors import (
    AlreadyDone,
    JobError,
    PayloadTooLarge,
    PermanentJobError,
    RateLimitedJobError,
    RetryableJobError,
    ValidationFailed,
)
from qworker.heartbeat import Heartbeat
from qworker.jobs.base import BaseJob, JobContext, JobFactory, load_job_modules
from qworker.models import CHECKPOINT_FIELD_PREFIX, RateLimitStats
from qworker.models import JobError as JobErrorRecord
from qworker.policy import DEFAULT_MAX_RETRIES, GiveUp, RetryPolicy, decide_after_failure
from qworker.rate_limiter import RateLimit, RateLimiter, Reservation
from qworker.scripts import ClaimedJob, ScriptCall
from qworker.service import QueueService

log = logging.getLogger("qworker.worker")

PROMOTE_INTERVAL_S = 1.0
MAINTENANCE_BATCH = 500
IDLE_POLL_S = 1.0
RECONNECT_BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
TRACEBACK_LINES = 12


@dataclass
class RunningJob:
    claimed: ClaimedJob
    owner: str
    priority: int
    attempt: int
    started: float
    task: asyncio.Task[None] | None = None


class RedisJobContext(JobContext):
    """A context whose checkpoints are written to the job in Redis, if the job is still ours."""

    def __init__(self, worker: Worker, running: RunningJob, checkpoints: dict[str, str]) -> None:
        super().__init__(running.claimed.id, running.attempt, checkpoints)
        self._worker = worker
        self._running = running

    async def checkpoint(self, name: str, value: str) -> None:
        from qworker.errors import LeaseLost

        call = self._worker.service.scripts.checkpoint(
            self.job_id, self._running.owner, CHECKPOINT_FIELD_PREFIX + name, value
        )
        if not await self._worker.service.runner.run(call):
            raise LeaseLost(f"job {self.job_id} is no longer owned by this worker")
        self.checkpoints[name] = value


class Worker:
    """Runs jobs from one namespace until stopped (or, in burst mode, until none is ready)."""

    def __init__(
        self,
        queue_service: QueueService | None = None,
        *,
        settings: Settings | None = None,
        concurrency: int = 1,
        burst: bool = False,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        clients: ClientContainer | None = None,
        job_modules: list[str] | None = None,
        grace_s: float | None = None,
        idle_poll_s: float = IDLE_POLL_S,
        heartbeat_client: Callable[[], redis.Redis] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValidationFailed(f"concurrency must be at least 1, not {concurrency}")
        self.settings = settings or (queue_service.settings if queue_service else Settings())
        self.service = queue_service or QueueService(settings=self.settings, clock=clock)
        self.keys = self.service.keys
        self.scripts = self.service.scripts
        self.concurrency = concurrency
        self.burst = burst
        self.clock = clock
        self.rng = rng or random.Random()
        self.clients = clients or ClientContainer(self.settings)
        self.grace_s = self.settings.shutdown_grace_seconds if grace_s is None else grace_s
        self.idle_poll_s = idle_poll_s
        # Makes the heartbeat thread's own sync client; by default one from the service's URL.
        # Needed when the service was given a client instead of a URL (fakeredis, the demo).
        self.heartbeat_client = heartbeat_client
        self.lease_ms = int(self.settings.lease_seconds * 1000)
        self.worker_id = uuid.uuid4().hex
        self.jobs_done = 0
        load_job_modules([*self.settings.job_modules, *(job_modules or [])])

        self._running: dict[str, RunningJob] = {}
        self._owned_lock = threading.Lock()
        self._lost: set[str] = set()
        self._settlements: list[ScriptCall[Any]] = []
        self._job_finished = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._stop_now = False
        self._limiters: dict[tuple[str, RateLimit], RateLimiter] = {}
        self._next_promotion = 0.0
        self._next_recovery = 0.0
        # Expired leases are looked for a few times per lease, and at least every 15 s.
        self.recovery_interval_s = min(max(self.settings.lease_seconds / 4, 0.25), 15.0)
        self._next_due_ms: int | None = None
        self._heartbeat: Heartbeat | None = None
        self._redis_down_since: float | None = None
        self._reconnect_attempt = 0

    # -- lifecycle -------------------------------------------------------------------------

    def request_stop(self, *, immediate: bool = False) -> None:
        """Take no new jobs; with ``immediate`` also cancel running ones and hand them back at
        once (if Redis cannot be reached then, their leases still protect them)."""
        if self._stop_requested.is_set() and not immediate:
            immediate = True
        self._stop_requested.set()
        if immediate:
            self._stop_now = True
            for running in list(self._running.values()):
                if running.task is not None:
                    running.task.cancel()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop gracefully; a second one stops at once."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self._stop_requested.is_set():
            log.warning("%s again: stopping now; unfinished jobs go back to their queue", name)
            self.request_stop(immediate=True)
        else:
            log.info(
                "%s: finishing running jobs (grace %.0fs), taking no new ones", name, self.grace_s
            )
            self.request_stop()

    async def run(self) -> None:
        await self.service.ping()
        await self.service.runner.load_all()
        self._heartbeat = Heartbeat(
            settings=self.service.connection_settings,
            keys=self.keys,
            worker_id=self.worker_id,
            concurrency=self.concurrency,
            lease_ms=self.lease_ms,
            clock=self.clock,
            owned_jobs=self._owned_jobs,
            jobs_done=lambda: self.jobs_done,
            on_lost=self._mark_lost,
            client=self.heartbeat_client() if self.heartbeat_client is not None else None,
        )
        self._heartbeat.start()
        try:
            await self._loop()
        finally:
            await self._shutdown()

    async def _loop(self) -> None:
        while not self._stop_requested.is_set():
            try:
                if not await self._step():
                    return
                self._redis_back()
            except redis.RedisError as exc:
                # Connection loss, a restart still loading its data, a replica that became
                # read-only in a failover: all pass with time, so wait and try again.
                await self._redis_down(exc)

    async def _step(self) -> bool:
        """One turn of the loop; False when a burst worker has nothing left to do."""
        await self._maintain_if_due()
        free = self.concurrency - len(self._running)
        if free <= 0:
            await self._wait_for_a_free_slot()
            return True
        claimed = await self._settle_and_claim(free)
        if claimed:
            for job in claimed:
                self._start(job)
            return True
        if self.burst:
            return await self._burst_has_more()
        await self._wait_for_work()
        return True

    async def _burst_has_more(self) -> bool:
        if self._running:
            await self._wait_for_a_free_slot()
            return True
        return await self._maintain_if_due(force=True) > 0

    # -- claim -----------------------------------------------------------------------------

    async def _settle_and_claim(self, free: int) -> list[ClaimedJob]:
        """Send the settlements of finished jobs and a claim for ``free`` new ones in one
        round trip."""
        now_ms = self.clock.now_ms()
        claim = self.scripts.claim(
            self.worker_id, now_ms, now_ms + self.lease_ms, free, uuid.uuid4().hex
        )
        replies = await self._send_settlements(claim)
        claimed = replies[-1]
        if isinstance(claimed, Exception):
            raise claimed
        return cast(list[ClaimedJob], claimed)

    async def _flush_settlements(self) -> None:
        await self._send_settlements()

    async def _send_settlements(self, *extra: ScriptCall[Any]) -> list[Any]:
        """Run the buffered settlements (plus ``extra`` calls). A settlement Redis refused is
        kept for the next round; on a lost connection all of them are, since any may not have
        run (settling twice is harmless: the second finds the job no longer owned)."""
        settlements, self._settlements = self._settlements, []
        if not settlements and not extra:
            return []
        try:
            replies = await self.service.runner.run_each([*settlements, *extra])
        except BaseException:
            self._settlements = settlements + self._settlements
            raise
        for call, reply in zip(settlements, replies, strict=False):
            if isinstance(reply, Exception):
                log.error("Redis refused to settle a job (%s); will try again", reply)
                self._settlements.append(call)
            else:
                self._report_settlement(call, reply)
        return replies[len(settlements) :]

    def _report_settlement(self, call: ScriptCall[Any], reply: Any) -> None:
        if call.script.name == "complete" and reply:
            log.warning("lease lost before acknowledging %s; another worker owns it", reply)
        elif call.script.name in ("defer", "bury") and reply == 0:
            log.warning("lease lost before settling %s; another worker owns it", call.args[1])

    # -- waiting ---------------------------------------------------------------------------

    async def _wait_for_a_free_slot(self) -> None:
        stop = asyncio.ensure_future(self._stop_requested.wait())
        finished = asyncio.ensure_future(self._job_finished.wait())
        try:
            await asyncio.wait({stop, finished}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            finished.cancel()
        self._job_finished.clear()

    def _idle_timeout_s(self) -> float:
        timeout_s = min(self.idle_poll_s, max(self._next_promotion - time.monotonic(), 0.0))
        if self._next_due_ms is not None:
            timeout_s = min(timeout_s, max(self._next_due_ms - self.clock.now_ms(), 0) / 1000)
        return max(timeout_s, 0.01)

    async def _wait_for_work(self) -> None:
        """Block on the wakeup list (no polling), settling jobs that finish meanwhile."""
        blpop = asyncio.ensure_future(
            self.service.redis.blpop([self.keys.wakeup], timeout=self._idle_timeout_s())
        )
        stop = asyncio.ensure_future(self._stop_requested.wait())
        try:
            while True:
                finished = asyncio.ensure_future(self._job_finished.wait())
                done, _ = await asyncio.wait(
                    {blpop, stop, finished}, return_when=asyncio.FIRST_COMPLETED
                )
                finished.cancel()
                if blpop in done:
                    blpop.result()
                    return
                if stop in done:
                    return
                self._job_finished.clear()
                await self._flush_settlements()
        finally:
            stop.cancel()
            if not blpop.done():
                blpop.cancel()
                with contextlib.suppress(BaseException):
                    await blpop

    # -- maintenance -----------------------------------------------------------------------

    async def _maintain_if_due(self, *, force: bool = False) -> int:
        """Promote due retries, scheduled and parked jobs (every second, or when one is due);
        recover expired leases and trim the dead-letter queue (a few times per lease).
        Returns how many jobs became ready."""
        now = time.monotonic()
        due = self._next_due_ms is not None and self._next_due_ms <= self.clock.now_ms()
        promote = force or due or now >= self._next_promotion
        recover = force or now >= self._next_recovery
        if not (promote or recover):
            return 0
        moved = 0
        calls: list[ScriptCall[Any]] = []
        if promote:
            self._next_promotion = now + PROMOTE_INTERVAL_S
            calls += self._promote_calls()
        if recover:
            self._next_recovery = now + self.recovery_interval_s
            calls += self._recover_calls()
        replies = await self.service.runner.run_many(calls)
        if promote:
            moved += self._after_promote(replies[:3])
        if recover:
            moved += self._after_recover(*replies[-2:])
        return moved

    def _promote_calls(self) -> list[ScriptCall[Any]]:
        k, s, now_ms = self.keys, self.scripts, self.clock.now_ms()
        return [
            s.promote(k.retry, now_ms, MAINTENANCE_BATCH, front=False),
            s.promote(k.scheduled, now_ms, MAINTENANCE_BATCH, front=False),
            s.promote(k.parked, now_ms, MAINTENANCE_BATCH, front=True),
        ]

    def _after_promote(self, replies: list[tuple[int, int]]) -> int:
        (retried, next_retry), (scheduled, next_scheduled), (parked, next_parked) = replies
        dues = [ms for ms in (next_retry, next_scheduled, next_parked) if ms >= 0]
        self._next_due_ms = min(dues) if dues else None
        if retried + scheduled + parked:
            log.debug("promoted %d retry, %d scheduled, %d parked", retried, scheduled, parked)
        return retried + scheduled + parked

    def _recover_calls(self) -> list[ScriptCall[Any]]:
        now_ms = self.clock.now_ms()
        oldest_kept_ms = now_ms - int(self.settings.dead_letter_max_age_days * 86_400_000)
        lost_error = _error_json("LeaseExpired", "the worker running this job stopped answering")
        return [
            self.scripts.recover(now_ms, MAINTENANCE_BATCH, DEFAULT_MAX_RETRIES, lost_error),
            self.scripts.trim_dead_letter(oldest_kept_ms, self.settings.dead_letter_max_jobs),
        ]

    def _after_recover(self, recovered: tuple[int, int], dropped: int) -> int:
        requeued, buried = recovered
        if requeued or buried:
            log.warning(
                "recovered %d job(s) from workers that stopped answering (%d to dead letter)",
                requeued + buried,
                buried,
            )
        if dropped:
            log.warning("dead-letter retention cap dropped %d oldest job(s)", dropped)
        return requeued

    # -- running one job -------------------------------------------------------------------

    def _start(self, claimed: ClaimedJob) -> None:
        fields = claimed.fields
        running = RunningJob(
            claimed=claimed,
            owner=f"{self.worker_id}:{claimed.claims}",
            priority=int(fields.get("priority") or 4),
            attempt=int(fields.get("attempts") or 0) + 1,
            started=time.perf_counter(),
        )
        with self._owned_lock:
            self._running[claimed.id] = running
        running.task = asyncio.ensure_future(self._run_job(running))

    async def _run_job(self, running: RunningJob) -> None:
        try:
            job = self._decode(running)
            if job is not None and await self._gate_and_execute(job, running):
                self.jobs_done += 1
        except asyncio.CancelledError:
            self._hand_back_later(running)
        except Exception:
            # A bug in qworker itself, not in the job: give the job back rather than leave it
            # to its lease, which would charge it an attempt it never had.
            log.exception("unexpected error running job %s; handing it back", running.claimed.id)
            self._hand_back_later(running)
        finally:
            with self._owned_lock:
                self._running.pop(running.claimed.id, None)
            self._job_finished.set()

    def _decode(self, running: RunningJob) -> BaseJob[Any] | None:
        """Turn the stored payload into a job; a bad payload goes to the dead-letter queue."""
        fields = running.claimed.fields
        try:
            payload = fields.get("payload", "")
            if len(payload) > self.settings.max_payload_bytes:
                raise PayloadTooLarge(len(payload), self.settings.max_payload_bytes)
            params = JobFactory.parse_payload(fields.get("job_type"), payload)
            job = JobFactory.create_job(params, self.settings, self.clients)
        except ValidationFailed as exc:
            self._bury(running, _error_json("InvalidPayload", str(exc)), attempt_failed=False)
            self._log_outcome(running, "-", "dead", f"invalid payload: {exc}")
            return None
        except Exception as exc:
            # Whatever else a payload can do to a decoder (or a plugin's constructor) must not
            # leave the job in flight to crash the next worker too.
            error_json = _error_json("InvalidPayload", _one_line(exc), _traceback_tail(exc))
            self._bury(running, error_json, attempt_failed=False)
            self._log_outcome(running, "-", "dead", f"cannot decode: {_one_line(exc)}")
            return None
        checkpoints = {
            name.removeprefix(CHECKPOINT_FIELD_PREFIX): value
            for name, value in fields.items()
            if name.startswith(CHECKPOINT_FIELD_PREFIX)
        }
        job.context = RedisJobContext(self, running, checkpoints)
        return job

    async def _gate_and_execute(self, job: BaseJob[Any], running: RunningJob) -> bool:
        limiter = self._limiter_for(job)
        reservation: Reservation | None = None
        if limiter is not None:
            reservation = await self._reserve(limiter, running)
            if not reservation.granted:
                self._park(running, reservation.next_allowed_ms)
                self._log_outcome(running, job, "rate-limited", _until(reservation.next_allowed_ms))
                return False
        try:
            async with asyncio.timeout(job.timeout_s):
                succeeded = await job.execute()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._on_failure(job, running, exc, limiter, reservation)
            return False
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
                if self._stop_requested.is_set():
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
            limiter = RateLimiter.for_key(key[0], limit, self.service.redis, self.keys, self.clock)
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
        gave_back = isinstance(exc, JobError) and not exc.reached_remote
        if limiter is not None and reservation is not None and gave_back:
            with contextlib.suppress(redis.RedisError):  # keeping the slot errs on the safe side
                await limiter.release(reservation)
        if isinstance(exc, RateLimitedJobError):
            reset_ms = int(exc.reset_at * 1000)
            if limiter is not None:
                with contextlib.suppress(redis.RedisError):  # the job itself still waits
                    reset_ms = await limiter.block_until(reset_ms)
            self._park(running, reset_ms)
            self._log_outcome(running, job, "rate-limited", f"remote: {_until(reset_ms)}")
            return
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
        error_json = _error_json(type(exc).__name__, str(exc), _traceback_tail(exc))
        if isinstance(decision, GiveUp):
            self._bury(running, error_json, attempt_failed=True)
            self._log_outcome(running, job, "dead", f"{decision.reason}: {_one_line(exc)}")
            return
        now_ms = self.clock.now_ms()
        due_ms = now_ms + int(decision.delay_s * 1000)
        self._settlements.append(
            self.scripts.defer(
                self.keys.retry,
                running.claimed.id,
                running.owner,
                due_ms,
                running.attempt,
                error_json,
                now_ms,
            )
        )
        self._log_outcome(running, job, "retry", f"in {decision.delay_s:.0f}s: {_one_line(exc)}")

    # -- settling --------------------------------------------------------------------------

    def _lease_lost(self, running: RunningJob) -> bool:
        with self._owned_lock:
            if running.claimed.id in self._lost:
                self._lost.discard(running.claimed.id)
                return True
        return False

    def _complete(self, running: RunningJob) -> None:
        if not self._lease_lost(running):
            self._settlements.append(self.scripts.complete([(running.claimed.id, running.owner)]))

    def _park(self, running: RunningJob, until_ms: int) -> None:
        if not self._lease_lost(running):
            self._settlements.append(
                self.scripts.defer(
                    self.keys.parked,
                    running.claimed.id,
                    running.owner,
                    until_ms,
                    None,
                    "",
                    self.clock.now_ms(),
                )
            )

    def _bury(self, running: RunningJob, error_json: str, *, attempt_failed: bool) -> None:
        if not self._lease_lost(running):
            self._settlements.append(
                self.scripts.bury(
                    running.claimed.id,
                    running.owner,
                    running.attempt,
                    error_json,
                    self.clock.now_ms(),
                    attempt_failed=attempt_failed,
                )
            )

    def _hand_back_later(self, running: RunningJob) -> None:
        if not self._lease_lost(running):
            self._settlements.append(self.scripts.hand_back([(running.claimed.id, running.owner)]))

    def _owned_jobs(self) -> list[tuple[str, str]]:
        with self._owned_lock:
            return [(job_id, running.owner) for job_id, running in self._running.items()]

    def _mark_lost(self, job_ids: list[str]) -> None:
        with self._owned_lock:
            self._lost.update(job_id for job_id in job_ids if job_id in self._running)
        log.warning(
            "lease lost for %s: the job was recovered; it will not be settled here", job_ids
        )

    # -- shutdown --------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if tasks and not self._stop_now:
            log.info("waiting up to %.0fs for %d running job(s)", self.grace_s, len(tasks))
            _done, pending = await asyncio.wait(tasks, timeout=self.grace_s)
            tasks = list(pending)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(self._flush_settlements(), timeout=5)
        except (TimeoutError, *CONNECTION_ERRORS) as exc:  # type: ignore[misc]
            log.warning(
                "could not settle %d job(s) at shutdown (%s); their leases will expire",
                len(self._settlements),
                exc,
            )
        if self._heartbeat is not None:
            await asyncio.to_thread(self._heartbeat.stop)
        await self.clients.aclose()
        log.info("worker %s stopped after %d job(s)", self.worker_id[:8], self.jobs_done)

    # -- Redis outages ---------------------------------------------------------------------

    async def _redis_down(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._redis_down_since is None:
            self._redis_down_since = now
            self._reconnect_attempt = 0
            log.error(
                "Redis unavailable at %s (%s); retrying", mask_url(self.service.redis_url), exc
            )
        delay_s = RECONNECT_BACKOFF_S[min(self._reconnect_attempt, len(RECONNECT_BACKOFF_S) - 1)]
        self._reconnect_attempt += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_requested.wait(), timeout=delay_s)

    def _redis_back(self) -> None:
        if self._redis_down_since is not None:
            log.info("Redis is back after %.1fs", time.monotonic() - self._redis_down_since)
            self._redis_down_since = None
            # No worker could renew its leases while Redis was away, so expired ones do not
            # mean dead workers yet: give every live worker one lease to renew before
            # recovering anybody's jobs, and renew ours now.
            self._next_recovery = time.monotonic() + self.settings.lease_seconds
            if self._heartbeat is not None:
                self._heartbeat.beat_now()

    # -- reporting -------------------------------------------------------------------------

    async def get_worker_stats(self) -> dict[str, RateLimitStats]:
        """Rate limiter statistics per rate-limit key this worker has used, as in the seed."""
        return {key: await limiter.get_stats() for (key, _), limiter in self._limiters.items()}

    def _log_outcome(
        self, running: RunningJob, job: BaseJob[Any] | str, outcome: str, detail: str = ""
    ) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        duration_ms = (time.perf_counter() - running.started) * 1000
        job_type = job if isinstance(job, str) else job.params.job_type
        log.info(
            "job %s %s p%d attempt %d %s in %.1fms%s",
            running.claimed.id,
            job_type,
            running.priority,
            running.attempt,
            outcome,
            duration_ms,
            f": {detail}" if detail else "",
            extra={
                "job_id": running.claimed.id,
                "job_type": job_type,
                "priority": running.priority,
                "attempt": running.attempt,
                "outcome": outcome,
                "duration_ms": round(duration_ms, 2),
            },
        )


def _error_json(kind: str, message: str, trace: str = "") -> str:
    return JobErrorRecord(type=kind, message=message[:2000], traceback=trace).model_dump_json()


def _traceback_tail(exc: BaseException) -> str:
    lines = traceback.format_exception(exc)
    return (
        "".join(lines)[-4000:]
        if len(lines) <= TRACEBACK_LINES
        else "".join(lines[-TRACEBACK_LINES:])
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _until(at_ms: int) -> str:
    return "until " + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at_ms / 1000))
