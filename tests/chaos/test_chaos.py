"""The chaos run in small, and its checker on made-up histories.

The run (``scripts/chaos --jobs 2000 --workers 3 --seed 1``) starts its own redis-server with
AOF fsync always, runs real worker processes, kills, stops and pauses them and Redis, starts a
worker while Redis is down, runs jobs whose hooks raise and jobs that block their worker's event
loop, cancels jobs as they wait and as they run, and exits non-zero if any job is lost, doubled,
in a state that disagrees with its place, run twice without a fault, tried more often than its
attempts allow, run twice at once on live workers, left behind a blocked loop, out of priority
order, over its rate limit, wrongly dead-lettered, or canceled wrongly (run after its cancel,
both canceled and done, canceled unasked). The checker tests show that each
check does catch what it is there to catch, so a passing run means something.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHAOS = REPO / "scripts" / "chaos"
# Appended, never prepended: nothing in scripts/ may shadow an installed module.
if str(REPO / "scripts") not in sys.path:
    sys.path.append(str(REPO / "scripts"))

from chaoslib.checks import (  # noqa: E402 - needs scripts/ on the path first
    check_blocked_loops,
    check_cancels,
    check_dead_letter,
    check_executions,
    check_final_places,
    check_overlaps,
    check_priority_order,
    check_rate_limit,
    check_tries,
    inversions,
)
from chaoslib.contract import ALWAYS, LIMITED_RATE_KEY, METERED_RATE_KEY  # noqa: E402
from chaoslib.history import (  # noqa: E402
    CancelRequest,
    DeadEntry,
    Execution,
    FaultEvent,
    FinalState,
    History,
    HookRaise,
    JobFinal,
    JobMeta,
)

# -- the run ----------------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_small_chaos_run_keeps_every_promise(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWORKER_")}
    command = [str(CHAOS), "--jobs", "2000", "--workers", "3", "--seed", "1"]
    done = subprocess.run(
        [*command, "--dir", str(tmp_path / "run")],
        env=env,
        capture_output=True,
        text=True,
        timeout=230,
    )
    report = f"{done.stdout}\n--- stderr (tail) ---\n{done.stderr[-4000:]}"
    assert done.returncode == 0, report
    assert "result: PASS" in done.stdout, report
    kinds = ("worker-kill", "worker-term", "worker-pause", "redis-shutdown", "redis-kill")
    for kind in (*kinds, "new-worker-in-outage", "blocked-loop"):
        assert f" {kind} " in done.stdout, report
    # The zombie came back and Redis refused what it no longer owned.
    refusals = re.findall(r"worker-pause .* lease-lost refusal", done.stdout)
    assert any(re.search(r": [1-9]\d* lease-lost", line) for line in refusals), report
    # Hooks did raise, in the gate and in the retry decision.
    assert re.search(r"get_rate_limit raised [1-9]", done.stdout), report
    assert re.search(r"get_retry_config raised [1-9]", done.stdout), report
    # Cancels were asked during the run, of waiting and of running jobs, and took effect.
    assert re.search(r"cancels: [1-9]\d* asked through QueueService.cancel_job", done.stdout)
    assert re.search(r"\[PASS\] cancels: ", done.stdout), report
    assert re.search(r"canceled while waiting [1-9]", done.stdout), report
    assert re.search(r"canceled while running \(by its worker\) [1-9]", done.stdout), report
    assert re.search(r"done [1-9]\d*, dead [1-9]\d*, canceled [1-9]", done.stdout), report


# -- the checker, on made-up histories --------------------------------------------------------


def job(number: int, *, priority: int = 2, kind: str = "ok", fail_first: int = 0) -> JobMeta:
    return JobMeta(f"job{number}", number, priority, kind, fail_first)  # type: ignore[arg-type]


def ran(
    meta: JobMeta, start_ms: int, *, attempt: int = 1, ok: bool | None = True, proc: str = "a"
) -> Execution:
    end_ms = None if ok is None else start_ms + 5
    return Execution(meta.id, proc, 1, start_ms, attempt, start_ms, end_ms, ok)


def history(
    jobs: list[JobMeta],
    runs: list[Execution],
    *,
    final: FinalState | None = None,
    faults: list[FaultEvent] | None = None,
    hooks: list[HookRaise] | None = None,
    cancels: list[CancelRequest] | None = None,
    keep_finished_s: float = 3600.0,
) -> History:
    if final is None:
        done = {r.job_id for r in runs if r.ok}
        final = FinalState(
            records={job_id: JobFinal("done", 1) for job_id in done},
            counters={"processed": len(done), "dead": 0},
        )
    return History(
        jobs={meta.id: meta for meta in jobs},
        executions=runs,
        faults=faults or [],
        final=final,
        workers=2,
        concurrency=2,
        max_retries=3,
        min_interval_ms=100,
        hook_raises=hooks or [],
        lease_s=2.0,
        cancels=cancels or [],
        keep_finished_s=keep_finished_s,
    )


def fault_touching(*metas: JobMeta) -> FaultEvent:
    return FaultEvent("worker-kill", 1.0, 0.5, inflight=frozenset(m.id for m in metas))


def test_a_clean_history_passes_every_check() -> None:
    a, b = job(1), job(2, kind="flaky", fail_first=1)
    runs = [ran(a, 10), ran(b, 11, ok=False), ran(b, 300, attempt=2)]
    clean = history([a, b], runs)
    for check in (check_final_places, check_executions, check_priority_order, check_dead_letter):
        assert check(clean).ok, check(clean).violations


def test_a_job_that_never_ran_and_is_nowhere_is_lost() -> None:
    a, b = job(1), job(2)
    result = check_final_places(history([a, b], [ran(a, 10)]))
    assert result.violations == [f"job {b.id} (ok): lost (no record)"]


def test_a_job_in_two_places_or_acknowledged_twice_is_caught() -> None:
    a = job(1)
    final = FinalState(
        places={"p2": [a.id]},
        dead={a.id: DeadEntry(a.id, 4, "DoomedJobError", "")},
        records={a.id: JobFinal("queued")},
        counters={"processed": 2, "dead": 1},
    )
    violations = check_final_places(history([a], [ran(a, 10)], final=final)).violations
    assert f"job {a.id} (ok): in two places: p2, dead-letter" in violations
    assert "'processed' counter 2 != 0 done jobs" in violations


def test_a_second_run_is_excused_only_for_a_job_a_fault_touched() -> None:
    a = job(1)
    twice = [ran(a, 10, proc="a"), ran(a, 20, attempt=2, proc="b")]
    untouched = check_executions(history([a], twice))
    assert any("ran 2 times untouched" in v for v in untouched.violations)
    assert check_executions(history([a], twice, faults=[fault_touching(a)])).ok


def test_a_retry_after_a_failure_is_not_a_duplicate_but_an_overlap_is() -> None:
    a = job(1, kind="flaky", fail_first=1)
    assert check_executions(history([a], [ran(a, 10, ok=False), ran(a, 50, attempt=2)])).ok
    # The second run starts before the failed first one has ended: two ran at once.
    overlapping = [ran(a, 10, ok=False), ran(a, 12, attempt=2)]
    assert not check_executions(history([a], overlapping)).ok


def test_inversions_count_the_more_urgent_jobs_started_later() -> None:
    assert inversions([0, 1, 2]) == [0, 0, 0]
    assert inversions([2, 0, 1]) == [2, 0, 0]
    assert inversions([3, 2, 1, 0]) == [3, 2, 1, 0]


def test_priority_order_allows_workers_times_concurrency_positions() -> None:
    urgent = [job(n, priority=1) for n in range(5)]
    low = job(99, priority=4)
    # The low-priority job started before 4 urgent ones (slack is 2 x 2 = 4), then 5.
    within = [ran(low, 10)] + [ran(m, 20 + n) for n, m in enumerate(urgent[:4])]
    assert check_priority_order(history([low, *urgent[:4]], within)).ok
    beyond = [ran(low, 10)] + [ran(m, 20 + n) for n, m in enumerate(urgent)]
    assert not check_priority_order(history([low, *urgent], beyond)).ok
    # A job a fault put back is not held to the order.
    excused = history([low, *urgent], beyond, faults=[fault_touching(low)])
    assert check_priority_order(excused).ok


def reserved(*entries: tuple[JobMeta, int]) -> list[tuple[str, int]]:
    return [(f"{at_ms}:{meta.id}", at_ms) for meta, at_ms in entries]


def test_rate_limit_needs_spaced_reservations_and_one_per_execution() -> None:
    a, b = job(1, kind="limited"), job(2, kind="limited")
    spaced = FinalState(reservations={LIMITED_RATE_KEY: reserved((a, 1000), (b, 1100))})
    runs = [ran(a, 1001), ran(b, 1102)]
    assert check_rate_limit(history([a, b], runs, final=spaced)).ok
    close = FinalState(reservations={LIMITED_RATE_KEY: reserved((a, 1000), (b, 1050))})
    assert not check_rate_limit(history([a, b], [ran(a, 1001), ran(b, 1051)], final=close)).ok
    # A second execution of a with no reservation of its own.
    unreserved = [*runs, ran(a, 1200, attempt=2, proc="b")]
    assert not check_rate_limit(history([a, b], unreserved, final=spaced)).ok


def test_every_execution_must_pass_its_gate() -> None:
    a = job(1)
    gated = FinalState(reservations={METERED_RATE_KEY: reserved((a, 10))})
    assert check_rate_limit(history([a], [ran(a, 10)], final=gated)).ok
    wrong_key = FinalState(reservations={LIMITED_RATE_KEY: reserved((a, 10))})
    assert not check_rate_limit(history([a], [ran(a, 10)], final=wrong_key)).ok


def test_dead_letter_holds_exactly_the_always_failing_jobs() -> None:
    doomed, fine = job(1, kind="doomed"), job(2)
    runs = [ran(doomed, 10 * n, attempt=n, ok=False) for n in range(1, 5)] + [ran(fine, 5)]
    right = FinalState(dead={doomed.id: DeadEntry(doomed.id, 4, "DoomedJobError", "")})
    assert check_dead_letter(history([doomed, fine], runs, final=right)).ok
    wrong = FinalState(
        dead={
            doomed.id: DeadEntry(doomed.id, 3, "DoomedJobError", ""),
            fine.id: DeadEntry(fine.id, 4, "DoomedJobError", ""),
        }
    )
    violations = check_dead_letter(history([doomed, fine], runs, final=wrong)).violations
    assert f"dead job {doomed.id} has 3 attempts" in violations
    assert any(v.startswith(f"job {fine.id} dead with DoomedJobError") for v in violations)


def test_lease_recovery_may_bury_a_job_only_if_faults_used_up_its_attempts() -> None:
    flaky = job(1, kind="flaky", fail_first=2)
    runs = [ran(flaky, 10, ok=False), ran(flaky, 20, attempt=2, ok=False)]
    final = FinalState(dead={flaky.id: DeadEntry(flaky.id, 4, "LeaseExpired", "")})
    # Two failures and one fault explain three attempts, not four.
    one_fault = history([flaky], runs, final=final, faults=[fault_touching(flaky)])
    assert not check_dead_letter(one_fault).ok
    two_faults = [fault_touching(flaky), fault_touching(flaky)]
    assert check_dead_letter(history([flaky], runs, final=final, faults=two_faults)).ok


def test_a_job_that_ran_may_end_dead_only_if_faults_used_up_its_attempts() -> None:
    a = job(1)
    final = FinalState(
        dead={a.id: DeadEntry(a.id, 4, "LeaseExpired", "")},
        records={a.id: JobFinal("dead", 4, "LeaseExpired")},
        counters={"processed": 0, "dead": 1},
    )
    once = check_final_places(history([a], [ran(a, 10)], final=final, faults=[fault_touching(a)]))
    assert once.violations == [f"job {a.id} (ok): done and dead"]
    four = [fault_touching(a) for _ in range(4)]
    assert check_final_places(history([a], [ran(a, 10)], final=final, faults=four)).ok


# -- job states --------------------------------------------------------------------------------


def test_a_state_must_agree_with_the_place_of_its_job() -> None:
    a, b, c, d = job(1), job(2), job(3), job(4)
    final = FinalState(
        places={"retry": [a.id], "p2": [b.id]},
        records={
            a.id: JobFinal("queued"),
            b.id: JobFinal("done"),
            c.id: JobFinal("running"),
            d.id: JobFinal("done"),
        },
        counters={"processed": 1},
    )
    runs = [ran(d, 10)]
    violations = check_final_places(history([a, b, c, d], runs, final=final)).violations
    assert violations == [
        f"job {a.id} (ok): state queued in retry (a job there is retry)",
        f"job {b.id} (ok): state done in p2 (a job there is queued)",
        f"job {c.id} (ok): orphaned (state running, in no queue)",
    ]


def test_a_done_job_keeps_its_record_unless_records_are_not_kept() -> None:
    a = job(1)
    final = FinalState(counters={"processed": 1})
    kept = check_final_places(history([a], [ran(a, 10)], final=final))
    assert kept.violations[0] == f"job {a.id} (ok): lost (no record)"
    assert check_final_places(history([a], [ran(a, 10)], final=final, keep_finished_s=0)).ok
    # A record that says done, with no successful execution on record, is no done job.
    unran = FinalState(records={a.id: JobFinal("done", 1)}, counters={"processed": 1})
    assert not check_final_places(history([a], [], final=unran)).ok


# -- cancels ------------------------------------------------------------------------------------


def asked(meta: JobMeta, outcome: str, before: str, sent_ms: int = 100) -> CancelRequest:
    return CancelRequest(meta.id, "queued", 1.0, sent_ms, sent_ms + 2, outcome, before)


def canceled_final(*metas: JobMeta, error_type: str | None = None) -> FinalState:
    records = {m.id: JobFinal("canceled", error_type=error_type) for m in metas}
    return FinalState(
        records=records,
        recent={"canceled": [m.id for m in metas]},
        counters={"canceled": len(metas)},
    )


def test_a_job_canceled_while_waiting_ends_canceled_and_never_starts_again() -> None:
    a = job(1)
    request = asked(a, "canceled", "queued")
    clean = history([a], [], final=canceled_final(a), cancels=[request])
    for check in (check_final_places, check_cancels, check_executions, check_dead_letter):
        assert check(clean).ok, check(clean).violations
    late = history([a], [ran(a, 150, ok=None)], final=canceled_final(a), cancels=[request])
    assert check_cancels(late).violations == [
        f"job {a.id}: 1 execution(s) began after its cancel (canceled, was queued), 0 allowed; "
        "first on pid 1"
    ]
    # A worker a fault stalled while it held the job may start it: excused.
    stalled = history(
        [a], [ran(a, 150, ok=None)], final=canceled_final(a), cancels=[request],
        faults=[fault_touching(a)],
    )  # fmt: skip
    assert check_cancels(stalled).ok
    # Canceled while waiting, yet done: the cancel did not hold.
    done = history([a], [ran(a, 50)], cancels=[request])
    assert check_cancels(done).violations == [f"job {a.id}: canceled while queued, ends done"]


def test_a_running_job_asked_to_cancel_ends_canceled_or_done_never_dead() -> None:
    a, b, c = job(1), job(2, kind="flaky", fail_first=1), job(3)
    cut = [ran(a, 90, ok=None), ran(b, 90, ok=False)]
    final = canceled_final(a, b, error_type="Canceled")
    final.records[c.id] = JobFinal("done", 1)
    final.recent["done"] = [c.id]
    final.counters["processed"] = 1
    requests = [asked(a, "requested", "running"), asked(b, "requested", "running")]
    requests.append(asked(c, "requested", "running"))
    result = check_cancels(history([a, b, c], [*cut, ran(c, 95)], final=final, cancels=requests))
    assert result.ok, result.violations
    assert "ended: canceled while running (by its worker) 2; done anyway" in result.lines[1]
    assert check_executions(history([a, b, c], [*cut, ran(c, 95)], final=final)).ok
    dead = FinalState(records={a.id: JobFinal("dead", 4)}, dead={a.id: DeadEntry(a.id, 4, "", "")})
    violations = check_cancels(history([a], cut[:1], final=dead, cancels=requests[:1])).violations
    assert violations == [f"job {a.id}: asked to cancel while running, ends dead"]


def test_canceled_means_asked_for_and_never_acknowledged_done() -> None:
    a, b = job(1), job(2)
    # Nobody asked to cancel b.
    unasked = history(
        [a, b], [], final=canceled_final(a, b), cancels=[asked(a, "canceled", "queued")]
    )
    assert check_cancels(unasked).violations == [
        f"job {b.id} ends canceled, but no cancel was asked for it"
    ]
    # Ran to success, no fault touched it, yet canceled: its ack cannot have been lost.
    request = asked(a, "requested", "running", sent_ms=5)
    succeeded = history([a], [ran(a, 10)], final=canceled_final(a), cancels=[request])
    assert any("an execution that succeeded" in v for v in check_cancels(succeeded).violations)
    touched = history(
        [a], [ran(a, 10)], final=canceled_final(a), cancels=[request], faults=[fault_touching(a)]
    )
    assert check_cancels(touched).ok, check_cancels(touched).violations
    # Redis finished it both ways.
    both = canceled_final(a)
    both.recent["done"] = [a.id]
    violations = check_cancels(history([a], [], final=both, cancels=[request])).violations
    assert f"job {a.id} was finished both done and canceled" in violations
    # The counters must agree with the final states.
    miscounted = canceled_final(a)
    miscounted.counters["canceled"] = 2
    result = check_final_places(history([a], [], final=miscounted, cancels=[request]))
    assert result.violations == ["'canceled' counter 2 != 1 canceled jobs"]


# -- jobs whose hooks raise --------------------------------------------------------------------


def gate_raised(meta: JobMeta, at_ms: int, attempt: int) -> HookRaise:
    return HookRaise(meta.id, "a", 1, attempt, "get_rate_limit", at_ms)


def test_a_raising_gate_hook_is_a_failed_attempt_of_its_own() -> None:
    hooked = job(1, kind="hook-limit", fail_first=2)
    raises = [gate_raised(hooked, 10, 1), gate_raised(hooked, 20, 2)]
    clean = history([hooked], [ran(hooked, 30, attempt=3)], hooks=raises)
    assert check_executions(clean).ok, check_executions(clean).violations
    assert check_tries(clean).ok, check_tries(clean).violations
    # Raised, but never given its third attempt: the story is wrong.
    short = history([hooked], [ran(hooked, 30, attempt=1)], hooks=raises)
    assert not check_executions(short).ok


def test_a_job_tried_more_often_than_its_attempts_allow_is_caught() -> None:
    looping = job(1, kind="hook-limit", fail_first=ALWAYS)
    raises = [gate_raised(looping, 10 * n, 1) for n in range(1, 40)]
    result = check_tries(history([looping], [], hooks=raises))
    assert result.violations[0].startswith(f"job {looping.id} (hook-limit) was tried 39 times")
    # Five tries are one too many, unless a fault touched it (recovered once more).
    five = [gate_raised(looping, 10 * n, n) for n in range(1, 6)]
    assert not check_tries(history([looping], [], hooks=five)).ok
    touched = history([looping], [], hooks=five, faults=[fault_touching(looping)])
    assert check_tries(touched).ok


def test_a_job_whose_hook_always_raises_belongs_in_the_dead_letter_queue() -> None:
    hooked = job(1, kind="hook-retry", fail_first=ALWAYS)
    runs = [ran(hooked, 10 * n, attempt=n, ok=False) for n in range(1, 5)]
    dead = FinalState(dead={hooked.id: DeadEntry(hooked.id, 4, "JobHookFailed", "")})
    assert check_dead_letter(history([hooked], runs, final=dead)).ok
    missing = check_dead_letter(history([hooked], runs, final=FinalState()))
    assert missing.violations == [
        f"always-failing job {hooked.id} (hook-retry) is not in the dead-letter queue"
    ]


# -- runs at the same time ---------------------------------------------------------------------


def run_on(meta: JobMeta, pid: int, start_ms: int, end_ms: int | None, attempt: int) -> Execution:
    return Execution(meta.id, f"p{pid}", pid, start_ms, attempt, start_ms, end_ms, True)


def test_two_runs_at_once_on_live_workers_are_caught_unless_a_fault_stalled_one() -> None:
    a = job(1)
    both = [run_on(a, 1, 0, 3000, 1), run_on(a, 2, 1000, 1200, 2)]
    outage = FaultEvent("new-worker-in-outage", 0.0, 5.0, inflight=frozenset({a.id}))
    result = check_overlaps(history([a], both, faults=[outage]))
    assert len(result.violations) == 1
    assert (
        "ran on pid 1 (attempt 1) and pid 2 (attempt 2) at once for 200 ms"
        in (result.violations[0])
    )
    paused = FaultEvent("worker-pause", 0.0, 4.0, pid=1, held=frozenset({a.id}))
    assert check_overlaps(history([a], both, faults=[paused])).ok
    # One after the other is no overlap; a run whose process died never ends.
    apart = [run_on(a, 1, 0, 900, 1), run_on(a, 2, 1000, 1200, 2)]
    assert check_overlaps(history([a], apart)).ok
    killed = [run_on(a, 1, 0, None, 1), run_on(a, 2, 5000, 5100, 2)]
    assert not check_overlaps(history([a], killed)).ok


# -- blocked event loops -----------------------------------------------------------------------


def test_a_blocked_loop_must_lose_its_job_and_the_jobs_behind_it() -> None:
    blocker, waiting = job(1, kind="blocker"), job(2)
    blocked = run_on(blocker, 1, 0, 8000, 1)
    blocked.block_ms = 8000
    event = FaultEvent(
        "blocked-loop", 0.0, 8.0, pid=1, held=frozenset({blocker.id, waiting.id}),
        run=(blocked.proc, blocked.number), behind=frozenset({waiting.id}),
    )  # fmt: skip
    freed = [blocked, run_on(blocker, 2, 6000, 6010, 2), run_on(waiting, 3, 5500, 5600, 1)]
    assert check_blocked_loops(history([blocker, waiting], freed, faults=[event])).ok
    kept = [blocked, run_on(waiting, 1, 8001, 8100, 1)]
    violations = check_blocked_loops(history([blocker, waiting], kept, faults=[event])).violations
    assert len(violations) == 2
    assert violations[0].startswith(f"job {blocker.id} blocked pid 1's event loop for 8.0s")
    assert violations[1].startswith("1 of the 1 job(s) pid 1 had claimed but not begun")


def test_without_kept_records_executions_and_cancels_tell_the_ends() -> None:
    a, b, c = job(1), job(2), job(3)
    requests = [asked(a, "requested", "running", sent_ms=5), asked(b, "canceled", "queued")]
    final = FinalState(counters={"processed": 2, "canceled": 1})
    gone = history(
        [a, b, c], [ran(a, 10), ran(c, 10)], final=final, cancels=requests, keep_finished_s=0
    )
    result = check_final_places(gone)
    assert result.ok, result.violations
    assert "done 1, dead 0, canceled 1, done or canceled (no record kept) 1" in result.lines[0]
    assert check_cancels(gone).ok, check_cancels(gone).violations
