"""What a scheduler fires when it finds a schedule due (schedules.plan_fires), pure: on time,
late, and after gaps under each missed policy; no-overlap; the end time."""

from __future__ import annotations

from typing import Any

from qworker.schedules import MISFIRE_GRACE_MS, SCAN_LIMIT, Fire, Schedule, plan_fires
from tests.schedules.conftest import ms

T0 = ms("2026-01-05T08:00:00")
MINUTE = 60_000


def every_minute(**changes: Any) -> Schedule:
    fields: dict[str, Any] = {
        "name": "s",
        "every_ms": MINUTE,
        "anchor_ms": T0 - MINUTE,
        "job_type": "origin",
        "payload": "{}",
        "next_due_ms": T0,
    }
    return Schedule(**{**fields, **changes})


def test_nothing_before_the_due_time() -> None:
    plan = plan_fires(every_minute(), T0 - 1)
    assert plan.fires == [] and plan.next_due_ms == T0


def test_on_time_fires_that_due_time_and_moves_one_step() -> None:
    plan = plan_fires(every_minute(), T0 + 250)
    assert plan.fires == [Fire(T0, T0, 1)]
    assert (plan.missed, plan.next_due_ms) == (0, T0 + MINUTE)


def test_late_within_the_grace_is_still_on_time_for_every_policy() -> None:
    for policy in ("once", "skip", "all"):
        plan = plan_fires(every_minute(missed=policy), T0 + 59_000)
        assert plan.fires == [Fire(T0, T0, 1)], policy


def test_missed_once_fires_one_job_standing_for_every_missed_due_time() -> None:
    plan = plan_fires(every_minute(missed="once"), T0 + 5 * MINUTE + 10)
    assert plan.fires == [Fire(T0 + 5 * MINUTE, T0, 6)]
    assert (plan.missed, plan.next_due_ms) == (0, T0 + 6 * MINUTE)


def test_missed_skip_fires_only_the_on_time_one() -> None:
    plan = plan_fires(every_minute(missed="skip"), T0 + 5 * MINUTE + 10)
    assert plan.fires == [Fire(T0 + 5 * MINUTE, T0 + 5 * MINUTE, 1)]
    assert plan.missed == 5


def test_missed_skip_after_a_long_gap_fires_nothing_until_the_next() -> None:
    daily = every_minute(missed="skip", every_ms=86_400_000, anchor_ms=T0 - 86_400_000)
    plan = plan_fires(daily, T0 + MISFIRE_GRACE_MS + 1)
    assert plan.fires == [] and plan.missed == 1
    assert plan.next_due_ms == T0 + 86_400_000


def test_missed_all_fires_each_up_to_max_catchup_the_latest_ones() -> None:
    plan = plan_fires(every_minute(missed="all", max_catchup=3), T0 + 5 * MINUTE + 10)
    assert [f.scheduled_for_ms for f in plan.fires] == [
        T0 + 2 * MINUTE,
        T0 + 3 * MINUTE,
        T0 + 4 * MINUTE,
        T0 + 5 * MINUTE,  # on time: not a catch-up
    ]
    assert plan.missed == 2


def test_missed_all_with_no_catchup_is_skip() -> None:
    plan = plan_fires(every_minute(missed="all", max_catchup=0), T0 + 2 * MINUTE + 10)
    assert [f.scheduled_for_ms for f in plan.fires] == [T0 + 2 * MINUTE]
    assert plan.missed == 2


def test_no_overlap_keeps_the_last_fire_of_a_catch_up() -> None:
    plan = plan_fires(every_minute(missed="all", no_overlap=True), T0 + 3 * MINUTE + 10)
    assert plan.fires == [Fire(T0 + 3 * MINUTE, T0 + 3 * MINUTE, 1)]
    assert plan.overlapped == 3


def test_the_end_time_stops_the_schedule() -> None:
    schedule = every_minute(end_ms=T0 + MINUTE)
    plan = plan_fires(schedule, T0 + 10)
    assert plan.fires == [Fire(T0, T0, 1)] and plan.next_due_ms == T0 + MINUTE
    last = plan_fires(schedule.model_copy(update={"next_due_ms": T0 + MINUTE}), T0 + MINUTE)
    assert last.fires == [Fire(T0 + MINUTE, T0 + MINUTE, 1)] and last.next_due_ms is None


def test_a_gap_of_a_week_every_second_is_bounded_and_lands_on_the_grid() -> None:
    schedule = every_minute(every_ms=1000, anchor_ms=T0, missed="once")
    now = T0 + 7 * 86_400_000 + 500
    plan = plan_fires(schedule, now)
    assert plan.fires == [Fire(T0 + 7 * 86_400_000, T0, 7 * 86_400 + 1)]
    assert plan.next_due_ms == T0 + 7 * 86_400_000 + 1000


def test_a_long_gap_of_a_cron_schedule_fires_for_the_latest_due_time() -> None:
    minutely = every_minute(every_ms=None, cron="* * * * *", missed="all", max_catchup=2)
    now = T0 + 30 * 86_400_000 + 10
    plan = plan_fires(minutely, now)
    assert [f.scheduled_for_ms for f in plan.fires] == [
        now - 10 - 2 * MINUTE,
        now - 10 - MINUTE,
        now - 10,
    ]
    assert plan.missed == SCAN_LIMIT - 3  # counted up to the limit, not a month of minutes
    assert plan.next_due_ms == now - 10 + MINUTE
