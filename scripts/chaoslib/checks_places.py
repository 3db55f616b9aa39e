"""Where each job ends: exactly one of done, dead or canceled, its record's state agreeing with
the structure it is in, and the counters agreeing with the final states.

A pure function of a run's history, like ``chaoslib.checks``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from chaoslib.history import History, JobFinal, JobMeta
from chaoslib.result import CheckResult

DEAD_LETTER = "dead-letter"

# -- every job exactly once in one final place, its state agreeing -----------------------------

# The state a record must name in each structure the final state reads.
PLACE_STATES = {
    "p1": "queued", "p2": "queued", "p3": "queued", "p4": "queued", "retry": "retry",
    "scheduled": "scheduled", "parked": "parked", "inflight": "running", DEAD_LETTER: "dead",
}  # fmt: skip
# The outcomes of final_place that are no violation.
GOOD_ENDS = ("done", "dead", "ran, then dead", "canceled", "done or canceled")


def final_place(meta: JobMeta, where: list[str], ledger: Ledger) -> str:
    """'done', 'dead', 'ran, then dead', 'canceled' (or, records deleted at once, 'done or
    canceled'), or what is wrong with the job. The record's state must agree with the one
    structure the job is in (a job in no structure must be done or canceled)."""
    in_dead = meta.id in ledger.dead
    record = ledger.records.get(meta.id)
    places = where + [DEAD_LETTER] * in_dead
    if len(places) > 1:
        return "in two places: " + ", ".join(places)
    if places:
        return _in_place(meta, places[0], record.state if record else None, ledger)
    if record is None:
        return _without_record(meta, ledger)
    if record.state == "done":
        return "done" if meta.id in ledger.succeeded else "done, with no successful execution"
    if record.state == "canceled":
        return "canceled"
    if record.state == "dead":
        return "dead, but not in the dead-letter queue"
    return f"orphaned (state {record.state}, in no queue)"


def _in_place(meta: JobMeta, place: str, state: str | None, ledger: Ledger) -> str:
    wanted = PLACE_STATES[place]
    if state is None:
        return f"in {place} without a record"
    if state != wanted:
        return f"state {state} in {place} (a job there is {wanted})"
    if place != DEAD_LETTER:
        return f"stuck in {place}"
    if meta.id in ledger.succeeded:
        # It ran, a fault lost its acknowledgement, and lease recovery (counting an attempt)
        # found none left: at-least-once with bounded retries allows that, if faults explain it.
        return "ran, then dead" if meta.id in ledger.used_up_by_faults else "done and dead"
    return "dead"


def _without_record(meta: JobMeta, ledger: Ledger) -> str:
    """Kept records (the default): a job with none is lost. Records deleted at once: the
    executions and the cancel requests tell done from canceled, when they can."""
    if ledger.keep_finished:
        return "lost (no record)"
    succeeded, asked = meta.id in ledger.succeeded, meta.id in ledger.cancel_asked
    if succeeded:
        return "done or canceled" if asked else "done"
    return "canceled" if asked else "lost"


@dataclass
class Ledger:
    """What decides a job's final place besides the queues it is found in."""

    dead: set[str]
    records: dict[str, JobFinal]
    succeeded: set[str]
    used_up_by_faults: set[str]
    cancel_asked: set[str] = field(default_factory=set)
    keep_finished: bool = True


def used_up_by_faults(history: History) -> set[str]:
    """Jobs whose failed executions plus the faults that touched them account for all their
    attempts (a fault costs a job at most one attempt: its lease is recovered once)."""
    touches = Counter(job_id for event in history.faults for job_id in event.touched)
    failures = failed_tries(history)
    return {
        job_id
        for job_id in touches
        if touches[job_id] + failures[job_id] >= history.max_retries + 1
    }


def failed_tries(history: History) -> Counter[str]:
    """Failed attempts by job: failed executions, and raises of the gate's hook."""
    return Counter(
        job_id
        for job_id, tries in history.tries_by_job().items()
        for one in tries
        if one.ok is False
    )


def check_final_places(history: History) -> CheckResult:
    result = CheckResult("every job is done, dead or canceled, exactly once; its state agrees")
    where: dict[str, list[str]] = {}
    for place, ids in history.final.places.items():
        for job_id in ids:
            where.setdefault(job_id, []).append(place)
    ledger = Ledger(
        dead=set(history.final.dead),
        records=history.final.records,
        succeeded={run.job_id for run in history.executions if run.ok},
        used_up_by_faults=used_up_by_faults(history),
        cancel_asked=set(history.cancel_asked),
        keep_finished=history.keep_finished_s > 0,
    )
    outcomes: Counter[str] = Counter()
    unsettled = history.unsettled
    for meta in history.jobs.values():
        outcome = final_place(meta, where.get(meta.id, []), ledger)
        outcomes[outcome.split(":")[0].split(" (")[0]] += 1
        if outcome.startswith("stuck") and meta.id in unsettled:
            continue  # the run was stopped before it could finish
        if outcome not in GOOD_ENDS:
            result.violations.append(f"job {meta.id} ({meta.kind}): {outcome}")
    strangers = (set(where) | set(history.final.dead)) - set(history.jobs)
    result.violations += [f"unknown id {job_id} in the queues" for job_id in sorted(strangers)]
    _account(history, outcomes, len(strangers), result)
    return result


def _account(history: History, outcomes: Counter[str], strangers: int, result: CheckResult) -> None:
    done, canceled, either = outcomes["done"], outcomes["canceled"], outcomes["done or canceled"]
    ran_dead = outcomes["ran, then dead"]
    dead = outcomes["dead"] + ran_dead
    lost = outcomes["lost"]
    doubled = outcomes["in two places"] + outcomes["done and dead"]
    other = len(history.jobs) - done - dead - canceled - either - lost - doubled
    result.lines.append(
        f"enqueued {len(history.jobs)}: done {done}, dead {dead}, canceled {canceled}"
        + (f", done or canceled (no record kept) {either}" if either else "")
        + f"; lost {lost}, in two places {doubled}, stuck, orphaned or in a state that "
        f"disagrees with its place {other}, unknown ids {strangers}"
    )
    if history.unsettled:
        result.lines.append(
            f"the run was stopped with {len(history.unsettled)} job(s) not yet final"
        )
    if ran_dead:
        result.lines.append(
            f"{ran_dead} of the dead had run successfully, but faults lost the acknowledgement "
            "and used up their attempts"
        )
    _check_counters(history, (done, canceled, either), result)


def _check_counters(history: History, ends: tuple[int, int, int], result: CheckResult) -> None:
    """Each acknowledgement counts once: more 'processed' than done jobs is a double ack (and
    an acknowledged job that ended canceled would show here too); likewise 'canceled'."""
    done, canceled, either = ends
    counters = history.final.counters
    dead = len(history.final.dead)
    processed, buried = counters.get("processed", 0), counters.get("dead", 0)
    cancels = counters.get("canceled", 0)
    result.lines.append(
        f"counters: processed {processed} (done {done}), dead {buried} (dead-letter {dead}), "
        f"canceled {cancels} (canceled {canceled}), failed attempts "
        f"{counters.get('failed', 0)}, recovered leases {counters.get('recovered', 0)}"
    )
    # Without kept records a job that is 'done or canceled' may count under either.
    if not done <= processed <= done + either:
        result.violations.append(f"'processed' counter {processed} != {done} done jobs")
    if buried != dead:
        result.violations.append(f"'dead' counter {buried} != {dead} dead-letter jobs")
    if (
        not canceled <= cancels <= canceled + either
        or processed + cancels != done + canceled + either
    ):
        result.violations.append(f"'canceled' counter {cancels} != {canceled} canceled jobs")
