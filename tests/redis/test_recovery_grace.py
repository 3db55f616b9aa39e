"""No worker recovers others' leases until it has been connected to Redis for one lease: a
worker that starts as Redis comes back from an outage (systemd restarting it meanwhile) must not
take and rerun the jobs whose owners simply could not renew while Redis was away."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

from qworker.clock import ManualClock
from qworker.service import QueueService
from qworker.worker import Worker
from tests.jobtypes import read_events
from tests.redis.conftest import JOB_MODULES, make_test_settings
from tests.redis.faulty_jobs import faulty
from tests.redis_server import RedisServer

LEASE_S = 60.0


async def wait_for(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


async def test_a_worker_started_as_redis_returns_does_not_recover_live_jobs(
    fresh_redis_server: RedisServer, namespace: str, probe_log: Path
) -> None:
    settings = make_test_settings(fresh_redis_server.url, namespace, lease_seconds=LEASE_S)
    clock = ManualClock()

    def worker(service: QueueService, **options: object) -> Worker:
        return Worker(
            service,
            settings=settings,
            clock=clock,
            rng=random.Random(1),
            job_modules=JOB_MODULES,
            **options,  # type: ignore[arg-type]
        )

    async with QueueService(settings=settings, clock=clock) as service_a:
        job_id = await service_a.add_job(faulty(probe_log, sleep_s=30))
        worker_a = worker(service_a, prefetch=0)
        task_a = asyncio.create_task(worker_a.run())

        async def started() -> bool:
            return bool(read_events(probe_log, "start"))

        await wait_for("worker A runs the job", started)
        # Hold A's heartbeat back (it renews from its own thread): what B sees when it starts
        # is then exactly what Redis kept through the outage, leases lapsed and all.
        with worker_a._owned_lock:
            fresh_redis_server.stop()

            async def a_sees_the_outage() -> bool:
                return worker_a.link.down_since is not None

            await wait_for("A sees the outage", a_sees_the_outage)
            clock.advance(LEASE_S + 1)  # Redis is away for longer than A's lease
            fresh_redis_server.start()
            async with QueueService(settings=settings, clock=clock) as service_b:
                worker_b = worker(service_b, burst=True)
                await asyncio.wait_for(worker_b.run(), 10)
                stats_after_b = await service_b.get_queue_stats()
        assert stats_after_b.recovered == 0, "B recovered a job its owner was still running"

        async def renewed_by_a() -> bool:
            score = await service_a.redis.zscore(service_a.keys.inflight, job_id)
            return score is not None and score > clock.now_ms()

        await wait_for("A renews its lease", renewed_by_a)
        owner = await service_a.redis.hget(service_a.keys.job(job_id), "owner")
        worker_a.request_stop(immediate=True)
        await asyncio.wait_for(task_a, 10)

    assert [(e.job_id, e.attempt) for e in read_events(probe_log, "start")] == [(job_id, 1)]
    assert owner is not None and owner.startswith(worker_a.worker_id)


async def test_a_new_worker_recovers_a_dead_workers_jobs_after_one_lease(
    fresh_redis_server: RedisServer, namespace: str, probe_log: Path
) -> None:
    """The grace delays recovery; it does not prevent it."""
    settings = make_test_settings(fresh_redis_server.url, namespace, lease_seconds=LEASE_S)
    clock = ManualClock()
    async with QueueService(settings=settings, clock=clock) as service:
        job_id = await service.add_job(faulty(probe_log))
        now = clock.script_now_ms()
        claim = service.scripts.claim("dead-worker", now, int(LEASE_S * 1000), 1, "x")
        assert [job.id for job in (await service.runner.run(claim)).jobs] == [job_id]
        clock.advance(LEASE_S + 1)  # the dead worker's lease has lapsed

        worker = Worker(service, settings=settings, clock=clock, job_modules=JOB_MODULES)
        task = asyncio.create_task(worker.run())
        try:

            async def connected() -> bool:
                return (
                    await service.redis.zscore(service.keys.workers, worker.worker_id)
                ) is not None

            await wait_for("the worker is connected", connected)
            assert await worker._maintain_if_due(force=True) == 0  # within the grace
            assert (await service.get_queue_stats()).recovered == 0
            clock.advance(LEASE_S)  # connected for one lease now

            async def done() -> bool:
                return bool(read_events(probe_log, "done"))

            await wait_for("the recovered job runs", done)
        finally:
            worker.request_stop()
            await asyncio.wait_for(task, 10)

    assert [(e.job_id, e.attempt) for e in read_events(probe_log, "start")] == [(job_id, 2)]
