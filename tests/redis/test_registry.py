"""The workers' registry is pruned by the workers themselves: a dead worker's entry does not
stay for ever when nobody runs ``qworker stats``."""

from __future__ import annotations

import asyncio

from qworker.clock import ManualClock
from qworker.service import QueueService
from tests.redis.conftest import MakeWorker

HOUR_MS = 3_600_000


async def test_a_workers_heartbeat_prunes_dead_workers_from_the_registry(
    service: QueueService, make_worker: MakeWorker, clock: ManualClock
) -> None:
    registry = service.keys.workers
    now_ms = clock.now_ms()
    await service.redis.zadd(registry, {"dead-long-ago": now_ms - HOUR_MS, "alive": now_ms})

    worker = make_worker(burst=False)
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(10):  # its first beat registers it, in one step with pruning
            while await service.redis.zscore(registry, worker.worker_id) is None:
                await asyncio.sleep(0.01)
        members = set(await service.redis.zrange(registry, 0, -1))
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 10)

    assert worker.worker_id in members
    assert "dead-long-ago" not in members
    assert "alive" in members  # a recent entry is kept, whether or not its record is there
