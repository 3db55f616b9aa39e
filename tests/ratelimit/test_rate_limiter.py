"""The shared rate limiter: every rule runs on a real redis-server and on fakeredis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis
from fakeredis.aioredis import FakeRedis

from qworker.clock import ManualClock
from qworker.connection import async_client
from qworker.keys import QueueKeys
from qworker.rate_limiter import DAY_MS, HOUR_MS, RateLimit, RateLimiter, next_allowed

MakeLimiter = Callable[..., RateLimiter]


@pytest.fixture(params=["redis-server", "fakeredis"])
async def backend(
    request: pytest.FixtureRequest, redis_url: str, fake_redis: FakeRedis
) -> AsyncIterator[aioredis.Redis]:
    if request.param == "fakeredis":
        yield fake_redis
        return
    client = async_client(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_limiter(backend: aioredis.Redis, namespace: str, clock: ManualClock) -> MakeLimiter:
    def make(rate_key: str = "tweet", **limits: float | None) -> RateLimiter:
        limit = RateLimit(**limits)  # type: ignore[arg-type]
        return RateLimiter.for_key(rate_key, limit, backend, QueueKeys(namespace), clock)

    return make


async def test_hourly_window_rolls(make_limiter: MakeLimiter, clock: ManualClock) -> None:
    limiter = make_limiter(max_per_hour=3)
    first_ms = clock.now_ms()
    for n in range(3):
        assert (await limiter.reserve(f"job{n}")).granted
        clock.advance(60)
    refused = await limiter.reserve("job3")
    assert not refused.granted
    # The window rolls: the slot frees exactly one hour after the first execution.
    assert refused.next_allowed_ms == first_ms + HOUR_MS
    clock.set_ms(first_ms + HOUR_MS - 1)
    assert not (await limiter.reserve("job3")).granted
    clock.set_ms(first_ms + HOUR_MS)
    assert (await limiter.reserve("job3")).granted


async def test_daily_window_rolls(make_limiter: MakeLimiter, clock: ManualClock) -> None:
    limiter = make_limiter(max_per_day=2)
    start_ms = clock.now_ms()
    assert (await limiter.reserve("a")).granted
    clock.advance(3 * 3600)
    assert (await limiter.reserve("b")).granted
    refused = await limiter.reserve("c")
    assert (refused.granted, refused.next_allowed_ms) == (False, start_ms + DAY_MS)
    clock.set_ms(start_ms + DAY_MS)
    assert (await limiter.reserve("c")).granted
    # "b" is still inside the window, and so is "c": two again.
    assert not (await limiter.reserve("d")).granted


async def test_min_interval(make_limiter: MakeLimiter, clock: ManualClock) -> None:
    limiter = make_limiter(min_interval_minutes=10)
    assert (await limiter.reserve("a")).granted
    clock.advance(9 * 60)
    refused = await limiter.reserve("b")
    assert not refused.granted
    assert refused.next_allowed_ms == clock.now_ms() + 60_000
    clock.advance(60)
    assert (await limiter.reserve("b")).granted


async def test_next_allowed_is_the_latest_of_all_limits(
    make_limiter: MakeLimiter, clock: ManualClock
) -> None:
    limiter = make_limiter(max_per_day=5, max_per_hour=1, min_interval_minutes=90)
    start_ms = clock.now_ms()
    assert (await limiter.reserve("a")).granted
    refused = await limiter.reserve("b")
    # The hour opens at +60 min, but the interval only at +90 min.
    assert refused.next_allowed_ms == start_ms + 90 * 60_000


async def test_zero_limit_never_grants(make_limiter: MakeLimiter, clock: ManualClock) -> None:
    limiter = make_limiter(max_per_hour=0)
    refused = await limiter.reserve("a")
    assert not refused.granted
    assert refused.next_allowed_ms == clock.now_ms() + HOUR_MS


async def test_release_gives_the_slot_back(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(max_per_hour=1)
    reservation = await limiter.reserve("a")
    assert not (await limiter.reserve("b")).granted
    await limiter.release(reservation)
    assert (await limiter.reserve("b")).granted


async def test_remote_block_holds_every_worker(
    make_limiter: MakeLimiter, clock: ManualClock
) -> None:
    one, other = make_limiter(max_per_hour=100), make_limiter(max_per_hour=100)
    until_ms = clock.now_ms() + 15 * 60_000
    assert await one.block_until(until_ms) == until_ms
    # A shorter block never shortens the one in force.
    assert await other.block_until(until_ms - 1000) == until_ms
    refused = await other.reserve("a")
    assert (refused.granted, refused.next_allowed_ms) == (False, until_ms)
    clock.set_ms(until_ms)
    assert (await other.reserve("a")).granted


async def test_keys_are_independent(make_limiter: MakeLimiter) -> None:
    tweets, mails = make_limiter("tweet", max_per_hour=1), make_limiter("mail", max_per_hour=1)
    assert (await tweets.reserve("a")).granted
    assert (await mails.reserve("b")).granted
    assert not (await tweets.reserve("c")).granted


async def test_concurrent_reservations_never_exceed_the_limit(make_limiter: MakeLimiter) -> None:
    limiters = [make_limiter(max_per_hour=7) for _ in range(5)]
    attempts = [limiters[n % 5].reserve(f"job{n}") for n in range(60)]
    results = await asyncio.gather(*attempts)
    assert sum(result.granted for result in results) == 7


async def test_stats_report_usage_and_next_time(
    make_limiter: MakeLimiter, clock: ManualClock
) -> None:
    limiter = make_limiter(max_per_day=10, max_per_hour=2)
    start_ms = clock.now_ms()
    await limiter.reserve("a")
    clock.advance(600)
    await limiter.reserve("b")
    stats = await limiter.get_stats()
    assert (stats.used_last_hour, stats.used_last_day) == (2, 2)
    assert stats.last_execution_ms == start_ms + 600_000
    assert stats.next_allowed_ms == start_ms + HOUR_MS
    clock.advance(3600)
    stats = await limiter.get_stats()
    assert (stats.used_last_hour, stats.used_last_day) == (0, 2)
    assert stats.next_allowed_ms == clock.now_ms()


@pytest.mark.parametrize(
    ("times_s", "limit", "now_s", "expected_s"),
    [
        ([], RateLimit(max_per_hour=1), 100, 100),
        ([10], RateLimit(max_per_hour=1), 100, 3610),
        ([10, 20], RateLimit(max_per_hour=2), 100, 3610),
        ([10, 20], RateLimit(max_per_hour=3), 100, 100),
        ([10], RateLimit(min_interval_minutes=1), 30, 70),
        ([10, 4000], RateLimit(max_per_day=2, max_per_hour=1), 4100, 86410),
    ],
)
def test_next_allowed_rule(
    times_s: list[int], limit: RateLimit, now_s: int, expected_s: int
) -> None:
    times_ms = [t * 1000 for t in times_s]
    assert next_allowed(times_ms, limit, now_s * 1000) == expected_s * 1000
