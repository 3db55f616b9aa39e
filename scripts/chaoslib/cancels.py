"""The canceller: at each planned progress point, cancel one job through
``QueueService.cancel_job``, as an operator would, and record the request and its reply.

The plan (seeded) says when and what kind of job: a queued one is named by the plan; a job in
the retry or parked set, an executing job or an executing long job is picked (by the plan's
fraction) from what is there when the cancel is due, so the same seed aims the same way. Which
job that is depends on the schedule of the processes, like every interleaving of the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from chaoslib.history import CancelRequest, JobMeta
from chaoslib.plan import CANCEL_LONG, CANCEL_QUEUED, CANCEL_WAITING, PlannedCancel
from chaoslib.view import RETRIED_ERRORS, RETRY_FOR_S, RedisView
from qworker.job_control import NoSuchJob
from qworker.service import QueueService

POLL_S = 0.1
# How long a cancel aimed at a long job waits for one to be executing.
LONG_WAIT_S = 2.0


def now_ms() -> int:
    """The execution records' clock (wall clock, ms)."""
    return time.time_ns() // 1_000_000


class Canceller:
    def __init__(
        self,
        service: QueueService,
        view: RedisView,
        jobs: dict[str, JobMeta],
        executing: Callable[[], set[str]],
        blocking: Callable[[], set[str]],
        elapsed_s: Callable[[], float],
        total_jobs: int,
    ) -> None:
        self.service = service
        self.view = view
        self.jobs = jobs
        self.by_seq = {meta.seq: meta.id for meta in jobs.values()}
        self.long_ids = {meta.id for meta in jobs.values() if meta.kind == "long"}
        # Jobs executing now, as the execution records show (read by the driver).
        self.executing = executing
        # Jobs blocking their worker's loop (a fault): left alone, so the blocked-loop check
        # sees them run elsewhere.
        self.blocking = blocking
        self.elapsed_s = elapsed_s
        self.total_jobs = total_jobs
        self.requests: list[CancelRequest] = []
        # Jobs never picked: the flows' members, whose account (chaoslib/flows.py) expects each
        # to end done or dead-lettered for a dependency, not canceled by an operator.
        self.left_alone: set[str] = set()
        self.skipped: list[PlannedCancel] = []
        self._asked: set[str] = set()

    async def run(self, plan: list[PlannedCancel]) -> None:
        for index, planned in enumerate(plan):
            if not await self._wait_for_progress(planned.at_fraction):
                self.skipped.extend(plan[index:])  # every job is final: nothing to cancel
                return
            job_id = await self._choose(planned)
            if job_id is None:
                self.skipped.append(planned)
                continue
            self._asked.add(job_id)
            self.requests.append(await self._cancel(planned, job_id))

    async def _wait_for_progress(self, fraction: float) -> bool:
        while True:
            final = await self.view.final_count()
            if final >= self.total_jobs:
                return False
            if final >= fraction * self.total_jobs:
                return True
            await asyncio.sleep(POLL_S)

    async def _choose(self, planned: PlannedCancel) -> str | None:
        if planned.target == CANCEL_QUEUED and planned.seq is not None:
            job_id = self.by_seq[planned.seq]
            return None if job_id in self._asked else job_id
        if planned.target == CANCEL_WAITING:
            found = self._pick(await self.view.waiting_ids(), planned.pick)
            if found is not None:
                return found
        if planned.target == CANCEL_LONG:
            deadline = time.monotonic() + LONG_WAIT_S
            while time.monotonic() < deadline:
                found = self._pick(await self._running() & self.long_ids, planned.pick)
                if found is not None:
                    return found
                await asyncio.sleep(POLL_S)
        # CANCEL_RUNNING, and the fallback of the others: a job executing now, or else one
        # claimed (in flight) and not begun.
        running = await self._running()
        return self._pick(running, planned.pick) or self._pick(
            await self.view.inflight(), planned.pick
        )

    async def _running(self) -> set[str]:
        """Executing per the records and in flight per Redis (a killed worker's last runs
        stay open in its records)."""
        return self.executing() & (await self.view.inflight() - self.blocking())

    def _pick(self, candidates: set[str], pick: float) -> str | None:
        fresh = sorted(candidates - self._asked - self.left_alone)
        return fresh[int(pick * len(fresh))] if fresh else None

    async def _cancel(self, planned: PlannedCancel, job_id: str) -> CancelRequest:
        """Ask until Redis answers: a call lost with Redis is sent again (a second cancel of
        one job changes nothing; its reply then says what the first did)."""
        at_s, sent_ms = self.elapsed_s(), now_ms()
        deadline = time.monotonic() + RETRY_FOR_S
        calls = 0
        outcome, previous = "unanswered", ""
        while time.monotonic() < deadline:
            calls += 1
            try:
                result = await self.service.cancel_job(job_id)
            except NoSuchJob:
                outcome = "missing"
                break
            except RETRIED_ERRORS:
                await asyncio.sleep(0.05)
                continue
            outcome, previous = result.outcome, result.previous_state
            break
        return CancelRequest(
            job_id, planned.target, at_s, sent_ms, now_ms(), outcome, previous, calls
        )
