"""The README's least-privilege ACL user can run an idle worker that maintains in turn: the
turn script, the look at due times and the stop's wakeup use only the commands it allows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from qworker.maintenance import IDLE_LOOK_S
from qworker.service import QueueService
from qworker.worker import Worker
from tests.distributed.acl import denials, restricted_user_url
from tests.distributed.conftest import settings_for
from tests.distributed.servers import admin
from tests.redis.conftest import JOB_MODULES
from tests.redis_server import RedisServer


@pytest.fixture
def restricted_url(redis_server: RedisServer, namespace: str) -> Iterator[str]:
    with restricted_user_url(redis_server, namespace, "turn") as url:
        yield url


async def test_the_acl_user_holds_the_turn_looks_and_stops(
    redis_server: RedisServer, restricted_url: str, namespace: str
) -> None:
    settings = settings_for(redis_url=restricted_url, namespace=namespace)
    async with QueueService(settings=settings) as service:
        worker = Worker(service, settings=settings, job_modules=JOB_MODULES, schedules=False)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(IDLE_LOOK_S + 1.0)  # the turn taken, then a look while idle
        assert worker.turn.held
        assert worker.maintainer.next_look > 0  # it looked
        worker.request_stop()
        await asyncio.wait_for(task, 5)  # the stop's wakeup ended the 12 s wait
        assert await service.redis.get(service.keys.maintenance_turn) is None
    with admin(redis_server.port) as client:
        assert denials(client) == []
