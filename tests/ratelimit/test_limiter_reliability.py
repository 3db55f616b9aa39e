"""Rate limits that hold whatever the hosts' clocks say, let parked jobs out in enqueue order and
only as many as the limiter admits, remember intervals longer than a day, and give a refused
slot back in the same step as the block."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from qworker.clock import ManualClock
from qworker.config import Settings
from qworker.connection import async_client
from qworker.keys import QueueKeys
from qworker.rate_limiter import DAY_MS, RateLimit, RateLimiter
from qworker.service import QueueService
from qworker.worker import Worker
from tests.ratelimit import limited_jobs

assert limited_jobs.LimitedJob  # importing the module registers the test job types


class SkewedClock:
    """A host whose clock is off by ``offset_ms``; like the system clock, it lets the scripts
    use Redis's own time."""

    def __init__(self, offset_ms: int) -> None:
        self.offset_ms = offset_ms

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    def script_now_ms(self) -> None:
        return None


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis = async_client(redis_url)
    yield redis
    await redis.aclose()


@pytest.fixture
def settings(redis_url: str, namespace: str) -> Settings:
    return Settings(redis_url=redis_url, namespace=namespace, _env_file=None)  # type: ignore[call-arg]


async def test_a_clock_ahead_cannot_take_a_slot_early(
    client: aioredis.Redis, namespace: str
) -> None:
    """A host 61 s ahead used to reserve a 60 s-interval slot right after another host's."""
    keys, limit = QueueKeys(namespace), RateLimit(min_interval_minutes=1)
    honest = RateLimiter.for_key("tweet", limit, client, keys, SkewedClock(0))
    ahead = RateLimiter.for_key("tweet", limit, client, keys, SkewedClock(61_000))
    before_ms = time.time_ns() // 1_000_000
    assert (await honest.reserve("first")).granted
    refused = await ahead.reserve("second")
    after_ms = time.time_ns() // 1_000_000
    assert not refused.granted
    # A minute after the honest slot, by Redis's clock (which this host shares).
    assert before_ms + 60_000 <= refused.next_allowed_ms <= after_ms + 60_000


async def test_a_clock_ahead_does_not_recover_live_leases(settings: Settings) -> None:
    """Lease expiry is judged by Redis's clock: a worker two leases ahead sees nothing expired."""
    async with QueueService(settings=settings) as service:
        await service.add_job({"job_type": "unlimited", "record_key": "unused"})
        lease_ms = int(settings.lease_seconds * 1000)
        claimed = await service.run(service.scripts.claim("alive", None, lease_ms, 1, "b"))
        assert len(claimed.jobs) == 1
        ahead = Worker(service, settings=settings, clock=SkewedClock(2 * lease_ms))
        assert await ahead._maintain_if_due(force=True) == 0
        assert (await service.get_queue_stats()).in_flight == 1
        await service.clear_queue(everything=True)


async def test_parked_jobs_leave_in_enqueue_order_one_per_opening(
    settings: Settings, client: aioredis.Redis
) -> None:
    clock = ManualClock()
    async with QueueService(settings=settings, clock=clock) as service:
        record = f"{service.keys.prefix}record"
        job = {"job_type": "limited", "record_key": record, "per_hour": 1000}
        job_ids = [await service.add_job({**job, "min_interval_minutes": 1}) for _ in range(8)]

        def worker() -> Worker:
            return Worker(service, settings=settings, concurrency=4, burst=True, clock=clock)

        await worker().run()
        assert await client.lrange(record, 0, -1) == job_ids[:1]
        assert (await service.get_queue_stats()).parked == 7

        # One opening lets exactly one job out, the oldest; the rest wait for the next one.
        clock.advance(60)
        released = await service.run(service.scripts.release_parked(clock.now_ms(), 100))
        assert released == (1, clock.now_ms() + 60_000)
        assert await client.lrange(service.keys.priority(3), 0, -1) == job_ids[1:2]

        await worker().run()
        for _ in range(6):
            clock.advance(60)
            await worker().run()
        assert await client.lrange(record, 0, -1) == job_ids
        assert (await service.get_queue_stats()).total_failed == 0
        await service.clear_queue(everything=True)


async def test_a_min_interval_longer_than_a_day_is_remembered(
    client: aioredis.Redis, namespace: str
) -> None:
    clock = ManualClock()
    keys, limit = QueueKeys(namespace), RateLimit(min_interval_minutes=2 * 24 * 60)
    limiter = RateLimiter.for_key("digest", limit, client, keys, clock)
    first_ms = clock.now_ms()
    assert (await limiter.reserve("monday")).granted
    clock.advance(25 * 3600)
    refused = await limiter.reserve("tuesday")
    assert (refused.granted, refused.next_allowed_ms) == (False, first_ms + 2 * DAY_MS)
    assert await client.pttl(keys.rate_log("digest")) > 2 * DAY_MS


async def test_a_remote_refusal_gives_the_slot_back_and_blocks_in_one_step(
    client: aioredis.Redis, namespace: str
) -> None:
    clock = ManualClock()
    keys = QueueKeys(namespace)
    limiter = RateLimiter.for_key("tweet", RateLimit(max_per_hour=1), client, keys, clock)
    reservation = await limiter.reserve("job")
    assert reservation.granted
    until_ms = clock.now_ms() + 900_000
    assert await limiter.block_until(until_ms, give_back=reservation) == until_ms
    assert await client.zcard(keys.rate_log("tweet")) == 0
    assert int(await client.get(keys.rate_blocked("tweet"))) == until_ms
