"""The fault injector: at each planned progress point, hurt a worker or Redis, then heal it.

Around every fault it snapshots the in-flight set (before, and right after; for Redis, after the
restart, which is what the AOF kept). A job in one of those snapshots was *touched* by the fault:
only such jobs may run twice. For Redis faults it also checks that no counter went backwards,
i.e. no acknowledged write was lost.

A blocked event loop is asked for, not done to a process: the injector drops a request that the
next blocker job to run takes up, and learns from the execution records (through the driver)
which worker blocked, then notes the jobs that worker held at that moment.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

from chaoslib.contract import BLOCK_REQUEST_FILE, HOLD_FILE
from chaoslib.history import Execution, FaultEvent
from chaoslib.plan import (
    BLOCKED_LOOP,
    NEW_WORKER_IN_OUTAGE,
    REDIS_KILL,
    REDIS_SHUTDOWN,
    WORKER_FAULTS,
    WORKER_KILL,
    WORKER_PAUSE,
    WORKER_TERM,
    Config,
    PlannedFault,
    hold_after_s,
)
from chaoslib.redis_proc import RedisProcess
from chaoslib.view import RedisView
from chaoslib.workers import WorkerPool, late_worker_command

POLL_S = 0.1
# Time for every worker's slots to fill with held jobs before Redis goes away.
HOLD_SETTLE_S = 0.6
# How long a block request waits for a blocker job to take it up.
BLOCKER_WAIT_S = 20.0


class FaultInjector:
    def __init__(
        self,
        cfg: Config,
        pool: WorkerPool,
        redis: RedisProcess,
        view: RedisView,
        elapsed_s: Callable[[], float],
    ) -> None:
        self.cfg = cfg
        self.pool = pool
        self.redis = redis
        self.view = view
        self.elapsed_s = elapsed_s
        self.events: list[FaultEvent] = []
        self.skipped: list[PlannedFault] = []
        # Blocking executions as the driver reads them, with the jobs then executing in the
        # same process.
        self.blocking: asyncio.Queue[tuple[Execution, set[str]]] = asyncio.Queue()
        # While a loop is blocked: its worker's slot, and when the block ends.
        self.blocked_slot: int | None = None
        self.blocked_until_s = 0.0
        self._block_watch: asyncio.Future[None] | None = None

    async def run(self, plan: list[PlannedFault]) -> None:
        for index, fault in enumerate(plan):
            if not await self._wait_for_progress(fault.at_fraction):
                # Everything is final already: a fault now would prove nothing.
                self.skipped.extend(plan[index:])
                return
            fault = await self._beside_blocked_loop(fault)
            await self._workers_ready()
            event = await self._apply(fault)
            if event is not None:
                self.events.append(event)
        if self._block_watch is not None:
            await self._block_watch

    async def close(self) -> None:
        """End the watch of a blocked loop the run outlived (its event is still recorded)."""
        if self._block_watch is not None and not self._block_watch.done():
            self._block_watch.cancel()
            await asyncio.gather(self._block_watch, return_exceptions=True)

    async def _beside_blocked_loop(self, fault: PlannedFault) -> PlannedFault:
        """While a loop is blocked, other workers may be struck, but neither the blocked worker
        nor Redis: that would free the blocked worker's jobs for another reason than the block.
        Such a fault waits for the block to end, or strikes the next worker instead."""
        blocked = self.elapsed_s() < self.blocked_until_s
        if blocked and fault.kind in WORKER_FAULTS - {BLOCKED_LOOP}:
            if fault.slot == self.blocked_slot:
                return dataclasses.replace(fault, slot=(fault.slot + 1) % self.cfg.workers)
            return fault
        await asyncio.sleep(max(self.blocked_until_s - self.elapsed_s(), 0.0))
        return fault

    async def _wait_for_progress(self, fraction: float) -> bool:
        while True:
            final = await self.view.final_count()
            if final >= self.cfg.jobs:
                return False
            if final >= fraction * self.cfg.jobs:
                return True
            await asyncio.sleep(POLL_S)

    async def _workers_ready(self, timeout_s: float = 30.0) -> None:
        """Wait until every worker process is past its start-up (its heartbeat is on record).

        ``qworker work`` exits 1 when Redis is unreachable at start-up, as a process under a
        supervisor should; a fault that lands mid-start-up would test the supervisor, not
        qworker. (A worker that never registers shows up as a crash.)"""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            live = {self.pool.pid(slot.index) for slot in self.pool.slots} - {None}
            if live <= await self.view.registered_pids():
                return
            await asyncio.sleep(POLL_S)

    async def _apply(self, fault: PlannedFault) -> FaultEvent | None:
        handlers = {
            WORKER_KILL: self._worker_kill,
            WORKER_TERM: self._worker_term,
            WORKER_PAUSE: self._worker_pause,
            REDIS_SHUTDOWN: self._redis_down,
            REDIS_KILL: self._redis_down,
            NEW_WORKER_IN_OUTAGE: self._new_worker_in_outage,
            BLOCKED_LOOP: self._blocked_loop,
        }
        return await handlers[fault.kind](fault)

    def _worker_event(
        self,
        fault: PlannedFault,
        started_s: float,
        pid: int | None,
        inflight: set[str],
        held: set[str],
        detail: str,
        problems: tuple[str, ...] = (),
    ) -> FaultEvent:
        return FaultEvent(
            fault.kind,
            started_s,
            self.elapsed_s() - started_s,
            slot=fault.slot,
            pid=pid,
            inflight=frozenset(inflight),
            held=frozenset(held),
            detail=detail,
            problems=problems,
        )

    async def _worker_kill(self, fault: PlannedFault) -> FaultEvent:
        started_s, slot = self.elapsed_s(), fault.slot
        self.pool.slots[slot].busy = True
        pid = self.pool.pid(slot)
        before = await self.view.inflight()
        held = await self.view.owned_by(pid, before)
        self.pool.kill(slot)
        after = await self.view.inflight()
        await asyncio.sleep(fault.hold_s)
        new_pid = self.pool.start(slot)
        self.pool.slots[slot].busy = False
        detail = f"SIGKILL pid {pid} holding {len(held)} job(s); restarted as {new_pid}"
        return self._worker_event(fault, started_s, pid, before | after, held, detail)

    async def _slot_holding_jobs(self, planned: int) -> int:
        """The planned slot, or (when its worker holds nothing, e.g. it was just paused and its
        jobs taken back) a free slot whose worker holds jobs: a graceful stop is worth testing
        only with jobs to hand back, a pause only with jobs to take over. Looks for a few
        seconds, then keeps the planned slot."""
        for _ in range(20):
            before = await self.view.inflight()
            order = [planned, *(s for s in range(len(self.pool.slots)) if s != planned)]
            for slot in order:
                if slot != planned and self.pool.slots[slot].busy:
                    continue
                if await self.view.owned_by(self.pool.pid(slot), before):
                    return slot
            await asyncio.sleep(0.2)
        return planned

    async def _worker_term(self, fault: PlannedFault) -> FaultEvent:
        started_s = self.elapsed_s()
        slot = await self._slot_holding_jobs(fault.slot)
        self.pool.slots[slot].busy = True
        pid = self.pool.pid(slot)
        before = await self.view.inflight()
        held = await self.view.owned_by(pid, before)
        self.pool.terminate(slot)
        after = await self.view.inflight()
        code = await self.pool.wait_exit(slot, self.cfg.grace_s + 10)
        problems: tuple[str, ...] = ()
        if code is None:
            problems = (f"pid {pid} still running {self.cfg.grace_s + 10:.0f}s after SIGTERM",)
            self.pool.kill(slot)
        elif code != 0:  # ``qworker work`` exits 0 after a graceful stop
            problems = (f"pid {pid} exited with code {code} after SIGTERM",)
        await asyncio.sleep(fault.hold_s)
        new_pid = self.pool.start(slot)
        self.pool.slots[slot].busy = False
        fault = dataclasses.replace(fault, slot=slot)
        detail = (
            f"SIGTERM pid {pid} holding {len(held)} job(s): exit {code}; restarted as {new_pid}"
        )
        return self._worker_event(fault, started_s, pid, before | after, held, detail, problems)

    async def _worker_pause(self, fault: PlannedFault) -> FaultEvent:
        """SIGSTOP past the lease: the worker comes back a zombie whose jobs were taken over."""
        started_s = self.elapsed_s()
        slot = await self._slot_holding_jobs(fault.slot)  # a zombie with nothing proves nothing
        fault = dataclasses.replace(fault, slot=slot)
        self.pool.slots[slot].busy = True
        pid = self.pool.pid(slot)
        before = await self.view.inflight()
        self.pool.pause(slot)
        after = await self.view.inflight()
        held = await self.view.owned_by(pid, before | after)
        await self._collect_owned(pid, self.elapsed_s() + fault.hold_s, held)
        still_owned = await self.view.owned_by(pid, held)
        self.pool.resume(slot)
        self.pool.slots[slot].busy = False
        detail = (
            f"SIGSTOP pid {pid} for {fault.hold_s:.1f}s holding {len(held)} job(s); "
            f"{len(held) - len(still_owned)} taken back from it before SIGCONT"
        )
        event = self._worker_event(fault, started_s, pid, before | after, held, detail)
        return dataclasses.replace(event, taken_over=len(held) - len(still_owned))

    async def _redis_down(self, fault: PlannedFault) -> FaultEvent:
        started_s = self.elapsed_s()
        before = await self.view.inflight()
        counters_before = await self.view.counters()
        await self._stop_redis(kill=fault.kind == REDIS_KILL)
        await asyncio.sleep(fault.hold_s)
        load_s = await self._start_redis()
        # What the AOF kept in flight is exactly what was in flight when Redis died.
        after = await self.view.inflight()
        problems = await self._counters_kept(counters_before)
        how = "SHUTDOWN" if fault.kind == REDIS_SHUTDOWN else "SIGKILL"
        detail = (
            f"{how}, down {fault.hold_s:.1f}s, restarted in {load_s:.1f}s with "
            f"{len(after)} job(s) in flight"
        )
        return FaultEvent(
            fault.kind,
            started_s,
            self.elapsed_s() - started_s,
            inflight=frozenset(before | after),
            detail=detail,
            problems=problems,
        )

    async def _new_worker_in_outage(self, fault: PlannedFault) -> FaultEvent:
        """Every job held running; Redis away for longer than the lease; a new worker started
        meanwhile, connecting the moment Redis is back. The live workers' jobs are still
        running then: whoever takes one of them runs it twice at once."""
        started_s, spare = self.elapsed_s(), self.cfg.workers
        hold = self.pool.run_dir / HOLD_FILE
        self.pool.slots[spare].busy = True
        hold.touch()
        try:
            await asyncio.sleep(HOLD_SETTLE_S)
            before = await self.view.inflight()
            counters_before = await self.view.counters()
            await self._stop_redis(kill=fault.kill)
            new_pid = self.pool.start(spare, late_worker_command(self.cfg.concurrency))
            await asyncio.sleep(fault.hold_s)
            load_s = await self._start_redis()
            await asyncio.sleep(hold_after_s(self.cfg))
            after = await self.view.inflight()
            taken = await self.view.owned_by(new_pid, before)
            registered = new_pid in await self.view.registered_pids()
        finally:
            hold.unlink(missing_ok=True)
            self.pool.slots[spare].busy = False
        problems = await self._counters_kept(counters_before)
        if not registered:
            problems += (f"the new worker pid {new_pid} never registered after the outage",)
        detail = (
            f"{'SIGKILL' if fault.kill else 'SHUTDOWN'} with {len(before)} job(s) held in "
            f"flight, down {fault.hold_s:.1f}s (lease {self.cfg.lease_s:g}s), restarted in "
            f"{load_s:.1f}s; new worker pid {new_pid} started meanwhile took {len(taken)} of "
            f"them in the {hold_after_s(self.cfg):.1f}s they were still held"
        )
        return FaultEvent(
            fault.kind,
            started_s,
            self.elapsed_s() - started_s,
            slot=spare,
            pid=new_pid,
            inflight=frozenset(before | after),
            detail=detail,
            problems=problems,
            taken_over=len(taken),
        )

    async def _collect_owned(self, pid: int | None, until_s: float, owned: set[str]) -> None:
        """Add to ``owned`` every job ``pid`` owns until then. A stopped or blocked worker may
        still be given jobs: a claim it queued behind its blocking wait runs in Redis the moment
        a job arrives, whether the worker can take it or not."""
        while self.elapsed_s() < until_s:
            owned |= await self.view.owned_by(pid, await self.view.inflight())
            await asyncio.sleep(min(0.25, max(until_s - self.elapsed_s(), 0.0)))

    async def _stop_redis(self, *, kill: bool) -> None:
        await asyncio.to_thread(self.redis.kill if kill else self.redis.shutdown)

    async def _start_redis(self) -> float:
        """Restart Redis on its AOF; returns how long it took to answer."""
        restart_started = time.monotonic()
        await asyncio.to_thread(self.redis.start)
        return time.monotonic() - restart_started

    async def _counters_kept(self, before: dict[str, int]) -> tuple[str, ...]:
        """No counter went backwards: Redis lost no acknowledged write."""
        after = await self.view.counters()
        return tuple(
            f"counter {name} went back from {value} to {after.get(name, 0)}"
            for name, value in before.items()
            if after.get(name, 0) < value
        )

    async def _blocked_loop(self, fault: PlannedFault) -> FaultEvent | None:
        """Ask for a blocked loop and note what the blocked worker holds; the event is complete
        (with every job the worker was given meanwhile) when the block ends. Other faults may
        strike other workers meanwhile."""
        started_s = self.elapsed_s()
        found = await self._next_block()
        if found is None:
            detail = f"no blocker job ran within {BLOCKER_WAIT_S:g}s of the request"
            return FaultEvent(fault.kind, started_s, self.elapsed_s() - started_s, detail=detail)
        run, running_there = found
        inflight = await self.view.inflight()
        held = await self.view.owned_by(run.pid, inflight) | {run.job_id}
        # Claimed by that worker but not begun: they wait behind the blocked loop.
        behind = frozenset(held - running_there)
        self.blocked_slot = self.pool.slot_of(run.pid)
        # When the block ends, on this run's clock (the record has the wall clock's).
        ends_s = self.elapsed_s() + (run.start_ms + run.block_ms) / 1000 - time.time()
        self.blocked_until_s = ends_s + 0.5
        watch = self._watch_block(fault, started_s, run, held, behind, ends_s)
        self._block_watch = asyncio.ensure_future(watch)
        return None

    async def _watch_block(
        self,
        fault: PlannedFault,
        started_s: float,
        run: Execution,
        held: set[str],
        behind: frozenset[str],
        ends_s: float,
    ) -> None:
        try:
            # Not past the block: the worker then claims jobs it will run normally.
            await self._collect_owned(run.pid, ends_s - 0.1, held)
        finally:  # a run that ends during the block still records it
            detail = (
                f"job {run.job_id} blocked pid {run.pid}'s event loop for "
                f"{run.block_ms / 1000:.1f}s holding {len(held)} job(s), {len(behind)} of them "
                "not begun"
            )
            self.events.append(
                FaultEvent(
                    fault.kind,
                    started_s,
                    run.block_ms / 1000,
                    slot=self.blocked_slot,
                    pid=run.pid,
                    held=frozenset(held),
                    detail=detail,
                    run=(run.proc, run.number),
                    behind=behind,
                )
            )

    async def _next_block(self) -> tuple[Execution, set[str]] | None:
        """Drop a block request; the blocking execution that took it, once the driver saw it."""
        while not self.blocking.empty():
            self.blocking.get_nowait()
        request = self.pool.run_dir / BLOCK_REQUEST_FILE
        request.touch()
        try:
            return await asyncio.wait_for(self.blocking.get(), BLOCKER_WAIT_S)
        except TimeoutError:
            try:
                request.unlink()
            except FileNotFoundError:
                # Taken just now: its record is on the way.
                return await asyncio.wait_for(self.blocking.get(), 5.0)
            return None
