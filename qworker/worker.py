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
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import redis

from qworker.clients import ClientContainer
from qworker.clock import SYSTEM_CLOCK, Clock
from qworker.config import Settings
from qworker.connection import CONNECTION_ERRORS
from qworker.errors import ValidationFailed
from qworker.execution import (
    JobExecutor,
    RunningJob,
    SettlementBuffer,
)
from qworker.heartbeat import OVERDUE_MARGIN_S, Heartbeat
from qworker.jobs.base import JobFactory, load_job_modules
from qworker.lost_claims import LostClaims, SentClaim
from qworker.maintenance import Maintainer, MaintenanceTurn
from qworker.models import RateLimitStats
from qworker.redis_link import RedisLink
from qworker.routing import Served
from qworker.scheduler import Scheduler
from qworker.scripts import ClaimedJob, ClaimReply, ScriptCall
from qworker.service import QueueService
from qworker.watchdog import Watchdog

if TYPE_CHECKING:
    from qworker.metrics.worker import WorkerMetrics

log = logging.getLogger("qworker.worker")

# An idle worker's blocking wait ends this often (below the sockets' 15 s timeout), to claim
# what a missed wakeup left; a stop ends it at once (keys.worker_wakeup).
IDLE_POLL_S = 12.0
# How a job this worker handled can end here (JobExecutor.outcomes), in the order reported.
FINISHED_OUTCOMES = ("done", "retried", "dead", "canceled", "parked", "deferred")


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
        prefetch: int | None = None,
        recovery_grace_s: float | None = None,
        metrics: WorkerMetrics | None = None,
        schedules: bool = True,
        job_types: Sequence[str] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValidationFailed(f"concurrency must be at least 1, not {concurrency}")
        if prefetch is not None and prefetch < 0:
            raise ValidationFailed(f"prefetch must not be negative, not {prefetch}")
        self.settings = settings or (queue_service.settings if queue_service else Settings())
        self.service = queue_service or QueueService(settings=self.settings, clock=clock)
        self.keys = self.service.keys
        self.scripts = self.service.scripts
        self.concurrency = concurrency
        # Jobs claimed ahead of a free slot, so the next batch's round trip overlaps the
        # running one. They are leased like running jobs (a crash loses none); an urgent job
        # arriving meanwhile waits behind at most this many.
        self.prefetch = concurrency if prefetch is None else prefetch
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
        # The types this worker serves (None: QWORKER_JOB_TYPES; empty: every type it knows),
        # and the laned types its last claim read (see routing.py).
        served = self.settings.job_types if job_types is None else job_types
        self.served = Served.checked(served, JobFactory.known_types())
        self._lanes: list[str] = []
        self._init_held_jobs(metrics)
        self._init_beside_loop(recovery_grace_s=recovery_grace_s, schedules=schedules)

    def _init_held_jobs(self, metrics: WorkerMetrics | None) -> None:
        """The jobs this worker holds a lease on, and the executor that runs and settles them."""
        # Every claim this worker holds a lease on, running or waiting for a slot, by (job id,
        # owner token): the same job can be claimed again after it was recovered from us.
        self._running: dict[tuple[str, str], RunningJob] = {}
        self._waiting: deque[RunningJob] = deque()
        self._cancelled: list[RunningJob] = []
        self._claim_seq = itertools.count()
        self._owned_lock = threading.Lock()
        # finished_at_ms is the worker's clock: a record, not a decision hosts must agree on,
        # so the settlement spares the script a TIME call.
        self._settlements = SettlementBuffer(
            self.scripts, self.settings.keep_finished_ms, self.clock.now_ms
        )
        # Claims whose reply was lost: their jobs are handed back once Redis answers again.
        self._lost_claims = LostClaims(
            self.service,
            self.clock,
            self.worker_id,
            known=self._known_claims,
            max_handbacks=self.settings.max_handbacks,
            keep_ms=self.settings.keep_finished_ms,
        )
        self._job_finished = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._stop_now = False
        self.executor = JobExecutor(
            service=self.service,
            settings=self.settings,
            clients=self.clients,
            clock=self.clock,
            rng=self.rng,
            settlements=self._settlements,
            stopping=self._stop_requested.is_set,
            metrics=metrics,
        )
        # Prometheus metrics of this process (qworker work --metrics-port), or None.
        self.metrics = metrics
        if metrics is not None:
            metrics.bind_worker(self.concurrency, self._running_count)
        self._heartbeat: Heartbeat | None = None
        # How long past its timeout_s a job blocking the event loop keeps its lease.
        self.overdue_margin_s = OVERDUE_MARGIN_S
        self._event_loop: asyncio.AbstractEventLoop | None = None

    def _init_beside_loop(self, *, recovery_grace_s: float | None, schedules: bool) -> None:
        """What runs beside the loop, once a second or less: the watchdog, the Redis link's
        outage handling, the schedules and the fleet's maintenance."""
        clock, burst = self.clock, self.burst
        self.watchdog = Watchdog(
            service=self.service,
            worker_id=self.worker_id,
            lease_ms=self.lease_ms,
            clock=clock,
            outcomes=self.executor.outcomes,
            held=lambda: list(self._running.values()),
            prefetched=lambda: len(self._waiting),
            cancel=self._cancel,
        )
        # No recovery of others' leases until connected for this long (see redis_link.py).
        grace_s = self.settings.lease_seconds if recovery_grace_s is None else recovery_grace_s
        self.link = RedisLink(
            self.service, clock, self._stop_requested, grace_s=grace_s, burst=burst
        )
        # Fires recurring schedules beside the loop (qworker work --no-schedules: off). A burst
        # worker drains and exits, so it fires none.
        self.scheduler = Scheduler(self.service, clock) if schedules and not burst else None
        # A burst worker maintains for itself (it must see its drain through); the others take
        # turns, one worker at a time for the whole fleet (maintenance.py), in a background
        # task (self._maintenance) that runs while the worker does.
        self.maintainer = Maintainer(
            service=self.service,
            settings=self.settings,
            clock=clock,
            link=self.link,
            worker_id=self.worker_id,
            rng=self.rng,
            holds_jobs=lambda: bool(self._running),
        )
        self.turn: MaintenanceTurn = self.maintainer.turn
        self._maintenance: asyncio.Future[None] | None = None
        self._stop_wakeup: asyncio.Future[None] | None = None

    @property
    def maintenance_runs(self) -> int:
        """Rounds of maintenance scripts this worker ran (one worker of a fleet runs them)."""
        return self.maintainer.runs

    @property
    def recovery_interval_s(self) -> float:
        """How often expired leases are looked for: a few times per lease, at least every 15 s."""
        return self.maintainer.recovery_interval_s

    # -- lifecycle -------------------------------------------------------------------------

    def request_stop(self, *, immediate: bool = False) -> None:
        """Take no new jobs; with ``immediate`` also cancel running ones and hand them back at
        once (if Redis cannot be reached then, their leases still protect them)."""
        if self._stop_requested.is_set() and not immediate:
            immediate = True
        self._stop_requested.set()
        self._end_idle_wait()
        if immediate:
            self._stop_now = True
            for running in list(self._running.values()):
                if running.task is not None:
                    running.task.cancel()

    def _end_idle_wait(self) -> None:
        """Push a token onto this worker's own wakeup list, so that its blocking wait (long,
        so that an idle worker costs Redis next to nothing) ends now rather than at its
        timeout. Callable from any thread."""
        loop = self._event_loop
        if loop is None or loop.is_closed() or self._maintenance is None:
            return

        def push() -> None:
            if self._stop_wakeup is None:
                self._stop_wakeup = asyncio.ensure_future(self._push_own_wakeup())

        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: no wait to end
            loop.call_soon_threadsafe(push)

    async def _push_own_wakeup(self) -> None:
        key = self.keys.worker_wakeup(self.worker_id)
        # A second try: after an outage the first may meet a pooled connection Redis closed.
        for attempt in range(3):
            pipe = self.service.redis.pipeline(transaction=False)
            pipe.lpush(key, "stop")
            pipe.pexpire(key, 10_000)  # not left behind if the wait ended before the push
            try:
                await pipe.execute()
                return
            except (redis.RedisError, *CONNECTION_ERRORS) as exc:  # type: ignore[misc]
                log.debug("could not end the idle wait early (try %d): %s", attempt + 1, exc)
                await asyncio.sleep(0.1)

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
        self._event_loop = asyncio.get_running_loop()
        if not await self.link.connect():
            await self.clients.aclose()
            log.info("worker %s stopped before it could reach Redis", self.worker_id[:8])
            return
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
            lose_waiting=self._settlements.lose_waiting,
            loop_alive_at=lambda: self.watchdog.loop_alive_at,
            client=self.heartbeat_client() if self.heartbeat_client is not None else None,
            overdue_margin_s=self.overdue_margin_s,
            max_handbacks=self.settings.max_handbacks,
            keep_ms=self.settings.keep_finished_ms,
            record=self.served.record(JobFactory.known_types()),
            on_record_rewritten=self.watchdog.show_counts_again,
        )
        self.watchdog.loop_alive_at = time.perf_counter()
        self._heartbeat.start()
        watchdog = asyncio.ensure_future(self.watchdog.run())
        scheduling = asyncio.ensure_future(self.scheduler.run()) if self.scheduler else None
        if not self.burst:
            self._maintenance = asyncio.ensure_future(self._maintain_in_turn())
        if self._stop_requested.is_set():
            self._end_idle_wait()  # asked before the loop existed
        try:
            await self._loop()
        finally:
            watchdog.cancel()
            await self._stop_maintenance()
            if scheduling is not None:
                scheduling.cancel()
                await asyncio.gather(scheduling, return_exceptions=True)
            await self._shutdown()

    def _cancel(self, running: RunningJob) -> None:
        """Stop a job an operator canceled: one waiting for a slot is settled at once; a
        running one has its task cancelled (unless inside a cancel shield: then the next
        look, a second later, tries again)."""
        if running.cancel_delivered or running.lost or self._settlements.is_lost(running):
            return
        if running in self._waiting:
            with self._owned_lock:
                self._waiting.remove(running)
                self._running.pop(running.key, None)
            self.executor.cancel(running, "before it started")
            self._job_finished.set()
        elif running.shields:
            running.cancel_held = True
        elif running.task is not None and not running.task.done():
            running.cancel_delivered = True
            running.task.cancel()

    async def _loop(self) -> None:
        while not self._stop_requested.is_set():
            try:
                if not await self._step():
                    return
                if self.link.back() and self._heartbeat is not None:
                    # No worker could renew its leases while Redis was away: renew ours now.
                    self._heartbeat.beat_now()
            except redis.RedisError as exc:
                # Connection loss, a restart still loading its data, a replica that became
                # read-only in a failover: all pass with time, so wait and try again.
                if self.metrics is not None:
                    self.metrics.redis_error()
                await self.link.down(exc)

    async def _step(self) -> bool:
        """One turn of the loop; False when a burst worker has nothing left to do."""
        if self._lost_claims:  # before claiming again: their jobs go back to the front
            await self._lost_claims.release()
        if self._maintenance is None:  # a burst worker; others maintain in turn, in the background
            await self.maintainer.maintain_if_due()
        self._start_waiting()
        wanted = self.concurrency + self.prefetch - len(self._running)
        if wanted <= 0:
            await self._wait_for_a_free_slot()
            return True
        claimed = await self._settle_and_claim(wanted)
        if claimed:
            self._take(claimed)
            return True
        if self._waiting:
            await self._wait_for_a_free_slot()
            return True
        if self.burst:
            return await self._burst_has_more()
        self._take(await self._wait_for_work(wanted))
        return True

    def _take(self, claimed: list[ClaimedJob]) -> None:
        """Hold what a claim returned; start it unless a stop came meanwhile (then the
        shutdown hands it back untouched)."""
        self._hold(claimed)
        if not self._stop_requested.is_set():
            self._start_waiting()

    async def _burst_has_more(self) -> bool:
        if self._running:
            await self._wait_for_a_free_slot()
            return True
        if len(self._settlements):  # sent with the next claim: may make dependents ready
            return True
        return await self._maintain_if_due(force=True) > 0

    # -- claim -----------------------------------------------------------------------------

    async def _settle_and_claim(self, free: int) -> list[ClaimedJob]:
        """Send the settlements of finished jobs and a claim for ``free`` new ones in one
        round trip."""
        now_ms = self.clock.script_now_ms()
        sent = SentClaim(time.monotonic(), now_ms, self.lease_ms)
        claim = self._claim(now_ms, self.lease_ms, free)
        try:
            replies = await self._send_settlements(claim)
        except BaseException:
            self._lost_claims.note(sent)  # it may have run: its jobs are ours, unknown
            raise
        claimed = replies[-1]
        if isinstance(claimed, Exception):
            raise claimed
        return self._claimed(cast(ClaimReply, claimed))

    def _claim(self, now_ms: int | None, lease_ms: int, wanted: int) -> ScriptCall[ClaimReply]:
        served = self.served
        return self.scripts.claim(
            self.worker_id, now_ms, lease_ms, wanted, uuid.uuid4().hex,
            serves_all=served.serves_all, job_types=served.claim_types(JobFactory.known_types()),
        )  # fmt: skip

    def _claimed(self, reply: ClaimReply) -> list[ClaimedJob]:
        self.maintainer.pauses = reply.pauses
        self._lanes = reply.lanes
        return reply.jobs

    async def _flush_settlements(self) -> None:
        await self._send_settlements()

    async def _send_settlements(self, *extra: ScriptCall[Any]) -> list[Any]:
        """Run the buffered settlements (plus ``extra`` calls). A settlement Redis refused is
        kept for the next round; on a lost connection all of them are, since any may not have
        run (settling twice is harmless: the second finds the job no longer owned)."""
        settlements, claims, send = self._settlements.take()
        if not settlements and not extra:
            return []
        try:
            replies = await self.service.runner.run_each([*settlements, *extra])
        except BaseException:
            self._settlements.put_back(settlements, claims)
            raise
        for call, settled, reply in zip(settlements, claims, replies, strict=False):
            if isinstance(reply, Exception):
                log.error("Redis refused to settle a job (%s); will try again", reply)
                self._settlements.retry(call, settled)
            else:
                self._report_settlement(call, reply)
        self._settlements.acknowledged(send)
        return replies[len(settlements) :]

    def _report_settlement(self, call: ScriptCall[Any], reply: Any) -> None:
        if call.script.name == "complete" and reply:
            log.warning("lease lost before acknowledging %s; another worker owns it", reply)
        elif call.script.name == "hand_back" and reply[1]:
            log.error(
                "%d job(s) handed back %d times without finishing went to the dead-letter queue",
                reply[1],
                self.settings.max_handbacks,
            )
        elif call.script.name in ("defer", "bury") and reply == 0:
            log.warning("lease lost before settling %s; another worker owns it", call.args[1])

    # -- waiting ---------------------------------------------------------------------------

    async def _wait_for_a_free_slot(self) -> None:
        """Until a job finishes or a stop is asked for; at most until the next maintenance is
        due, so retries are promoted and dead workers' jobs recovered while every slot is busy."""
        stop = asyncio.ensure_future(self._stop_requested.wait())
        finished = asyncio.ensure_future(self._job_finished.wait())
        timeout_s: float | None = None
        if self._maintenance is None:
            timeout_s = self.maintainer.slot_wait_s()
        try:
            await asyncio.wait(
                {stop, finished}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop.cancel()
            finished.cancel()
        self._job_finished.clear()

    def _idle_timeout_s(self) -> float:
        if self._maintenance is not None:  # maintenance does not wait for this wait to end
            return self.idle_poll_s
        return self.maintainer.idle_wait_s(self.idle_poll_s)

    async def _wait_for_work(self, wanted: int) -> list[ClaimedJob]:
        """Block on the wakeup list (no polling) with a claim queued right behind the wait on
        the same connection, so Redis runs it the moment a job arrives: no round trip between
        the wakeup and the claim. Jobs that finish meanwhile are settled on another connection.
        """
        timeout_s = self._idle_timeout_s()
        # The claim runs when the wait ends; with a hand-moved clock its lease must also
        # cover the wait, since the time given is the time it was sent.
        now_ms = self.clock.script_now_ms()
        lease_ms = self.lease_ms + (0 if now_ms is None else int(timeout_s * 1000))
        claim = self._claim(now_ms, lease_ms, wanted)
        sent = SentClaim(time.monotonic(), now_ms, lease_ms)
        # The shared wakeup list and those of the lanes this worker reads (routing.py).
        wakeup_keys = self.served.wakeup_keys(self.keys, self._lanes)
        own = self.keys.worker_wakeup(self.worker_id)  # a stop ends the wait at once
        blocking = ("BLPOP", *wakeup_keys, own, timeout_s)
        waiting = asyncio.ensure_future(self.service.runner.block_then_run(blocking, claim))
        stop = asyncio.ensure_future(self._stop_requested.wait())
        try:
            while not self._stop_requested.is_set():
                finished = asyncio.ensure_future(self._job_finished.wait())
                done, _ = await asyncio.wait(
                    {waiting, stop, finished}, return_when=asyncio.FIRST_COMPLETED
                )
                finished.cancel()
                if waiting in done:
                    break
                if finished in done:
                    self._job_finished.clear()
                    try:
                        await self._flush_settlements()
                    except redis.RedisError as exc:  # kept for the next round; keep waiting
                        log.debug("could not settle finished jobs yet: %s", exc)
        except BaseException:
            if not waiting.done():  # left behind by an error: it may still run
                self._lost_claims.note(sent)
            raise
        finally:
            stop.cancel()
        # Never cancelled, even at a stop: the claim may already have run, and the jobs it
        # took must be handed back, not left to their leases. A stop ends the wait at once.
        try:
            reply = await waiting
        except BaseException:
            self._lost_claims.note(sent)  # it may have run: its jobs are ours, unknown
            raise
        return self._claimed(reply)

    # -- maintenance -----------------------------------------------------------------------

    async def _maintain_in_turn(self) -> None:
        """The background task of a worker that is not in burst mode: take or keep the fleet's
        maintenance turn, and maintain while it is this worker's (maintenance.py)."""
        # Ends at a stop too: a cancellation that meets the end of a wait can be lost.
        while not self._stop_requested.is_set():
            try:
                contacted = await self.maintainer.maintain_once()
                if contacted and self.link.back() and self._heartbeat is not None:
                    self._heartbeat.beat_now()
            except redis.RedisError as exc:
                # An outage seen here counts as one seen by the loop (which may be waiting for
                # a slot meanwhile): it starts the recovery grace again (redis_link.py).
                if self.metrics is not None:
                    self.metrics.redis_error()
                await self.link.down(exc)
            await asyncio.sleep(self.maintainer.pause_s())

    async def _stop_maintenance(self) -> None:
        """End the maintenance task and give the turn up, so another worker takes it within
        one try instead of waiting for it to expire."""
        if self._maintenance is None:
            return
        self._maintenance.cancel()
        await asyncio.wait({self._maintenance}, timeout=5)
        await self.maintainer.release_turn()

    async def _maintain_if_due(self, *, force: bool = False) -> int:
        """As in a burst worker's loop (see Maintainer.maintain_if_due): how many jobs became
        ready."""
        return await self.maintainer.maintain_if_due(force=force)

    # -- running one job -------------------------------------------------------------------

    def _hold(self, claimed_jobs: list[ClaimedJob]) -> None:
        """Take claimed jobs in, in claim order (priority, then age), to wait for a slot."""
        with self._owned_lock:
            for claimed in claimed_jobs:
                fields = claimed.fields
                running = RunningJob(
                    claimed=claimed,
                    owner=f"{self.worker_id}:{claimed.claims}",
                    priority=int(fields.get("priority") or 4),
                    attempt=int(fields.get("attempts") or 0) + 1,
                    started=0.0,
                    seq=next(self._claim_seq),
                )
                self._running[running.key] = running
                self._waiting.append(running)

    def _start_waiting(self) -> None:
        """Start waiting jobs while slots are free."""
        while self._waiting and len(self._running) - len(self._waiting) < self.concurrency:
            running = self._waiting.popleft()
            if not self._settlements.still_ours(running):
                # Recovered by another worker while it waited here: it runs there instead.
                with self._owned_lock:
                    self._running.pop(running.key, None)
                continue
            running.started = time.perf_counter()
            running.task = asyncio.ensure_future(self._run_job(running))

    async def _run_job(self, running: RunningJob) -> None:
        try:
            if await self.executor.run(running):
                self.jobs_done += 1
        except asyncio.CancelledError:
            if running.lost:  # no longer ours: neither settled nor handed back
                self._settlements.still_ours(running)  # forget the mark, it served
            elif running.cancel_delivered:  # an operator's cancel, not a stop
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
                self.executor.cancel(running, "while it ran")
            else:
                self._cancelled.append(running)  # a stop cancelled it: handed back at shutdown
        except Exception:
            # qworker's own code failed around the job (job code failing counts as an attempt
            # long before this): give the job back rather than leave it to its lease. It counts
            # as a hand-back, so a job that trips qworker every time ends in the dead letters.
            log.exception("unexpected error running job %s; handing it back", running.claimed.id)
            running.ran = True
            self.executor.hand_back_all([running])
        finally:
            with self._owned_lock:
                self._running.pop(running.key, None)
            self._job_finished.set()

    def _running_count(self) -> int:
        """Jobs running now (not those prefetched, waiting for a slot)."""
        return max(len(self._running) - len(self._waiting), 0)

    def _known_claims(self) -> set[tuple[str, str]]:
        """Every claim (job id, owner token) this worker knows it holds or has settled without
        Redis acknowledging it yet: what a lost claim's hand-back must leave alone."""
        with self._owned_lock:
            held = set(self._running)
        held.update(running.key for running in self._cancelled)  # handed back at the stop
        return held | self._settlements.unacknowledged

    def _owned_jobs(self) -> list[RunningJob]:
        with self._owned_lock:
            return list(self._running.values())

    def _mark_lost(self, claims: list[tuple[str, str]]) -> None:
        """Called by the heartbeat thread: these jobs were recovered by another worker."""
        with self._owned_lock:
            mine = [claim for claim in claims if claim in self._running]
        self._settlements.mark_lost(mine)
        if self.metrics is not None and mine:
            self.metrics.lease_lost(len(mine))
        job_ids = [job_id for job_id, _owner in mine]
        log.warning("lease lost for %s: the job was recovered; cancelling it here", job_ids)
        if self._event_loop is not None and mine:
            # Less duplicate work for a zombie: it can no longer settle the job anyway.
            self._event_loop.call_soon_threadsafe(self._cancel_lost, mine)

    def _cancel_lost(self, claims: list[tuple[str, str]]) -> None:
        for claim in claims:
            running = self._running.get(claim)
            if running is not None and running.task is not None and not running.task.done():
                running.lost = True
                running.task.cancel()

    # -- shutdown --------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        with self._owned_lock:
            waiting, self._waiting = list(self._waiting), deque()
            for running in waiting:
                self._running.pop(running.key, None)
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if tasks and not self._stop_now:
            log.info("waiting up to %.0fs for %d running job(s)", self.grace_s, len(tasks))
            _done, pending = await asyncio.wait(tasks, timeout=self.grace_s)
            tasks = list(pending)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        with self._owned_lock:
            # A task cancelled before its first step never ran its body, nor its clean-up.
            unstarted = list(self._running.values())
            self._running.clear()
        # Back to the front of their lists at once, in the order they were claimed.
        unfinished = [*waiting, *self._cancelled, *unstarted]
        self.executor.hand_back_all(sorted(unfinished, key=lambda running: running.seq))
        try:
            await asyncio.wait_for(self._flush_settlements(), timeout=5)
        except (TimeoutError, redis.RedisError, *CONNECTION_ERRORS) as exc:  # type: ignore[misc]
            log.warning(
                "could not settle %d job(s) at shutdown (%s); their leases will expire",
                len(self._settlements),
                exc,
            )
        if self._lost_claims:
            try:
                await asyncio.wait_for(self._lost_claims.release(), timeout=5)
            except (TimeoutError, redis.RedisError, *CONNECTION_ERRORS) as exc:  # type: ignore[misc]
                log.warning(
                    "could not hand back the jobs of a lost claim (%s): their leases will expire",
                    exc,
                )
        await self.watchdog.write_last_outcome_counts()
        if self._heartbeat is not None:
            await asyncio.to_thread(self._heartbeat.stop)
        await self.clients.aclose()
        log.info("worker %s stopped after %s", self.worker_id[:8], self._finished_summary())

    def _finished_summary(self) -> str:
        """``12 job(s): 10 done, 1 retried, 1 dead``: every job this worker settled."""
        outcomes = self.executor.outcomes
        parts = [f"{outcomes[name]} {name}" for name in FINISHED_OUTCOMES if outcomes[name]]
        total = f"{sum(outcomes.values())} job(s)"
        return f"{total}: {', '.join(parts)}" if parts else total

    # -- reporting -------------------------------------------------------------------------

    async def get_worker_stats(self) -> dict[str, RateLimitStats]:
        """Rate limiter statistics per rate-limit key this worker has used, as in the seed."""
        return await self.executor.get_stats()
