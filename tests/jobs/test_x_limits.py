"""X's rate-limit headers move the shared limiter for every worker, on a real redis-server, with
real tweepy posting and only its HTTP layer mocked."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
import responses

from qworker.clients import ClientContainer
from qworker.clock import ManualClock
from qworker.errors import RateLimitedJobError
from qworker.jobs.tweet import TweetJob
from qworker.jobs.x_account import (
    CLIENT_NAME,
    GATE_REASONS,
    Charge,
    GateRefusal,
    XAccount,
    limits_from_headers,
)
from qworker.keys import QueueKeys
from qworker.rate_limiter import RateLimit, RateLimiter
from tests.jobs.support import TWEETS_URL, execute_and_close, make_job, make_settings

NOW_S = 1_796_000_000  # a fixed "now" (2026-11), so X's epoch-second resets line up with it


def created(tweet_id: str) -> dict[str, Any]:
    return {"data": {"id": tweet_id, "text": "t", "edit_history_tweet_ids": [tweet_id]}}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW_S * 1000)


@pytest.fixture
def keys(namespace: str) -> QueueKeys:
    return QueueKeys(namespace)


@pytest.fixture
async def redis(redis_url: str) -> Any:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


def job_on_redis(redis_url: str, keys: QueueKeys, clock: ManualClock, **settings: Any) -> TweetJob:
    """A job whose worker shares X's state in the test's namespace on the real server."""
    job_settings = make_settings(redis_url=redis_url, namespace=keys.namespace, **settings)
    clients = ClientContainer(job_settings)
    account = XAccount(aioredis.Redis.from_url(redis_url, decode_responses=True), keys, clock)
    clients.provide(CLIENT_NAME, account)
    return make_job("Hello!", settings=job_settings, clients=clients)


def other_workers_limiter(
    redis: aioredis.Redis, keys: QueueKeys, clock: ManualClock
) -> RateLimiter:
    return RateLimiter.for_key("tweet", RateLimit(max_per_day=17), redis, keys, clock)


async def test_a_used_up_window_in_a_success_blocks_every_worker(
    api: responses.RequestsMock,
    redis: aioredis.Redis,
    redis_url: str,
    keys: QueueKeys,
    clock: ManualClock,
) -> None:
    reset_s = NOW_S + 600
    headers = {
        "x-rate-limit-limit": "100",
        "x-rate-limit-remaining": "0",
        "x-rate-limit-reset": str(reset_s),
    }
    api.post(TWEETS_URL, json=created("1"), status=201, headers=headers)

    await execute_and_close(job_on_redis(redis_url, keys, clock))

    reservation = await other_workers_limiter(redis, keys, clock).reserve("job-2")
    assert not reservation.granted
    assert reservation.next_allowed_ms == reset_s * 1000
    stats = await other_workers_limiter(redis, keys, clock).get_stats()
    assert stats.blocked_until_ms == reset_s * 1000


async def test_the_daily_caps_block_until_their_own_reset(
    api: responses.RequestsMock,
    redis: aioredis.Redis,
    redis_url: str,
    keys: QueueKeys,
    clock: ManualClock,
) -> None:
    user_reset_s, app_reset_s = NOW_S + 20_000, NOW_S + 50_000
    headers = {
        "x-rate-limit-remaining": "57",
        "x-rate-limit-reset": str(NOW_S + 600),
        "x-user-limit-24hour-remaining": "0",
        "x-user-limit-24hour-reset": str(user_reset_s),
        "x-app-limit-24hour-remaining": "0",
        "x-app-limit-24hour-reset": str(app_reset_s),
    }
    api.post(TWEETS_URL, json=created("1"), status=201, headers=headers)

    await execute_and_close(job_on_redis(redis_url, keys, clock))

    reservation = await other_workers_limiter(redis, keys, clock).reserve("job-2")
    assert reservation.next_allowed_ms == app_reset_s * 1000  # the latest of the used-up ones


async def test_remaining_counts_down_across_workers_without_new_headers(
    api: responses.RequestsMock,
    redis: aioredis.Redis,
    redis_url: str,
    keys: QueueKeys,
    clock: ManualClock,
) -> None:
    """X said 2 remain: two more posts (any worker) may go, the third waits for the reset."""
    reset_s = NOW_S + 600
    headers = {"x-rate-limit-remaining": "2", "x-rate-limit-reset": str(reset_s)}
    api.post(TWEETS_URL, json=created("1"), status=201, headers=headers)
    await execute_and_close(job_on_redis(redis_url, keys, clock))
    api.post(TWEETS_URL, json=created("2"), status=201)  # no headers at all
    api.post(TWEETS_URL, json=created("3"), status=201)
    await execute_and_close(job_on_redis(redis_url, keys, clock))
    await execute_and_close(job_on_redis(redis_url, keys, clock))

    with pytest.raises(RateLimitedJobError) as caught:
        await execute_and_close(job_on_redis(redis_url, keys, clock))
    assert caught.value.reset_at == reset_s
    assert len(api.calls) == 3  # the fourth never reached X


async def test_a_later_answer_from_an_older_window_changes_nothing(
    redis: aioredis.Redis, keys: QueueKeys, clock: ManualClock
) -> None:
    account = XAccount(redis, keys, clock)
    new = {"x-rate-limit-remaining": "90", "x-rate-limit-reset": str(NOW_S + 900)}
    old = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(NOW_S + 10)}
    assert await account.settle(limits_from_headers(new)) == 0
    assert await account.settle(limits_from_headers(old)) == 0
    assert await redis.hget(keys.x_limits("tweet"), "x-rate-limit") == f"90|{(NOW_S + 900) * 1000}"


async def test_a_429_shares_its_headers_too(
    api: responses.RequestsMock,
    redis: aioredis.Redis,
    redis_url: str,
    keys: QueueKeys,
    clock: ManualClock,
) -> None:
    reset_s = NOW_S + 300
    headers = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset_s)}
    api.post(TWEETS_URL, json={"detail": "Too Many Requests"}, status=429, headers=headers)

    with pytest.raises(RateLimitedJobError):
        await execute_and_close(job_on_redis(redis_url, keys, clock))

    reservation = await other_workers_limiter(redis, keys, clock).reserve("job-2")
    assert reservation.next_allowed_ms == reset_s * 1000


def test_headers_without_a_pair_are_ignored() -> None:
    assert limits_from_headers({"x-rate-limit-remaining": "3"}) == []
    assert limits_from_headers({"x-rate-limit-remaining": "x", "x-rate-limit-reset": "9"}) == []


async def test_the_plans_15_minute_window_is_shared_by_every_worker(
    redis: aioredis.Redis, keys: QueueKeys, clock: ManualClock
) -> None:
    """pay-per-use's 100 posts per 15 minutes, here 2: a third post waits until the first one
    leaves the window, whichever worker asks."""
    settings = make_settings(x_plan="pay-per-use", tweet_max_per_15_minutes=2)
    limiter = other_workers_limiter(redis, keys, clock)
    workers = [XAccount(redis, keys, clock), XAccount(redis, keys, clock)]
    first_ms = clock.now_ms()
    for n, account in enumerate([*workers, workers[0]]):
        reservation = await limiter.reserve(f"job-{n}")
        assert reservation.granted
        decision = await account.gate(settings, price_micro_usd=0, has_url=False)
        clock.advance(60)
    assert decision == GateRefusal(GATE_REASONS[1], first_ms + 900_000)
    await limiter.release(reservation)  # as the worker gives back a refused attempt's slot

    clock.set_ms(first_ms + 900_001)
    assert (await limiter.reserve("job-late")).granted
    assert isinstance(await workers[1].gate(settings, price_micro_usd=0, has_url=False), Charge)
