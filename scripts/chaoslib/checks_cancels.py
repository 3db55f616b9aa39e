"""The cancel check: every cancel the driver asked for during the run, against each job's final
record, its executions and Redis's own list of the jobs it acknowledged.

The rules, as ``check_cancels`` enforces them (a pure function of the history, like
``chaoslib.checks``):

1. The reply decides what a job may end as. ``canceled`` (it was waiting: queued, scheduled,
   retry, parked or paused): it ends canceled. ``requested`` (it was running): it ends canceled
   (by its worker, by lease recovery, or handed back at a stop), or done if it finished before
   its worker could stop it (or inside a cancel shield); never dead, never waiting or running.
   ``finished``: it stays as it was (done stays done, dead stays dead). ``missing`` is a
   finding while finished records are kept; so is a cancel Redis never answered.
2. No execution starts after the request, except the one execution of the claim a running job
   held (a claimed job not begun when the request came may still begin before its worker looks,
   about a second later). A job canceled while waiting must never start again. A start on a
   worker a fault killed or stalled while it held the job is excused (that worker lost the lease
   without knowing, as for duplicate executions), and counted.
3. Never both canceled and done. Final state canceled => no acknowledged successful completion:
   the job must have no successful execution unless a fault touched it (then the worker's
   acknowledgement may have been refused, its lease lost, and recovery cancels the job instead
   of running it again: that is not an acknowledged completion). Acknowledgements are seen in
   Redis itself: the 'processed' and 'canceled' counters must equal the done and canceled jobs
   (checked with the final places), and no id may be in both recently-finished lists (done,
   canceled), nor listed there with a final state other than the list's.
4. Only asked-for cancels: a job whose record says canceled must have been asked to cancel.
   Final state done => it was not canceled while waiting (rule 1).
"""

from __future__ import annotations

from collections import Counter

from chaoslib.history import CancelRequest, Execution, History
from chaoslib.result import CheckResult

WAITING_STATES = frozenset({"queued", "scheduled", "retry", "parked", "paused", "waiting"})
# How a running job's cancel ended, by the error its record keeps.
CANCELED_BY = {"Canceled": "by its worker", "LeaseExpired": "by lease recovery"}
HANDED_BACK = "handed back at a stop"


def check_cancels(history: History) -> CheckResult:
    result = CheckResult(
        "cancels: each ends canceled (done only if it was running or done already), "
        "never runs after, never both canceled and done"
    )
    runs_by_job = history.runs_by_job()
    ends: Counter[str] = Counter()
    excused = 0
    for request in history.cancels:
        end, problem = _ending(history, request)
        ends[end] += 1
        if problem:
            result.violations.append(f"job {request.job_id}: {problem}")
        late, allowed = _starts_after(request, runs_by_job.get(request.job_id, []))
        if len(late) > allowed:
            if request.job_id in history.touched:
                excused += 1
            else:
                result.violations.append(
                    f"job {request.job_id}: {len(late)} execution(s) began after its cancel "
                    f"({request.outcome}, was {request.previous_state}), "
                    f"{allowed} allowed; first on pid {late[0].pid}"
                )
    result.violations += _unasked_or_acknowledged(history)
    result.violations += _acknowledgement_log(history)
    _describe(history, ends, excused, result)
    return result


def _ending(history: History, request: CancelRequest) -> tuple[str, str]:
    """How the cancel ended, for the account, and what is wrong with it ('' if nothing)."""
    state = history.final_state(request.job_id)
    kept = history.keep_finished_s > 0
    outcome, before = request.outcome, request.previous_state
    shown = state or "no record"
    if outcome == "canceled" or (outcome == "finished" and before == "canceled"):
        # ('finished' after canceled: the first call's reply was lost with Redis; asked again.)
        ok = state == "canceled" or (not kept and state is None)
        return "canceled while waiting", "" if ok else f"canceled while {before}, ends {shown}"
    if outcome == "requested":
        if state == "canceled":
            record = history.final.records[request.job_id]
            by = CANCELED_BY.get(record.error_type or "", HANDED_BACK)
            return f"canceled while running ({by})", ""
        if state == "done" or (not kept and state is None):
            return "done anyway (finished before its worker could stop it)", ""
        return "requested", f"asked to cancel while running, ends {shown}"
    if outcome == "finished":
        ok = state == before or (not kept and state is None and before == "done")
        problem = "" if ok else f"was {before} already when asked to cancel, ends {shown}"
        return f"already {before}", problem
    if outcome == "missing" and not kept:
        return "already finished (no record kept)", ""
    return outcome, f"cancel replied {outcome} (was {before or '?'}); the job ends {shown}"


def _starts_after(request: CancelRequest, runs: list[Execution]) -> tuple[list[Execution], int]:
    """Executions begun after the request was sent, and how many may be: one if the job was
    running in Redis (claimed) but no execution of it was under way, else none."""
    late = [run for run in runs if run.start_ms >= request.sent_ms]
    under_way = any(
        run.start_ms < request.sent_ms and (run.end_ms is None or run.end_ms >= request.sent_ms)
        for run in runs
    )
    allowed = 1 if request.outcome == "requested" and not under_way else 0
    return late, allowed


def _unasked_or_acknowledged(history: History) -> list[str]:
    problems = []
    asked = history.cancel_asked
    touched = history.touched
    succeeded = {run.job_id for run in history.executions if run.ok}
    kept = history.keep_finished_s > 0
    for job_id in sorted(history.canceled):
        if job_id not in asked:
            problems.append(f"job {job_id} ends canceled, but no cancel was asked for it")
        elif kept and job_id in succeeded and job_id not in touched:
            # (Without kept records a job asked to cancel may have ended done: no telling.)
            problems.append(
                f"job {job_id} ends canceled after an execution that succeeded, and no fault "
                "touched it: its acknowledgement cannot have been lost"
            )
    return problems


def _acknowledgement_log(history: History) -> list[str]:
    """Redis lists every job it finishes done or canceled (the newest, capped): no job may be
    listed twice, in both, or with another final state."""
    problems = []
    recent = history.final.recent
    done, canceled = recent.get("done", []), recent.get("canceled", [])
    for state, ids in (("done", done), ("canceled", canceled)):
        for job_id, count in Counter(ids).items():
            if count > 1:
                problems.append(f"job {job_id} was finished {state} {count} times")
            final = history.final_state(job_id)
            if final != state and job_id in history.jobs:
                problems.append(f"job {job_id} was finished {state}, but ends {final}")
    for job_id in sorted(set(done) & set(canceled)):
        problems.append(f"job {job_id} was finished both done and canceled")
    return problems


def _describe(history: History, ends: Counter[str], excused: int, result: CheckResult) -> None:
    requests = history.cancels
    before = Counter(request.previous_state or request.outcome for request in requests)
    resent = sum(1 for request in requests if request.calls > 1)
    result.lines.append(
        f"cancel: {len(requests)} asked during the run; by previous state: "
        + (", ".join(f"{state} {n}" for state, n in sorted(before.items())) or "-")
        + (f" ({resent} sent again after Redis failed to answer)" if resent else "")
    )
    result.lines.append(
        "ended: " + ("; ".join(f"{end} {n}" for end, n in sorted(ends.items())) or "-")
    )
    canceled = history.canceled
    result.lines.append(
        f"{len(canceled)} job(s) end canceled, all asked for; executions begun after a cancel: "
        + (f"{excused} job(s), on workers a fault stalled (excused)" if excused else "none")
    )
    recent = history.final.recent
    result.lines.append(
        f"Redis's lists of finished jobs: {len(recent.get('done', []))} done, "
        f"{len(recent.get('canceled', []))} canceled (the newest of each, capped); "
        "none may be in both or disagree with its final state"
    )
    result.lines.append(
        "rules: canceled while waiting => ends canceled, never starts again; while running => "
        "canceled, or done if it finished first; canceled => no acknowledged success (a success "
        "only where a fault may have lost its ack)"
    )
