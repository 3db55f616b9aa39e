"""An idle fleet costs Redis next to nothing, and its maintenance costs O(1), not O(workers).

Counted, not timed: INFO ``total_commands_processed`` (which counts the commands Lua scripts
run) and ``commandstats`` on a private redis-server, over windows long enough to hold whole
cycles of an idle worker (its blocking wait of 12 s, its look at due times every 2 s, its
heartbeat every 20 s, its turn renewed or tried every 6 s).
"""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from qworker.maintenance import IDLE_LOOK_S
from qworker.service import QueueService
from qworker.worker import Worker
from tests.redis.conftest import JOB_MODULES, make_test_settings
from tests.redis_server import RedisServer

# Issue 18's budget: an idle worker, counting the commands inside scripts.
MAX_COMMANDS_PER_WORKER_S = 5.0


async def command_calls(client: aioredis.Redis) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(values["calls"]) for name, values in stats.items()}


async def idle_fleet(url: str, workers: int, window_s: float) -> tuple[float, dict[str, int], int]:
    """(commands a second per worker, the calls by command, the maintenance rounds run) while
    ``workers`` workers idle for ``window_s`` on an empty queue."""
    settings = make_test_settings(url, f"idle{workers}")
    # Each worker with its own service (its own connections), as in a fleet of processes.
    services = [QueueService(settings=settings) for _ in range(workers)]
    async with QueueService(settings=settings) as service:
        fleet = [
            Worker(own, settings=settings, job_modules=JOB_MODULES, recovery_grace_s=0)
            for own in services
        ]
        tasks = [asyncio.create_task(worker.run()) for worker in fleet]
        try:
            deadline = time.monotonic() + 60
            while await service.redis.zcard(service.keys.workers) < workers:
                assert time.monotonic() < deadline, "the workers did not start"
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # past start-up: scripts loaded, turn taken, first rounds
            runs_before = sum(worker.maintenance_runs for worker in fleet)
            await service.redis.config_resetstat()
            before = int((await service.redis.info("stats"))["total_commands_processed"])
            started = time.monotonic()
            await asyncio.sleep(window_s)
            after = int((await service.redis.info("stats"))["total_commands_processed"])
            elapsed = time.monotonic() - started
            calls = await command_calls(service.redis)
            runs = sum(worker.maintenance_runs for worker in fleet) - runs_before
            holders = sum(worker.turn.held for worker in fleet)
        finally:
            for worker in fleet:
                worker.request_stop()
            await asyncio.wait_for(asyncio.gather(*tasks), 60)
            for own in services:
                await own.close()
    assert holders == 1, f"{holders} workers hold the maintenance turn"
    own = 2  # the INFO before and after, sent by this test
    return (after - before - own) / elapsed / workers, calls, runs


@pytest.mark.parametrize(("workers", "window_s"), [(1, 24.0), (10, 12.0), (50, 12.0)])
async def test_idle_workers_cost_at_most_five_commands_a_second_each(
    fresh_redis_server: RedisServer, workers: int, window_s: float
) -> None:
    per_worker, calls, runs = await idle_fleet(fresh_redis_server.url, workers, window_s)
    assert per_worker <= MAX_COMMANDS_PER_WORKER_S, (per_worker, calls)
    # One worker at a time maintains: looks every IDLE_LOOK_S, recovery every lease / 4
    # (15 s), whatever the fleet's size.
    looks = calls.get("exists", 0)  # one per look (no enqueue, no lane: nothing else sends it)
    assert looks <= window_s / IDLE_LOOK_S + 1, (looks, calls)
    assert runs <= window_s / 15 + 1, runs
    assert calls.get("blpop", 0) <= 2 * workers * (window_s / 12 + 1), calls
