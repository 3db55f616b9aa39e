"""How often and how concurrently each job ran: the checks for jobs that loop, jobs run on two
live workers at once, and event loops blocked with jobs in their hands.

Pure functions of a run's history, like ``chaoslib.checks``.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations

from chaoslib.contract import BLOCKER_TIMEOUT_S, HOOK_KINDS, RENEWAL_MARGIN_S
from chaoslib.history import Execution, FaultEvent, History
from chaoslib.plan import BLOCKED_LOOP, WORKER_CRASH, WORKER_KILL, WORKER_PAUSE
from chaoslib.result import CheckResult

# Faults after which a worker still running a job no longer owns it: its process died, or it
# stood still (stopped, or its event loop blocked) past the lease. Only these may leave a job
# running in two places at once; a Redis outage may not (the workers kept running).
STALLS = frozenset({WORKER_KILL, WORKER_PAUSE, WORKER_CRASH, BLOCKED_LOOP})


# -- bounded attempts -------------------------------------------------------------------------


def check_tries(history: History) -> CheckResult:
    """A job gets max_retries + 1 attempts; a fault that touches it may cost it one more run
    (recovered after a kill, handed back at a stop). A raising hook is a failed attempt like
    any other, so no job, whatever its code raises, is tried more often than that."""
    result = CheckResult("no job tried more often than its attempts allow (a raising hook too)")
    touches = Counter(job_id for event in history.faults for job_id in event.touched)
    runs = Counter(run.job_id for run in history.executions)
    over: list[tuple[int, str]] = []
    most, most_id = 0, ""
    for job_id, tries in history.tries_by_job().items():
        allowed = history.max_retries + 1 + touches[job_id]
        if len(tries) > most:
            most, most_id = len(tries), job_id
        if len(tries) > allowed:
            meta = history.jobs.get(job_id)
            span_s = (tries[-1].at_ms - tries[0].at_ms) / 1000
            over.append(
                (
                    len(tries),
                    f"job {job_id} ({meta.kind if meta else '?'}) was tried {len(tries)} times "
                    f"({runs[job_id]} executions) in {span_s:.1f}s; its attempts allow "
                    f"{allowed} (max_retries {history.max_retries} + 1 + {touches[job_id]} "
                    "fault(s))",
                )
            )
    result.violations += [text for _count, text in sorted(over, reverse=True)]
    hooks = Counter(hook.hook for hook in history.hook_raises)
    hook_jobs = [m for m in history.jobs.values() if m.kind in HOOK_KINDS]
    if hook_jobs and not hooks:
        result.violations.append(f"{len(hook_jobs)} hook-* jobs, but no hook ever raised")
    raised = ", ".join(f"{name} raised {n} times" for name, n in sorted(hooks.items()))
    result.lines.append(
        f"{len(hook_jobs)} jobs whose hooks raise{': ' + raised if raised else ''}"
        + (f"; {len(over)} job(s) tried too often" if over else "")
    )
    if most_id:
        meta = history.jobs.get(most_id)
        result.lines.append(
            f"most tries of one job: {most} ({meta.kind if meta else '?'}, "
            f"{touches[most_id]} fault(s) touched it)"
        )
    return result


# -- never twice at once ----------------------------------------------------------------------


def check_overlaps(history: History) -> CheckResult:
    """Two executions of one job at the same time are excused only when one of them ran on a
    worker that a fault killed or stalled while it held the job (it lost the lease without
    knowing). Redis going away stalls no worker: a worker that takes the jobs of live workers
    after an outage runs them twice at once."""
    result = CheckResult("no job ran twice at once, unless a fault killed or stalled a worker")
    stalled = _stalled_jobs(history.faults)
    pairs = excused = 0
    for job_id, runs in history.runs_by_job().items():
        for first, second in combinations(runs, 2):
            overlap_ms = _overlap_ms(first, second)
            if overlap_ms <= 0:
                continue
            pairs += 1
            if any(job_id in stalled.get(run.pid, set()) for run in (first, second)):
                excused += 1
                continue
            result.violations.append(_describe_overlap(history, job_id, first, second))
    result.lines.append(
        f"{pairs} pair(s) of executions of one job overlapping in time: {excused} on a worker "
        f"killed or stalled while it held the job, {pairs - excused} on live workers"
    )
    return result


def _stalled_jobs(faults: list[FaultEvent]) -> dict[int, set[str]]:
    """Worker pid -> the jobs it held when a fault killed or stalled it."""
    stalled: dict[int, set[str]] = {}
    for event in faults:
        if event.kind in STALLS and event.pid is not None:
            stalled.setdefault(event.pid, set()).update(event.touched)
    return stalled


def _overlap_ms(first: Execution, second: Execution) -> int:
    """How long both ran; a run that never ended (its process died) runs on for ever."""
    never = 2**62
    start = max(first.start_ms, second.start_ms)
    end = min(first.end_ms or never, second.end_ms or never)
    return end - start


def _duration(ms: int) -> str:
    return f"{ms} ms" if ms < 1000 else ("for ever" if ms > 10**12 else f"{ms / 1000:.1f}s")


def _describe_overlap(history: History, job_id: str, first: Execution, second: Execution) -> str:
    meta = history.jobs.get(job_id)
    near = sorted({event.kind for event in history.faults if job_id in event.touched})
    return (
        f"job {job_id} ({meta.kind if meta else '?'}) ran on pid {first.pid} (attempt "
        f"{first.attempt}) and pid {second.pid} (attempt {second.attempt}) at once for "
        f"{_duration(_overlap_ms(first, second))}; neither worker was killed or stalled"
        + (f" (faults touching it: {', '.join(near)})" if near else "")
    )


# -- blocked event loops ----------------------------------------------------------------------


def check_blocked_loops(history: History) -> CheckResult:
    """An execution that blocks its worker's event loop past its timeout and the lease must
    lose its job: the worker stops renewing it, another worker recovers it (an attempt) and
    runs it. The jobs that worker had claimed but not begun are freed too and begin elsewhere,
    not when the loop comes back."""
    result = CheckResult("a blocked event loop loses its jobs: they run elsewhere")
    events = [event for event in history.faults if event.kind == BLOCKED_LOOP]
    if history.stopped:
        # The workers were stopped, maybe before the loop came back: nothing to judge.
        result.lines.append(f"{len(events)} blocked loop(s); the run was stopped: not judged")
        return result
    runs = {(run.proc, run.number): run for run in history.executions}
    runs_by_job = history.runs_by_job()
    taken = canceled = behind_total = behind_freed = 0
    for event in events:
        blocked = runs.get(event.run) if event.run else None
        if blocked is None:
            continue
        elsewhere = [
            run
            for run in runs_by_job.get(blocked.job_id, [])
            if run.proc != blocked.proc and run.start_ms > blocked.start_ms
        ]
        taken += bool(elsewhere)
        # Asked to cancel while blocked: lease recovery cancels it instead of running it again.
        canceled_instead = blocked.job_id in history.canceled
        canceled += canceled_instead and not elsewhere
        if not elsewhere and not canceled_instead:
            result.violations.append(
                f"job {blocked.job_id} blocked pid {blocked.pid}'s event loop for "
                f"{blocked.block_ms / 1000:.1f}s (its timeout {BLOCKER_TIMEOUT_S:g}s + renewal "
                f"margin {RENEWAL_MARGIN_S:g}s + lease {history.lease_s:g}s) and was never taken "
                f"from it: attempt {blocked.attempt} ran to its end there"
            )
        freed, stuck = _next_runs_behind(event, blocked, runs_by_job)
        behind_total += len(event.behind)
        behind_freed += len(freed)
        if stuck:
            result.violations.append(
                f"{len(stuck)} of the {len(event.behind)} job(s) pid {blocked.pid} had claimed "
                "but not begun (prefetched, or given a slot the loop never ran) waited behind "
                f"its blocked loop and ran there after it, e.g. {sorted(stuck)[0]}"
            )
    result.lines.append(
        f"{len(events)} blocked loop(s): {taken} blocked job(s) run again elsewhere"
        + (f", {canceled} canceled instead (a cancel asked while blocked)" if canceled else "")
        + "; "
        f"{behind_freed} of {behind_total} job(s) waiting behind them begun elsewhere"
    )
    return result


def _next_runs_behind(
    event: FaultEvent, blocked: Execution, runs_by_job: dict[str, list[Execution]]
) -> tuple[set[str], set[str]]:
    """Of the jobs waiting behind the blocked loop: those whose next execution was elsewhere,
    and those whose next execution was on the blocked worker, after its loop came back. (A job
    that did not run again at all is neither: a lease recovery may have buried it.)"""
    freed: set[str] = set()
    stuck: set[str] = set()
    for job_id in event.behind:
        later = [run for run in runs_by_job.get(job_id, []) if run.start_ms >= blocked.start_ms]
        if later:
            (stuck if later[0].proc == blocked.proc else freed).add(job_id)
    return freed, stuck
