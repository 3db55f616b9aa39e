"""Recurring schedules on a 3-master Redis Cluster: every schedule script's keys share the
namespace's slot, two schedulers fire a due time once, and changes are announced (Pub/Sub)."""

from __future__ import annotations

import asyncio

import tests.schedules.jobtypes  # noqa: F401  (registers the origin job type)
from qworker.clock import ManualClock
from qworker.schedule_store import ScheduleStore, build_schedule
from qworker.scheduler import Scheduler
from qworker.service import QueueService
from tests.distributed.conftest import settings_for
from tests.distributed.servers import Cluster


async def test_schedules_fire_once_on_a_cluster(cluster: Cluster, tagged_namespace: str) -> None:
    settings = settings_for(redis_url=cluster.url, namespace=tagged_namespace, redis_cluster=True)
    clock = ManualClock()
    async with (
        QueueService(settings=settings, clock=clock) as one,
        QueueService(settings=settings, clock=clock) as two,
    ):
        store = ScheduleStore(one)
        schedule = build_schedule(settings, "tick", {"job_type": "origin"}, every="1m")
        listening = Scheduler(two, clock, recheck_s=3600)
        assert await listening._subscribe()
        sleeping = asyncio.ensure_future(listening._sleep_until(None))
        assert (await store.upsert(schedule)).outcome == "added"
        await asyncio.wait_for(sleeping, timeout=30)  # the announcement woke the sleeper
        schedulers = [Scheduler(one, clock), listening]
        for _ in range(3):
            clock.advance(60)
            await asyncio.gather(*(s.tick() for s in schedulers))
        assert sum(s.fired for s in schedulers) == 3
        stored = await store.get("tick")
        assert stored.fired == 3 and stored.next_due_ms == clock.now_ms() + 60_000
        await listening._close_pubsub()
        await store.remove("tick")
