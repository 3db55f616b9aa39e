"""Jobs of a type no live worker serves wait without spinning: an idle worker serving other
types, with hundreds of such jobs queued, sends Redis as many commands a second as an idle
worker serving every type on an empty queue. Measured with INFO total_commands_processed on a
private redis-server, over a few idle seconds; the bound tells a blocked worker from one that
polls or re-reads the waiting jobs, not fast from slow."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from qworker.jobs.tweet import TweetJobParams
from qworker.service import QueueService
from qworker.worker import Worker
from tests.fleet.conftest import JOB_MODULES
from tests.fleet.jobtypes import NAME_CLIENT, ReportParams
from tests.redis.conftest import make_test_settings
from tests.redis_server import RedisServer

IDLE_WINDOW_S = 3.0
WAITING_TWEETS = 300
# The INFO command the measurement itself sends, before and after.
OWN_COMMANDS = 1


async def commands_processed(client: aioredis.Redis) -> int:
    return int((await client.info("stats"))["total_commands_processed"])


async def idle_rate(url: str, namespace: str, job_types: list[str] | None, tweets: int) -> float:
    """Commands a second Redis runs while one worker idles, ``tweets`` tweets queued."""
    settings = make_test_settings(url, namespace)
    async with QueueService(settings=settings) as service:
        await service.add_jobs([TweetJobParams(content=f"waiting {i}") for i in range(tweets)])
        await service.add_job(ReportParams(n=1))
        worker = Worker(service, settings=settings, job_types=job_types, job_modules=JOB_MODULES)
        worker.clients.provide(NAME_CLIENT, "idle")
        task = asyncio.create_task(worker.run())
        try:
            deadline = time.monotonic() + 30
            while (await service.get_queue_stats()).total_processed < 1:
                assert not task.done() and time.monotonic() < deadline, "the report did not run"
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # past start-up and the first maintenance
            before = await commands_processed(service.redis)
            started = time.monotonic()
            await asyncio.sleep(IDLE_WINDOW_S)
            after = await commands_processed(service.redis)
            elapsed = time.monotonic() - started
            waiting = (await service.get_queue_stats()).total_jobs
        finally:
            worker.request_stop()
            await asyncio.wait_for(task, 30)
    assert waiting == tweets  # the tweets still wait (none taken, none dead)
    return (after - before - OWN_COMMANDS) / elapsed


async def test_waiting_jobs_of_an_unserved_type_cost_an_idle_worker_nothing(
    fresh_redis_server: RedisServer,
) -> None:
    url = fresh_redis_server.url
    default = await idle_rate(url, "idle-default", None, 0)
    restricted = await idle_rate(url, "idle-restricted", ["report"], WAITING_TWEETS)
    # Both block on their wakeup lists and run the once-a-second maintenance: a few dozen
    # commands a second. Re-reading 300 waiting jobs, or polling, would be hundreds or more.
    assert restricted <= default * 1.2 + 3, (default, restricted)
    assert default < 100, default
