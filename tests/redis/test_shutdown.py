"""Stopping a worker hands back what it holds, at once and in order, and never strands a job."""

from __future__ import annotations

import asyncio
from pathlib import Path

from qworker.clock import ManualClock
from qworker.service import QueueService
from tests.jobtypes import probe, read_events
from tests.redis.conftest import MakeWorker


async def wait_for_starts(path: Path, count: int) -> None:
    async with asyncio.timeout(10):
        while len(read_events(path, "start")) < count:
            await asyncio.sleep(0.01)


async def test_immediate_stop_hands_running_and_prefetched_jobs_back_in_order(
    service: QueueService, make_worker: MakeWorker, probe_log: Path
) -> None:
    ids = await service.add_jobs([probe(probe_log, sleep_s=30, tag=str(n)) for n in range(4)])
    worker = make_worker(burst=False, concurrency=2, prefetch=2)
    task = asyncio.create_task(worker.run())
    await wait_for_starts(probe_log, 2)
    worker.request_stop(immediate=True)
    await asyncio.wait_for(task, 10)

    stats = await service.get_queue_stats()
    assert (stats.in_flight, stats.total_jobs, stats.total_failed) == (0, 4, 0)
    # Workers take from the right: the first enqueued is next again, and so on.
    assert await service.redis.lrange(service.keys.priority(3), 0, -1) == ids[::-1]
    for job_id in ids:
        record = await service.get_job(job_id)
        assert record is not None and record.attempts == 0


async def test_stop_while_idle_never_strands_a_job(
    service: QueueService, make_worker: MakeWorker, probe_log: Path
) -> None:
    """A job arriving as the stop comes is either run or handed back, never left in flight."""
    for enqueued in range(1, 6):
        worker = make_worker(burst=False, concurrency=1)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.05)  # idle, blocked on the wakeup list with a claim behind it
        await service.add_job(probe(probe_log))
        worker.request_stop()
        await asyncio.wait_for(task, 10)
        stats = await service.get_queue_stats()
        assert stats.in_flight == 0
        assert stats.total_processed == len(read_events(probe_log, "done"))
        assert stats.total_jobs + stats.total_processed == enqueued


async def test_no_recovery_until_a_lease_has_passed_after_an_outage(
    service: QueueService, make_worker: MakeWorker, clock: ManualClock, probe_log: Path
) -> None:
    """After Redis was away, lapsed leases mean nothing yet: their workers could not renew."""
    job_id = await service.add_job(probe(probe_log))
    now_ms = clock.now_ms()
    claim = service.scripts.claim("elsewhere", now_ms, 1000, 1, "x")
    assert [job.id for job in (await service.runner.run(claim)).jobs] == [job_id]
    clock.advance(5)  # the other worker's lease has lapsed

    worker = make_worker(settings=service.settings.model_copy(update={"lease_seconds": 60}))
    await worker.link.down(ConnectionError("Redis went away"))
    assert await worker._maintain_if_due(force=True) == 0
    assert (await service.get_queue_stats()).in_flight == 1
