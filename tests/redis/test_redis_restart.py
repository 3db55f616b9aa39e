"""A lost connection inside qworker's own bookkeeping (here a job's checkpoint) while Redis
restarts is retried on a fresh connection once Redis is back: the job must not fail an attempt
(and a 63 s backoff) for qworker's trouble."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import redis

from qworker.clock import ManualClock
from qworker.errors import RedisUnavailable
from qworker.service import QueueService
from qworker.worker import Worker
from tests.jobtypes import read_events
from tests.redis.conftest import JOB_MODULES, make_test_settings
from tests.redis.faulty_jobs import faulty
from tests.redis_server import RedisServer

OUTAGE_S = 1.0  # longer than the job takes to reach its checkpoint


async def wait_for_start(probe_log: Path, job_id: str) -> None:
    async with asyncio.timeout(10):
        while not any(e.job_id == job_id for e in read_events(probe_log, "start")):
            await asyncio.sleep(0.01)


async def wait_for_done(probe_log: Path, job_id: str, service: QueueService) -> None:
    async with asyncio.timeout(15):
        while not any(e.job_id == job_id for e in read_events(probe_log, "done")):
            with contextlib.suppress(RedisUnavailable, redis.RedisError):  # Redis restarting
                if await service.redis.zscore(service.keys.retry, job_id) is not None:
                    return  # it failed: the test says how
            await asyncio.sleep(0.02)


async def test_a_checkpoint_during_a_redis_restart_costs_no_attempt(
    fresh_redis_server: RedisServer, namespace: str, probe_log: Path
) -> None:
    """Redis restarts between two jobs; the second checkpoints while Redis is still away (or
    still loading its data), and must simply wait for it."""
    settings = make_test_settings(fresh_redis_server.url, namespace)
    clock = ManualClock()
    async with QueueService(settings=settings, clock=clock) as service:
        worker = Worker(service, settings=settings, clock=clock, job_modules=JOB_MODULES)
        task = asyncio.create_task(worker.run())
        try:
            first = await service.add_job(faulty(probe_log, checkpoint="step"))
            await wait_for_done(probe_log, first, service)
            second = await service.add_job(faulty(probe_log, sleep_s=0.3, checkpoint="step"))
            await wait_for_start(probe_log, second)

            fresh_redis_server.stop()  # AOF: every acknowledged write survives
            await asyncio.sleep(OUTAGE_S)  # the job checkpoints meanwhile
            fresh_redis_server.start()

            await wait_for_done(probe_log, second, service)
            retry = await service.redis.zscore(service.keys.retry, second)
            record = await service.get_job(second)
        finally:
            worker.request_stop()
            await asyncio.wait_for(task, 10)

    assert retry is None, f"the job failed an attempt: {record}"
    done = [(e.job_id, e.attempt) for e in read_events(probe_log, "done")]
    assert done == [(first, 1), (second, 1)]
