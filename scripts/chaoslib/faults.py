"""The fault injector: at each planned progress point, hurt a worker or Redis, then heal it.

Around every fault it snapshots the in-flight set (before, and right after; for Redis, after the
restart, which is what the AOF kept). A job in one of those snapshots was *touched* by the fault:
only such jobs may run twice. For Redis faults it also checks that no counter went backwards,
i.e. no acknowledged write was lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

from chaoslib.history import FaultEvent
from chaoslib.plan import (
    REDIS_KILL,
    REDIS_SHUTDOWN,
    WORKER_KILL,
    WORKER_PAUSE,
    WORKER_TERM,
    Config,
    PlannedFault,
)
from chaoslib.redis_proc import RedisProcess
from chaoslib.view import RedisView
from chaoslib.workers import WorkerPool

POLL_S = 0.1


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

    async def run(self, plan: list[PlannedFault]) -> None:
        for index, fault in enumerate(plan):
            if not await self._wait_for_progress(fault.at_fraction):
                # Everything is final already: a fault now would prove nothing.
                self.skipped.extend(plan[index:])
                return
            await self._workers_ready()
            self.events.append(await self._apply(fault))

    async def _wait_for_progress(self, fraction: float) -> bool:
        while True:
            stats = await self.view.stats()
            final = stats.total_processed + stats.dead_letter
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

    async def _apply(self, fault: PlannedFault) -> FaultEvent:
        handlers = {
            WORKER_KILL: self._worker_kill,
            WORKER_TERM: self._worker_term,
            WORKER_PAUSE: self._worker_pause,
            REDIS_SHUTDOWN: self._redis_down,
            REDIS_KILL: self._redis_down,
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

    async def _worker_term(self, fault: PlannedFault) -> FaultEvent:
        started_s, slot = self.elapsed_s(), fault.slot
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
        detail = (
            f"SIGTERM pid {pid} holding {len(held)} job(s): exit {code}; restarted as {new_pid}"
        )
        return self._worker_event(fault, started_s, pid, before | after, held, detail, problems)

    async def _worker_pause(self, fault: PlannedFault) -> FaultEvent:
        """SIGSTOP past the lease: the worker comes back a zombie whose jobs were taken over."""
        started_s, slot = self.elapsed_s(), fault.slot
        self.pool.slots[slot].busy = True
        pid = self.pool.pid(slot)
        before = await self.view.inflight()
        self.pool.pause(slot)
        after = await self.view.inflight()
        held = await self.view.owned_by(pid, before | after)
        await asyncio.sleep(fault.hold_s)
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
        if fault.kind == REDIS_SHUTDOWN:
            await asyncio.to_thread(self.redis.shutdown)
        else:
            await asyncio.to_thread(self.redis.kill)
        await asyncio.sleep(fault.hold_s)
        restart_started = time.monotonic()
        await asyncio.to_thread(self.redis.start)
        load_s = time.monotonic() - restart_started
        # What the AOF kept in flight is exactly what was in flight when Redis died.
        after = await self.view.inflight()
        counters_after = await self.view.counters()
        lost = {
            name: (value, counters_after.get(name, 0))
            for name, value in counters_before.items()
            if counters_after.get(name, 0) < value
        }
        problems = tuple(f"counter {n} went back from {b} to {a}" for n, (b, a) in lost.items())
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
