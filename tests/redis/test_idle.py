"""An idle worker blocks on Redis instead of polling it, and still starts a new job at once.

This test is about real time, so it uses the system clock and a private redis-server (whose
command statistics no other test disturbs). Bounds are generous: they tell blocking from
busy polling, not fast from slow.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import redis.asyncio as aioredis

from qworker.service import QueueService
from qworker.worker import Worker
from tests.jobtypes import probe, read_events
from tests.redis.conftest import JOB_MODULES, make_test_settings
from tests.redis_server import RedisServer

IDLE_WINDOW_S = 2.0
# Measured: about 4 commands a second (tests/speed measures it exactly, over a longer window).
# A worker polling in a loop issues thousands.
MAX_COMMANDS_PER_S = 40
MAX_ROUND_TRIPS_PER_S = 10
MAX_START_LATENCY_S = 0.5
# Commands the test itself sends to measure.
OWN_COMMANDS = {"config|resetstat", "info", "config"}


async def command_calls(client: aioredis.Redis) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(values["calls"])
        for name, values in stats.items()
        if name.removeprefix("cmdstat_") not in OWN_COMMANDS
    }


async def wait_until_registered(service: QueueService, task: asyncio.Task[None]) -> None:
    """The heartbeat lists the worker once its scripts are loaded and it is about to loop."""
    deadline = time.perf_counter() + 10
    while not await service.redis.zcard(service.keys.workers):
        assert not task.done(), "the worker stopped"
        assert time.perf_counter() < deadline, "the worker did not start"
        await asyncio.sleep(0.01)


async def wait_for_start(path: Path, timeout_s: float = 5.0) -> float:
    deadline = time.perf_counter() + timeout_s
    while not read_events(path, "start"):
        assert time.perf_counter() < deadline, "the job did not start"
        await asyncio.sleep(0.005)
    return time.perf_counter()


async def test_idle_worker_blocks_and_wakes_at_once(
    fresh_redis_server: RedisServer, namespace: str, probe_log: Path
) -> None:
    settings = make_test_settings(fresh_redis_server.url, namespace)
    async with QueueService(settings=settings) as service:
        worker = Worker(service, settings=settings, job_modules=JOB_MODULES)
        task = asyncio.create_task(worker.run())
        try:
            await wait_until_registered(service, task)
            await asyncio.sleep(0.2)  # past start-up (script loading, first maintenance)
            await service.redis.config_resetstat()
            await asyncio.sleep(IDLE_WINDOW_S)
            calls = await command_calls(service.redis)

            total = sum(calls.values())
            # What the worker itself sends; the rest run inside its scripts.
            round_trips = sum(n for name, n in calls.items() if name in {"evalsha", "blpop"})
            assert total / IDLE_WINDOW_S <= MAX_COMMANDS_PER_S, calls
            assert round_trips / IDLE_WINDOW_S <= MAX_ROUND_TRIPS_PER_S, calls
            # It is blocked right now (a BLPOP is counted when it returns: not yet, it waits).
            blocked = [c for c in await service.redis.client_list() if c["cmd"] == "blpop"]
            assert blocked and "b" in blocked[0]["flags"], calls

            enqueued = time.perf_counter()
            await service.add_job(probe(probe_log))
            started = await wait_for_start(probe_log)
            assert started - enqueued < MAX_START_LATENCY_S
        finally:
            worker.request_stop()
            await asyncio.wait_for(task, 10)
