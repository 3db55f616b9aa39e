"""A schedule firing every second through the whole run (``--without schedules`` leaves it
out), and its account: every due time fired exactly once; the gaps (due times that only a
catch-up fire stands for, policy ``once``) only where Redis was down.

With ``--missed once`` each fire stands for every due time since the previous fire, so the due
times of the fired jobs, in order, partition the run's due times: a due time fired by two jobs is
a double fire, and a gap between consecutive fires longer than a second is a stretch no worker
could fire in.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from chaoslib.history import FaultEvent
from chaoslib.plan import NEW_WORKER_IN_OUTAGE, REDIS_KILL, REDIS_SHUTDOWN
from chaoslib.result import CheckResult
from chaoslib.tick_job import TICK_FILE_GLOB, TICK_JOB_TYPE
from qworker.schedule_store import ScheduleStore, build_schedule
from qworker.service import QueueService

SCHEDULE = "chaos-tick"
EVERY_MS = 1000
OUTAGES = frozenset({REDIS_SHUTDOWN, REDIS_KILL, NEW_WORKER_IN_OUTAGE})
# After Redis is back, a scheduler finds out within its one-second retry, and Redis may still
# be loading its append-only file: a gap may reach this far past an outage.
OUTAGE_SLACK_MS = 5000


@dataclass
class ScheduleRun:
    """What the driver saw of the schedule: its first due time, the first one left unfired when
    it was paused, how many jobs Redis says it fired, and when the driver started (wall ms)."""

    start_ms: int
    end_ms: int = 0
    fired: int = 0
    missed: int = 0
    driver_start_ms: int = 0
    ticks: list[tuple[str, int]] = field(default_factory=list)


async def start_schedule(service: QueueService) -> ScheduleRun:
    now_ms = time.time_ns() // 1_000_000
    start_ms = now_ms - now_ms % 1000 + 2000
    schedule = build_schedule(
        service.settings,
        SCHEDULE,
        {"job_type": TICK_JOB_TYPE},
        every="1s",
        start_ms=start_ms,
        missed="once",
        priority=1,
    )
    await ScheduleStore(service).upsert(schedule)
    return ScheduleRun(start_ms)


async def stop_schedule(service: QueueService, run: ScheduleRun) -> None:
    """Pause it (no fire after this step), then note where it stopped."""
    store = ScheduleStore(service)
    await store.set_paused(SCHEDULE, paused=True)
    stored = await store.get(SCHEDULE)
    run.end_ms = stored.next_due_ms or 0
    run.fired, run.missed = stored.fired, stored.missed_count


def read_ticks(run_dir: Path, run: ScheduleRun) -> None:
    for path in sorted(run_dir.glob(TICK_FILE_GLOB)):
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                run.ticks.append((record["job_id"], int(record["due_ms"])))


def check_schedule(run: ScheduleRun, faults: list[FaultEvent]) -> CheckResult:
    result = CheckResult(
        "schedule every 1s: each due time fired exactly once; gaps only in outages"
    )
    jobs_by_due: dict[int, set[str]] = {}
    for job_id, due_ms in run.ticks:
        jobs_by_due.setdefault(due_ms, set()).add(job_id)
    runs = Counter(job_id for job_id, _ in run.ticks)
    expected = list(range(run.start_ms, run.end_ms, EVERY_MS))
    fired = sorted(jobs_by_due)
    doubled = [due for due, ids in jobs_by_due.items() if len(ids) > 1]
    stray = [due for due in fired if due not in set(expected)]
    outages = [
        (
            run.driver_start_ms + int(f.at_s * 1000),
            run.driver_start_ms + int((f.at_s + f.duration_s) * 1000),
        )
        for f in faults
        if f.kind in OUTAGES
    ]
    gaps, unexplained = _gaps(run.start_ms, fired, outages)
    covered = sum(len(g) for g in gaps)
    result.lines = [
        f"{len(expected)} due times over {len(expected) * EVERY_MS / 1000:.0f}s: "
        f"{len(fired)} fired on time, {covered} stood for by a catch-up fire after "
        f"{len(gaps)} gap(s) (policy once); Redis counted {run.fired} fires",
        f"jobs run twice by a fault (same job, same due time): "
        f"{sum(1 for n in runs.values() if n > 1)}; due times fired by two jobs: {len(doubled)}",
        f"gaps: {', '.join(_describe(g) for g in gaps) or 'none'}",
    ]
    result.violations += [
        f"due time {due} fired by jobs {sorted(jobs_by_due[due])}" for due in doubled
    ]
    result.violations += [f"a job fired for {due}, not a due time of the run" for due in stray]
    result.violations += [f"gap {_describe(g)} while Redis was up" for g in unexplained]
    if fired and fired[-1] != expected[-1]:
        result.violations.append(f"the last due time {expected[-1]} was not fired")
    if run.fired != len(fired):
        result.violations.append(f"Redis counted {run.fired} fires, the jobs ran for {len(fired)}")
    return result


def _gaps(
    start_ms: int, fired: list[int], outages: list[tuple[int, int]]
) -> tuple[list[list[int]], list[list[int]]]:
    """Runs of due times no job was fired for (each stood for by the next fire), and those of
    them not inside an outage (with slack)."""
    gaps: list[list[int]] = []
    previous = start_ms - EVERY_MS
    for due in fired:
        if due - previous > EVERY_MS:
            gaps.append(list(range(previous + EVERY_MS, due, EVERY_MS)))
        previous = due
    unexplained = [
        gap
        for gap in gaps
        if not any(a - EVERY_MS <= gap[0] and gap[-1] <= b + OUTAGE_SLACK_MS for a, b in outages)
    ]
    return gaps, unexplained


def _describe(gap: list[int]) -> str:
    return f"{len(gap)}s from {time.strftime('%H:%M:%S', time.gmtime(gap[0] / 1000))}"
