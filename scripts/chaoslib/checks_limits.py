"""The rate-limit check: the limiters' own logs against every execution.

A pure function of a run's history, like ``chaoslib.checks``.
"""

from __future__ import annotations

from itertools import pairwise

from chaoslib.contract import LIMITED_RATE_KEY, METERED_RATE_KEY
from chaoslib.history import Execution, History
from chaoslib.result import CheckResult


def check_rate_limit(history: History) -> CheckResult:
    """The limiters' logs (durable in the AOF) hold one reservation per slot granted. The limited
    key's must be spaced by its interval, and every execution of every job must hold a
    reservation of its own, taken at or before its start: no job ran past its gate."""
    interval_ms = history.min_interval_ms
    result = CheckResult(f"rate limits: limited jobs {interval_ms} ms apart, none ran ungated")
    log = sorted(history.final.reservations.get(LIMITED_RATE_KEY, []), key=lambda item: item[1])
    gaps = []
    for (first, first_ms), (second, second_ms) in pairwise(log):
        gaps.append(second_ms - first_ms)
        if second_ms - first_ms < interval_ms:
            result.violations.append(
                f"reservations {first} and {second} only {second_ms - first_ms} ms apart"
            )
    result.violations += [
        f"job {run.job_id} ran at {run.start_ms} (attempt {run.attempt}) without a reservation"
        for run in unreserved_runs(history)
    ]
    limited = {m.id for m in history.jobs.values() if m.kind == "limited"}
    starts = sorted(run.start_ms for run in history.executions if run.job_id in limited)
    start_gaps = [b - a for a, b in pairwise(starts)]
    result.lines.append(
        f"{len(starts)} executions of {len(limited)} limited jobs: smallest gap between "
        f"reservations {min(gaps, default=0)} ms, between observed starts "
        f"{min(start_gaps, default=0)} ms"
    )
    result.lines.append(
        f"{len(history.executions)} executions, "
        f"{sum(len(entries) for entries in history.final.reservations.values())} reservations"
    )
    return result


def unreserved_runs(history: History) -> list[Execution]:
    """Executions with no reservation of their job's key left at or before their start."""
    slots: dict[tuple[str, str], list[int]] = {}
    for rate_key, entries in history.final.reservations.items():
        for member, at_ms in entries:
            slots.setdefault((rate_key, member.split(":", 1)[1]), []).append(at_ms)
    missing = []
    for job_id, runs in history.runs_by_job().items():
        meta = history.jobs.get(job_id)
        rate_key = LIMITED_RATE_KEY if meta and meta.kind == "limited" else METERED_RATE_KEY
        free = sorted(slots.get((rate_key, job_id), []))
        for run in runs:
            usable = [at_ms for at_ms in free if at_ms <= run.start_ms]
            if usable:
                free.remove(usable[-1])
            elif not (meta and meta.kind == "hook-reset" and run.ok is False):
                # A RateLimitedJobError says the attempt never reached the remote side, so
                # its slot may be given back.
                missing.append(run)
    return missing
