"""The invariants, as pure functions of a run's history.

Each check returns its verdict, a few lines for the report and the violations it found (at most
a handful are shown; all are counted). None of them reads Redis or the clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import pairwise

from chaoslib.checks_cancels import check_cancels
from chaoslib.checks_limits import check_rate_limit
from chaoslib.checks_places import check_final_places, failed_tries, used_up_by_faults
from chaoslib.checks_runs import check_blocked_loops, check_overlaps, check_tries
from chaoslib.contract import DOOMED_ERROR, HOOK_KINDS
from chaoslib.history import Execution, History, JobMeta, RunFacts
from chaoslib.plan import WORKER_FAULTS, WORKER_PAUSE
from chaoslib.result import SHOWN_VIOLATIONS, CheckResult

__all__ = [
    "SHOWN_VIOLATIONS",
    "CheckResult",
    "check_blocked_loops",
    "check_cancels",
    "check_final_places",
    "check_overlaps",
    "check_rate_limit",
    "check_tries",
]
LEASE_EXPIRED_ERROR = "LeaseExpired"


def run_checks(history: History, facts: RunFacts) -> list[CheckResult]:
    return [
        check_run(history, facts),
        check_final_places(history),
        check_cancels(history),
        check_executions(history),
        check_tries(history),
        check_overlaps(history),
        check_blocked_loops(history),
        check_priority_order(history),
        check_rate_limit(history),
        check_dead_letter(history),
    ]


# -- executions: duplicates only where a fault struck ------------------------------------------


def duplicate_runs(runs: list[Execution]) -> list[Execution]:
    """Runs that repeat work: every run after the first, unless the run before it had ended in
    a failure (then it is the retry that failure asked for)."""
    return [later for earlier, later in pairwise(runs) if not _retry_was_due(earlier, later)]


def _retry_was_due(earlier: Execution, later: Execution) -> bool:
    return earlier.ok is False and earlier.end_ms is not None and earlier.end_ms <= later.start_ms


def expected_outcomes(meta: JobMeta, max_retries: int) -> list[bool]:
    """Attempt by attempt (a raising hook is a failed attempt)."""
    if meta.kind == "doomed":
        return [False] * (max_retries + 1)
    failures = min(meta.fail_first, max_retries + 1)
    return [False] * failures + ([True] if failures <= max_retries else [])


def story_until_cancel(outcomes: list[bool | None], wanted: list[bool]) -> bool:
    """The attempts a canceled job had: the first ones its kind says, the last maybe cut."""
    if len(outcomes) > len(wanted):
        return False
    last = len(outcomes) - 1
    return all(
        got == want or (got is None and index == last)
        for index, (got, want) in enumerate(zip(outcomes, wanted, strict=False))
    )


def always_failing(meta: JobMeta, max_retries: int) -> bool:
    return meta.kind == "doomed" or (meta.kind in HOOK_KINDS and meta.fail_first > max_retries)


def _story(attempts: Sequence[int], outcomes: Sequence[bool | None]) -> str:
    """'attempt 1 failed, attempt 2 ok' as '1:fail 2:ok' (a run cut short: 'cut')."""
    words = {True: "ok", False: "fail", None: "cut"}
    return " ".join(f"{a}:{words[o]}" for a, o in zip(attempts, outcomes, strict=True)) or "-"


def check_executions(history: History) -> CheckResult:
    result = CheckResult("duplicate executions only for jobs a fault touched")
    touched = history.touched
    runs_by_job = history.runs_by_job()
    tries_by_job = history.tries_by_job()
    duplicates = {job_id: duplicate_runs(runs) for job_id, runs in runs_by_job.items()}
    duplicates = {job_id: runs for job_id, runs in duplicates.items() if runs}
    for job_id in sorted(set(duplicates) - touched):
        result.violations.append(f"job {job_id} ran {len(runs_by_job[job_id])} times untouched")
    # A job no fault touched must have run exactly as its kind says, attempts numbered 1..n;
    # a canceled one, as its kind says until the cancel (its last run may be cut short by it).
    canceled = history.canceled
    for meta in history.jobs.values():
        if meta.id in touched or meta.id in history.unsettled:
            continue
        tries = tries_by_job.get(meta.id, [])
        outcomes = [one.ok for one in tries]
        attempts = [one.attempt for one in tries]
        wanted = expected_outcomes(meta, history.max_retries)
        as_kind = (
            story_until_cancel(outcomes, wanted) if meta.id in canceled else outcomes == wanted
        )
        if not as_kind or attempts != list(range(1, len(tries) + 1)):
            result.violations.append(
                f"job {meta.id} ({meta.kind}) ran as {_story(attempts, outcomes)} though no "
                f"fault touched it; expected {_story(list(range(1, len(wanted) + 1)), wanted)}"
            )
    extra = sum(len(runs) for runs in duplicates.values())
    interrupted = sum(1 for run in history.executions if run.cut)
    result.lines.append(
        f"{len(history.executions)} executions recorded ({interrupted} cut short by a fault); "
        f"{extra} duplicate execution(s) of {len(duplicates)} job(s), "
        f"all among the {len(touched)} job(s) in flight at a fault"
        if not result.violations
        else f"{extra} duplicate execution(s) of {len(duplicates)} job(s)"
    )
    by_kind = Counter(
        event.kind for event in history.faults for job_id in duplicates if job_id in event.touched
    )
    if by_kind:
        result.lines.append(
            "duplicated jobs by the faults that touched them (a job may count under several): "
            + ", ".join(f"{kind} {n}" for kind, n in sorted(by_kind.items()))
        )
    result.lines.append(
        "slack: a job in flight at a fault may run again (killed or paused before its ack, or "
        "a Redis outage outlasting its lease); every other job must run exactly as its kind says"
    )
    return result


# -- priority order among jobs ready together ---------------------------------------------------


def inversions(order: list[int]) -> list[int]:
    """For each position i of ``order`` (ranks in start order), how many later positions hold a
    smaller rank: jobs that should have gone first but started after it. O(n log n)."""
    size = len(order)
    tree = [0] * (size + 1)
    counts = [0] * size
    for position in range(size - 1, -1, -1):
        rank = order[position]
        total, index = 0, rank
        while index > 0:
            total += tree[index]
            index -= index & -index
        counts[position] = total
        index = rank + 1
        while index <= size:
            tree[index] += 1
            index += index & -index
    return counts


def check_priority_order(history: History) -> CheckResult:
    """All jobs were ready before any worker started, and a claim takes the most urgent, oldest
    job atomically, so claims follow (priority, enqueue order) exactly. A job starts a moment
    after its claim; meanwhile every other slot may start a job claimed earlier. So a job may
    start ahead of at most as many jobs as all workers hold claimed: workers x (concurrency +
    prefetch) jobs that should have gone first."""
    slack = history.workers * (history.concurrency + history.prefetch)
    result = CheckResult(
        f"priority order within {slack} positions (workers x (concurrency + prefetch))"
    )
    touched = history.touched
    first_start: dict[str, int] = {}
    for run in history.executions:
        if run.job_id not in first_start or run.start_ms < first_start[run.job_id]:
            first_start[run.job_id] = run.start_ms
    # Limited jobs wait for their limiter, a hook-limit job's first execution waits for its
    # failed gates' retries, and touched jobs were put back: none of them is ordered.
    checked = [
        meta
        for meta in history.jobs.values()
        if meta.kind not in ("limited", "hook-limit")
        and meta.id not in touched
        and meta.id in first_start
    ]
    rank = {m.id: i for i, m in enumerate(sorted(checked, key=lambda m: (m.priority, m.seq)))}
    started = sorted(checked, key=lambda m: (first_start[m.id], rank[m.id]))
    counts = inversions([rank[m.id] for m in started])
    worst = max(range(len(counts)), key=counts.__getitem__, default=None)
    for meta, count in zip(started, counts, strict=True):
        if count > slack:
            result.violations.append(
                f"job {meta.id} (p{meta.priority}, #{meta.seq}) started before {count} jobs "
                "that should have gone first"
            )
    late = sum(1 for count in counts if count)
    result.lines.append(
        f"{len(checked)} jobs checked (limited, hook-limit and fault-touched ones excluded): "
        f"{late} started ahead of some more urgent job, by at most "
        f"{counts[worst] if worst is not None else 0} position(s)"
    )
    result.lines.append(
        "slack: a job starts a moment (or, prefetched, a job's length) after its claim; "
        "meanwhile each other slot may start a job claimed earlier"
    )
    return result


# -- dead-letter queue --------------------------------------------------------------------------


def check_dead_letter(history: History) -> CheckResult:
    """Exactly the always-failing jobs, each with every attempt used and its own error. Lease
    recovery also buries a job (error LeaseExpired) whose attempts ran out, by design; that is
    accepted only when the job's failures plus the faults that touched it explain every one of
    its attempts (a fault costs a job at most one attempt)."""
    attempts = history.max_retries + 1
    result = CheckResult(f"dead-letter queue = the always-failing jobs, {attempts} attempts each")
    touches = Counter(job_id for event in history.faults for job_id in event.touched)
    failures = failed_tries(history)
    explained = used_up_by_faults(history)
    doomed = {m.id for m in history.jobs.values() if m.kind == "doomed"}
    # Jobs whose hook raises on every attempt: their error is whatever the worker makes of it.
    hooked = {m.id for m in history.jobs.values() if always_failing(m, history.max_retries)}
    hooked -= doomed
    dead = history.final.dead
    # A canceled one ends canceled instead (the cancel check judges that it was asked for).
    for job_id in sorted((doomed | hooked) - set(dead) - history.unsettled - history.canceled):
        kind = history.jobs[job_id].kind
        result.violations.append(
            f"always-failing job {job_id} ({kind}) is not in the dead-letter queue"
        )
    for job_id, entry in sorted(dead.items()):
        by_recovery = entry.error_type == LEASE_EXPIRED_ERROR and job_id in explained
        own_error = (job_id in doomed and entry.error_type == DOOMED_ERROR) or (
            job_id in hooked and entry.error_type is not None
        )
        if entry.attempts != attempts:
            result.violations.append(f"dead job {job_id} has {entry.attempts} attempts")
        elif not by_recovery and not own_error:
            result.violations.append(
                f"job {job_id} dead with {entry.error_type}: {failures[job_id]} failed "
                f"attempt(s), {touches[job_id]} fault(s) touched it"
            )
    errors = Counter(str(entry.error_type) for entry in dead.values())
    extra = len(set(dead) - doomed - hooked)
    result.lines.append(
        f"{len(dead)} dead ({len(doomed)} always-failing"
        + (f", {len(hooked)} whose hook always raises" if hooked else "")
        + (f", {extra} other jobs buried by lease recovery" if extra else "")
        + "); errors: "
        + ", ".join(f"{kind} x{n}" for kind, n in sorted(errors.items()))
    )
    return result


# -- the run itself -----------------------------------------------------------------------------


def check_run(history: History, facts: RunFacts) -> CheckResult:
    """The run proves something only if it finished, every kind of fault struck jobs in flight,
    no worker crashed on its own and the workers stopped cleanly at the end."""
    result = CheckResult("the run: every fault kind struck, no crash, clean stop")
    if facts.stopped_early:
        result.violations.append(facts.stopped_early)
    elif facts.elapsed_s is None:
        result.violations.append("not every job reached a final state before the timeout")
    # A run stopped early did not get to every fault: that it stopped is the finding.
    for kind in facts.fault_kinds if not facts.stopped_early else ():
        events = [e for e in history.faults if e.kind == kind]
        hits = [e for e in events if (e.held if kind in WORKER_FAULTS else e.inflight)]
        if not hits:
            result.violations.append(f"no {kind} fault struck a job in flight")
    zombies = [e for e in history.faults if e.kind == WORKER_PAUSE and e.taken_over]
    if WORKER_PAUSE in facts.fault_kinds and not zombies and not facts.stopped_early:
        result.violations.append("no paused worker had its jobs taken over: no zombie came back")
    result.violations += facts.crashes
    result.violations += [problem for event in history.faults for problem in event.problems]
    result.violations += [
        f"worker slot {slot} did not stop cleanly at the end (exit {code})"
        for slot, code in facts.stop_codes.items()
        if code != 0
    ]
    kinds = Counter(event.kind for event in history.faults)
    result.lines.append(
        f"{len(history.faults)} faults: "
        + ", ".join(f"{kind} x{kinds[kind]}" for kind in facts.fault_kinds)
        + (
            f"; {len(facts.skipped_faults)} skipped (all jobs final)"
            if facts.skipped_faults
            else ""
        )
    )
    result.lines.append(
        f"{facts.worker_starts} worker processes started; in their logs: "
        f"{facts.rate_limited} rate-limit deferrals, {facts.lease_lost_warnings} lease-lost "
        f"refusals, {facts.unexpected_errors} errors logged with a traceback"
    )
    result.lines += [f"  {summary}" for summary in facts.error_summaries]
    return result
