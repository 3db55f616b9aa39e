"""The scheduler step's idle cost: one command per look whatever the number of schedules, and a
sleep that a schedule change ends at once (Pub/Sub), not a poll."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.crc import key_slot

from qworker.config import Settings
from qworker.keys import QueueKeys
from qworker.schedule_store import ScheduleStore, build_schedule
from qworker.scheduler import Scheduler
from qworker.service import QueueService
from qworker.worker import Worker


async def commands_called(client: aioredis.Redis) -> int:
    """Commands Redis has run so far, not counting the INFO that asks."""
    stats = await client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


async def test_a_look_costs_one_command_however_many_schedules(
    store: ScheduleStore, service: QueueService, make_scheduler: Callable[[], Scheduler]
) -> None:
    scheduler = make_scheduler()
    await scheduler.tick()  # connects: the handshake is not a look
    costs = []
    for count in (1, 200):
        for i in range(len(await store.names()), count):
            schedule = build_schedule(service.settings, f"s{i}", {"job_type": "origin"}, every="1h")
            await store.upsert(schedule)
        before = await commands_called(service.redis)
        for _ in range(5):
            await scheduler.tick()
        costs.append(await commands_called(service.redis) - before)
    assert costs == [5, 5]


async def test_a_sleeping_scheduler_wakes_when_a_schedule_changes(
    store: ScheduleStore, settings: Settings
) -> None:
    async with QueueService(settings=settings) as own:
        scheduler = Scheduler(own, recheck_s=3600)
        assert await scheduler._subscribe()
        sleeping = asyncio.ensure_future(scheduler._sleep_until(None))
        await asyncio.sleep(0.05)
        assert not sleeping.done()
        schedule = build_schedule(settings, "new", {"job_type": "origin"}, every="1s")
        await store.upsert(schedule)
        await asyncio.wait_for(sleeping, timeout=30)  # a deadline: it woke, it did not time out
        await scheduler._close_pubsub()


def test_no_schedules_and_burst_workers_fire_none(service: QueueService) -> None:
    assert Worker(service, schedules=False).scheduler is None
    assert Worker(service, burst=True).scheduler is None
    assert Worker(service).scheduler is not None


def test_schedule_keys_share_the_namespace_slot() -> None:
    """Every key a schedule script touches is in the namespace's one cluster slot."""
    keys = QueueKeys("{qw}")
    schedule_keys = [keys.schedules, keys.schedule("weekly-digest"), *keys.priorities, keys.fence]
    assert {key_slot(key.encode()) for key in schedule_keys} == {key_slot(b"{qw}")}
    assert keys.schedule("x").startswith("{qw}:jobs_")
