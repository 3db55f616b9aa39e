"""Schedules in a real Redis, on a hand-moved clock: upsert, exactly one fire per due time
however many schedulers race, the missed and overlap policies, pause, resume, remove, trigger,
and the origin a fired job carries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qworker.clock import ManualClock
from qworker.config import Settings
from qworker.schedule_store import (
    ScheduleBusy,
    ScheduleNotFound,
    ScheduleStore,
    build_schedule,
)
from qworker.scheduler import Scheduler
from qworker.service import QueueService
from qworker.worker import Worker
from tests.schedules.conftest import ms

MakeScheduler = Callable[[], Scheduler]


async def add(
    store: ScheduleStore, name: str = "s", job: dict[str, Any] | None = None, **options: Any
) -> None:
    if "cron" not in options and "every" not in options:
        options["every"] = "1m"
    schedule = build_schedule(
        store.service.settings, name, job or {"job_type": "origin"}, **options
    )
    await store.upsert(schedule)


async def fired_jobs(service: QueueService) -> list[dict[str, str]]:
    """Every job record of the namespace that a schedule enqueued, by due time."""
    jobs = []
    async for key in service.redis.scan_iter(match=service.keys.job("*")):
        fields = await service.redis.hgetall(key)  # type: ignore[misc]
        if fields.get("schedule"):
            jobs.append(fields)
    return sorted(jobs, key=lambda job: int(job["scheduled_for_ms"]))


def due_of(jobs: list[dict[str, str]]) -> list[int]:
    return [int(job["scheduled_for_ms"]) for job in jobs]


async def test_add_then_update_keeps_the_due_time_unless_the_calendar_changes(
    store: ScheduleStore, clock: ManualClock
) -> None:
    schedule = build_schedule(store.service.settings, "digest", {"job_type": "origin"}, every="1m")
    first = await store.upsert(schedule)
    assert first.outcome == "added" and first.next_due_ms == clock.now_ms() + 60_000
    clock.advance(30)
    again = await store.upsert(schedule.model_copy(update={"priority": 1}))
    assert again == type(first)("updated", first.next_due_ms)
    assert (await store.get("digest")).priority == 1
    changed = await store.upsert(schedule.model_copy(update={"every_ms": 120_000}))
    assert changed.next_due_ms == clock.now_ms() + 120_000


async def test_every_scheduler_races_and_each_due_time_fires_once(
    store: ScheduleStore, service: QueueService, clock: ManualClock, make_scheduler: MakeScheduler
) -> None:
    await add(store, "a", every="1m")
    await add(store, "b", cron="*/2 * * * *")
    schedulers = [make_scheduler() for _ in range(6)]
    start = clock.now_ms()
    for _ in range(10):
        clock.advance(60)
        await asyncio.gather(*(s.tick() for s in schedulers), *(s.tick() for s in schedulers))
    jobs = await fired_jobs(service)
    a = [j for j in jobs if j["schedule"] == "a"]
    b = [j for j in jobs if j["schedule"] == "b"]
    assert due_of(a) == [start + 60_000 * k for k in range(1, 11)]
    assert due_of(b) == [start + 120_000 * k for k in range(1, 6)]
    assert sum(s.fired for s in schedulers) == 15
    assert all(j["state"] == "queued" and j["job_type"] == "origin" for j in jobs)


async def test_tick_reports_the_next_due_time_and_fires_nothing_early(
    store: ScheduleStore, service: QueueService, clock: ManualClock, make_scheduler: MakeScheduler
) -> None:
    await add(store, every="90s")
    scheduler = make_scheduler()
    assert await scheduler.tick() == clock.now_ms() + 90_000
    clock.advance(89.999)
    await scheduler.tick()
    assert await fired_jobs(service) == []
    clock.advance(0.001)
    assert await scheduler.tick() == clock.now_ms() + 90_000
    assert len(await fired_jobs(service)) == 1


async def test_a_stale_plan_fires_nothing(
    store: ScheduleStore, service: QueueService, clock: ManualClock
) -> None:
    await add(store)
    schedule = await store.get("s")
    clock.advance(60)
    _, first = await store.fire_due(schedule, clock.now_ms(), clock.now_ms())
    _, second = await store.fire_due(schedule, clock.now_ms(), clock.now_ms())
    assert (first.code, first.count, second.code) == (1, 1, 0)
    assert len(await fired_jobs(service)) == 1


async def test_the_script_refuses_a_due_time_its_clock_has_not_reached(
    store: ScheduleStore, service: QueueService, clock: ManualClock
) -> None:
    """A host whose clock runs ahead cannot fire early: the script decides by its own."""
    await add(store)
    schedule = await store.get("s")
    _, reply = await store.fire_due(schedule, clock.now_ms() + 60_000, clock.now_ms() + 59_000)
    assert (reply.code, reply.count) == (2, 1000)
    assert await fired_jobs(service) == []


@pytest.mark.parametrize(
    ("policy", "expected_covers", "missed"),
    [("once", [5], 0), ("skip", [1], 4), ("all", [1, 1, 1, 1], 1)],
)
async def test_missed_fires_after_a_gap_follow_the_policy(
    store: ScheduleStore,
    service: QueueService,
    clock: ManualClock,
    make_scheduler: MakeScheduler,
    policy: str,
    expected_covers: list[int],
    missed: int,
) -> None:
    await add(store, missed=policy, max_catchup=3)
    start = clock.now_ms()
    clock.advance(5 * 60 + 1)  # no worker for five due times; the last is on time
    scheduler = make_scheduler()
    await scheduler.tick()
    await scheduler.tick()
    jobs = await fired_jobs(service)
    assert [int(j.get("schedule_covers", 1)) for j in jobs] == expected_covers
    assert due_of(jobs)[-1] == start + 5 * 60_000
    schedule = await store.get("s")
    assert schedule.missed_count == missed
    assert schedule.next_due_ms == start + 6 * 60_000
    if policy == "once":
        assert int(jobs[0]["schedule_first_ms"]) == start + 60_000


async def test_no_overlap_skips_while_the_previous_job_is_unfinished(
    store: ScheduleStore, service: QueueService, clock: ManualClock, make_scheduler: MakeScheduler
) -> None:
    await add(store, no_overlap=True)
    scheduler = make_scheduler()
    clock.advance(60)
    await scheduler.tick()
    clock.advance(60)
    await scheduler.tick()  # the first job is still queued: skipped
    jobs = await fired_jobs(service)
    assert len(jobs) == 1
    schedule = await store.get("s")
    assert (schedule.overlapped, schedule.next_due_ms) == (1, clock.now_ms() + 60_000)
    job_key = service.keys.job(schedule.last_job_id or "")
    await service.redis.hset(job_key, "state", "done")  # type: ignore[misc]
    clock.advance(60)
    await scheduler.tick()
    assert len(await fired_jobs(service)) == 2


async def test_pause_resume_remove_and_trigger(
    store: ScheduleStore, service: QueueService, clock: ManualClock, make_scheduler: MakeScheduler
) -> None:
    await add(store)
    scheduler = make_scheduler()
    assert await store.set_paused("s", paused=True) is True
    assert await store.set_paused("s", paused=True) is False
    clock.advance(600)
    await scheduler.tick()
    assert await fired_jobs(service) == []  # paused: nothing, and nothing missed either
    job_id = await store.trigger("s")  # by hand, even while paused
    [job] = await fired_jobs(service)
    assert int(job["scheduled_for_ms"]) == clock.now_ms()
    assert (await store.get("s")).last_job_id == job_id
    assert await store.set_paused("s", paused=False) is True
    resumed = await store.get("s")
    assert resumed.next_due_ms == clock.now_ms() + 60_000 and resumed.missed_count == 0
    await store.remove("s")
    with pytest.raises(ScheduleNotFound):
        await store.get("s")
    with pytest.raises(ScheduleNotFound):
        await store.remove("s")
    with pytest.raises(ScheduleNotFound):
        await store.trigger("s")
    assert await store.names() == []


async def test_a_resume_takes_the_calendar_an_upsert_just_gave(
    store: ScheduleStore, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``schedule sync`` between the resume's read and its write: the resume reads again and
    takes its next due time from the new calendar, not the one it first read."""
    await add(store, every="1m")
    await store.set_paused("s", paused=True)
    read = store.get

    async def read_then_sync(name: str) -> Any:
        schedule = await read(name)
        monkeypatch.setattr(store, "get", read)
        await add(store, every="1h")  # the calendar changes after the resume read it
        return schedule

    monkeypatch.setattr(store, "get", read_then_sync)
    assert await store.set_paused("s", paused=False) is True
    resumed = await store.get("s")
    assert not resumed.paused and resumed.every_ms == 3_600_000
    assert resumed.next_due_ms == clock.now_ms() + 3_600_000
    assert await store.service.redis.zscore(store.keys.schedules, "s") == resumed.next_due_ms


async def test_a_resume_that_meets_a_change_every_time_gives_up_saying_so(
    store: ScheduleStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add(store, every="1m")
    await store.set_paused("s", paused=True)
    read, reads = store.get, 0

    async def read_then_sync(name: str) -> Any:
        nonlocal reads
        schedule = await read(name)
        reads += 1
        await add(store, every=f"{reads + 1}m")  # a sync in a loop, changing it every time
        return schedule

    monkeypatch.setattr(store, "get", read_then_sync)
    with pytest.raises(ScheduleBusy, match="changed 10 times while it was being resumed"):
        await store.set_paused("s", paused=False)
    assert reads == 10 and (await read("s")).paused


async def test_start_and_end_bound_the_due_times(
    store: ScheduleStore, service: QueueService, clock: ManualClock, make_scheduler: MakeScheduler
) -> None:
    start = clock.now_ms() + 3_600_000
    await add(store, every="10m", start_ms=start, end_ms=start + 1_800_000)
    assert (await store.get("s")).next_due_ms == start
    scheduler = make_scheduler()
    for _ in range(30):
        clock.advance(600)
        await scheduler.tick()
    assert due_of(await fired_jobs(service)) == [start + 600_000 * k for k in range(4)]
    assert (await store.get("s")).next_due_ms is None
    assert await scheduler.tick() is None


async def test_berlin_daily_0230_across_both_dst_changes(
    store: ScheduleStore, service: QueueService, clock: ManualClock, make_scheduler: MakeScheduler
) -> None:
    clock.set_ms(ms("2026-03-27T12:00:00"))
    await add(store, cron="30 2 * * *", tz="Europe/Berlin")
    scheduler = make_scheduler()
    for _ in range(4 * 24):
        clock.advance(3600)
        await scheduler.tick()
    clock.set_ms(ms("2026-10-23T12:00:00"))
    await store.set_paused("s", paused=True)
    await store.set_paused("s", paused=False)
    for _ in range(4 * 24):
        clock.advance(3600)
        await scheduler.tick()
    jobs = await fired_jobs(service)
    assert [j["scheduled_for_ms"] for j in jobs] == [
        str(ms(t))
        for t in (
            "2026-03-28T01:30:00",  # 02:30 CET
            "2026-03-29T01:00:00",  # no 02:30 that day: 03:00 CEST
            "2026-03-30T00:30:00",  # 02:30 CEST
            "2026-03-31T00:30:00",
            "2026-10-24T00:30:00",
            "2026-10-25T00:30:00",  # the first 02:30 (CEST) only
            "2026-10-26T01:30:00",  # 02:30 CET
            "2026-10-27T01:30:00",
        )
    ]
    # Each found up to an hour late (a missed fire, policy once) still stands for itself only.
    assert all(int(j.get("schedule_covers", 1)) == 1 for j in jobs)


async def test_a_fired_job_knows_its_schedule_and_due_time(
    store: ScheduleStore,
    service: QueueService,
    settings: Settings,
    clock: ManualClock,
    make_scheduler: MakeScheduler,
    tmp_path: Path,
) -> None:
    log_path = tmp_path / "origin.jsonl"
    clock.set_ms(ms("2026-01-05T07:00:00"))
    await add(
        store,
        "digest",
        {"job_type": "origin", "log_path": str(log_path)},
        cron="0 9 * * MON",
        tz="Europe/Berlin",
    )
    clock.set_ms(ms("2026-01-05T08:00:30"))  # Monday 09:00:30 in Berlin
    await make_scheduler().tick()
    worker = Worker(service, settings=settings, burst=True, clock=clock, recovery_grace_s=0)
    await worker.run()
    [line] = [json.loads(text) for text in log_path.read_text().splitlines()]
    assert line["schedule"] == "digest"
    assert line["scheduled_for"] == "2026-01-05T08:00:00+00:00"
    record = await service.get_job(line["job_id"])
    assert record is not None and record.schedule == "digest"
    assert record.scheduled_for_ms == ms("2026-01-05T08:00:00")


async def test_an_interval_stays_on_its_grid_however_late_it_is_fired(
    store: ScheduleStore, service: QueueService, clock: ManualClock, make_scheduler: MakeScheduler
) -> None:
    await add(store, every="90s", missed="all", max_catchup=100)
    anchor = clock.now_ms()
    scheduler = make_scheduler()
    for late_s in (90.7, 13.3, 170.1, 0.4, 299.9, 91.0):  # irregular, often late, looks
        clock.advance(late_s)
        await scheduler.tick()
    due = due_of(await fired_jobs(service))
    assert due == [anchor + 90_000 * k for k in range(1, len(due) + 1)]
    assert len(due) == int((clock.now_ms() - anchor) // 90_000)


async def test_an_unreadable_schedule_does_not_stop_the_others(
    store: ScheduleStore, service: QueueService, clock: ManualClock, make_scheduler: MakeScheduler
) -> None:
    await add(store, "bad")
    await add(store, "good")
    await service.redis.hset(service.keys.schedule("bad"), "priority", "urgent")  # type: ignore[misc]
    clock.advance(60)
    scheduler = make_scheduler()
    assert await scheduler.tick() == clock.now_ms() + 1000  # "bad" is still due: a second
    assert [job["schedule"] for job in await fired_jobs(service)] == ["good"]
