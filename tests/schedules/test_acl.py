"""Schedules for the README's least-privilege ACL user, which has no Pub/Sub channels: changes
are still stored (the announcement is skipped) and workers look for them once a second."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from qworker.clock import ManualClock
from qworker.schedule_store import ScheduleStore, build_schedule
from qworker.scheduler import Scheduler
from qworker.service import QueueService
from tests.distributed.acl import denials, restricted_user_url
from tests.distributed.conftest import settings_for
from tests.distributed.servers import admin
from tests.redis_server import RedisServer


@pytest.fixture
def restricted_url(redis_server: RedisServer, namespace: str) -> Iterator[str]:
    with restricted_user_url(redis_server, namespace, "sched") as url:
        yield url


async def test_the_acl_user_without_channels_adds_and_fires_schedules(
    redis_server: RedisServer, restricted_url: str, namespace: str
) -> None:
    settings = settings_for(redis_url=restricted_url, namespace=namespace)
    clock = ManualClock()
    async with QueueService(settings=settings, clock=clock) as service:
        store = ScheduleStore(service)
        schedule = build_schedule(settings, "tick", {"job_type": "origin"}, every="1m")
        assert (await store.upsert(schedule)).outcome == "added"
        scheduler = Scheduler(service, clock, recheck_s=3600)
        # The refusal comes as the subscription's reply: the sleep ends, and never asks again.
        await asyncio.wait_for(scheduler._sleep_until(None), timeout=30)
        assert not await scheduler._subscribe()
        clock.advance(60)
        await scheduler.tick()
        assert scheduler.fired == 1
        await store.set_paused("tick", paused=True)
        await store.remove("tick")
    with admin(redis_server.port) as client:
        refused = denials(client)
        subscribes = [
            int(entry["count"])
            for entry in client.execute_command("ACL", "LOG")
            if entry["object"] == "subscribe"
        ]
    # Only Pub/Sub was refused: the scripts' announcements (skipped) and one subscription.
    assert set(refused) == {"sched: command subscribe", "sched: command publish"}, refused
    assert subscribes == [1]  # asked once, not once a second
