"""Rate limits inside the worker lifecycle: a limited job is parked, not failed, not spun on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from qworker.clock import ManualClock
from qworker.config import Settings
from qworker.connection import async_client
from qworker.rate_limiter import HOUR_MS
from qworker.service import QueueService
from qworker.worker import Worker
from tests.ratelimit import limited_jobs

MakeWorker = Callable[[], Worker]
assert limited_jobs.LimitedJob  # importing the module registers the test job types


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(redis_url: str, namespace: str) -> Settings:
    return Settings(redis_url=redis_url, namespace=namespace, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
async def service(settings: Settings, clock: ManualClock) -> AsyncIterator[QueueService]:
    async with QueueService(settings=settings, clock=clock) as service:
        yield service


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = async_client(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def make_worker(service: QueueService, settings: Settings, clock: ManualClock) -> MakeWorker:
    def make() -> Worker:
        return Worker(service, settings=settings, concurrency=4, burst=True, clock=clock)

    return make


async def test_limited_jobs_park_and_others_flow(
    service: QueueService, make_worker: MakeWorker, redis: aioredis.Redis, clock: ManualClock
) -> None:
    record = f"{service.keys.prefix}record"
    limited = [{"job_type": "limited", "record_key": record, "per_hour": 2} for _ in range(5)]
    limited_ids = await service.add_jobs(limited, priority=1)
    free_ids = await service.add_jobs(
        [{"job_type": "unlimited", "record_key": record} for _ in range(3)], priority=4
    )
    await make_worker().run()

    executed = await redis.lrange(record, 0, -1)
    assert set(free_ids) <= set(executed)
    assert len([job_id for job_id in executed if job_id in limited_ids]) == 2
    stats = await service.get_queue_stats()
    assert (stats.parked, stats.dead_letter, stats.total_failed) == (3, 0, 0)
    parked = await redis.zrange(service.keys.parked, 0, -1, withscores=True)
    assert {int(score) for _id, score in parked} == {clock.now_ms() + HOUR_MS}

    # When the window opens the parked jobs come back; two more run, one waits again.
    clock.advance(3600)
    await make_worker().run()
    executed = await redis.lrange(record, 0, -1)
    assert len([job_id for job_id in executed if job_id in limited_ids]) == 4
    stats = await service.get_queue_stats()
    assert (stats.parked, stats.total_jobs, stats.dead_letter) == (1, 0, 0)
    # Parking is not a failed attempt.
    for job_id in await redis.zrange(service.keys.parked, 0, -1):
        record_of_job = await service.get_job(job_id)
        assert record_of_job is not None and record_of_job.attempts == 0


async def test_remote_429_parks_until_reset_and_blocks_the_key(
    service: QueueService, make_worker: MakeWorker, redis: aioredis.Redis, clock: ManualClock
) -> None:
    record = f"{service.keys.prefix}record"
    reset_s = clock.now_ms() / 1000 + 900
    job_id = await service.add_job(
        {"job_type": "remote_limited", "record_key": record, "reset_at_s": reset_s}
    )
    await make_worker().run()
    assert await redis.zscore(service.keys.parked, job_id) == reset_s * 1000
    limits = {s.rate_key: s for s in await service.get_rate_limit_stats()}
    assert limits["remote_limited"].blocked_until_ms == int(reset_s * 1000)
    record_of_job = await service.get_job(job_id)
    assert record_of_job is not None and record_of_job.attempts == 0

    clock.advance(899)
    await make_worker().run()
    assert await redis.lrange(record, 0, -1) == []
    clock.advance(1)
    await make_worker().run()
    assert await redis.lrange(record, 0, -1) == [job_id]
    stats = await service.get_queue_stats()
    assert (stats.total_processed, stats.total_failed, stats.parked) == (1, 0, 0)
