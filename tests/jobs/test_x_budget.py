"""Pay-per-use spend on a real redis-server with real workers: the budget parks what is left of a
run until the month turns, on a hand-moved clock; spend is counted per post and per month."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from qworker.clients import ClientContainer
from qworker.clock import ManualClock
from qworker.config import Settings
from qworker.errors import PermanentJobError, RetryableJobError
from qworker.jobs.tweet import CLIENT_NAME, Posted
from qworker.jobs.x_account import CLIENT_NAME as X_ACCOUNT
from qworker.jobs.x_account import RemoteLimit, XAccount, read_month_spend
from qworker.service import QueueService
from qworker.worker import Worker
from tests.jobs.support import make_settings

# New Year's Eve of this year: a spend hash expires 400 days after its month ends (x_gate.lua),
# by Redis's own clock, so a fixed date would have every hash expire on writing a year on.
YEAR = datetime.now(UTC).year
NEW_YEARS_EVE_MS = int(datetime(YEAR, 12, 31, 23, 0, tzinfo=UTC).timestamp() * 1000)
HOUR_S = 3600.0


class CountingTwitter:
    """Stands in for tweepy: every post succeeds (the real HTTP path is tested elsewhere), and
    ``fail_next`` makes posts fail as if X answered 503 or refused."""

    def __init__(self) -> None:
        self.posted: list[str] = []
        self.fail_next: list[Exception] = []
        self._ids = itertools.count(1)

    async def post_tweet(
        self,
        text: str,
        *,
        media_ids: Sequence[str] | None = None,
        reply_to: str | None = None,
        limits_out: list[RemoteLimit] | None = None,
    ) -> Posted:
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.posted.append(text)
        return Posted(str(next(self._ids)))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NEW_YEARS_EVE_MS)


@pytest.fixture
def settings(redis_url: str, namespace: str) -> Settings:
    # $0.05 a month at $0.015 a post: three posts fit, the fourth would make $0.06.
    return make_settings(
        redis_url=redis_url, namespace=namespace, x_plan="pay-per-use", x_monthly_budget_usd=0.05
    )


@pytest.fixture
async def service(settings: Settings, clock: ManualClock) -> AsyncIterator[QueueService]:
    async with QueueService(settings=settings, clock=clock) as queue_service:
        yield queue_service


@pytest.fixture
def twitter() -> CountingTwitter:
    return CountingTwitter()


async def run_burst(
    service: QueueService, clock: ManualClock, twitter: CountingTwitter, redis_url: str
) -> Worker:
    """One burst worker (its own clients, as a separate process would have)."""
    clients = ClientContainer(service.settings)
    clients.provide(CLIENT_NAME, twitter)
    account_redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    clients.provide(X_ACCOUNT, XAccount(account_redis, service.keys, clock))
    worker = Worker(service, settings=service.settings, burst=True, clock=clock, clients=clients)
    await asyncio.wait_for(worker.run(), 20)
    return worker


async def states(service: QueueService, job_ids: list[str]) -> list[str]:
    records = [await service.get_job(job_id) for job_id in job_ids]
    return [record.state if record else "gone" for record in records]


async def test_the_budget_parks_the_rest_until_the_month_turns(
    service: QueueService, clock: ManualClock, twitter: CountingTwitter, redis_url: str
) -> None:
    job_ids = [
        await service.add_job({"job_type": "tweet", "content": f"post {n}"}) for n in range(5)
    ]

    await run_burst(service, clock, twitter, redis_url)

    assert twitter.posted == ["post 0", "post 1", "post 2"]
    assert await states(service, job_ids) == ["done"] * 3 + ["parked"] * 2
    next_month_ms = int(datetime(YEAR + 1, 1, 1, tzinfo=UTC).timestamp() * 1000)
    parked = await service.redis.zrange(service.keys.parked, 0, -1, withscores=True)
    assert {score for _id, score in parked} == {next_month_ms}
    december = await read_month_spend(service.redis, service.keys, service.settings, clock.now_ms())
    assert (december.month, december.posts, december.spent_usd) == (f"{YEAR}-12", 3, 0.045)
    assert december.budget_usd == 0.05
    assert december.budget_reached
    # Parked is no failure: neither attempt counted.
    records = [await service.get_job(job_id) for job_id in job_ids[3:]]
    assert [record.attempts for record in records if record] == [0, 0]

    clock.advance(HOUR_S - 1)  # still December: nothing more goes out
    await run_burst(service, clock, twitter, redis_url)
    assert len(twitter.posted) == 3

    clock.advance(1)  # midnight UTC, 1 January
    await run_burst(service, clock, twitter, redis_url)
    assert twitter.posted[3:] == ["post 3", "post 4"]
    assert await states(service, job_ids) == ["done"] * 5
    january = await read_month_spend(service.redis, service.keys, service.settings, clock.now_ms())
    assert (january.month, january.posts, january.spent_usd) == (f"{YEAR + 1}-01", 2, 0.03)


async def test_a_post_with_a_url_costs_its_own_price(
    service: QueueService, clock: ManualClock, twitter: CountingTwitter, redis_url: str
) -> None:
    settings = service.settings.model_copy(update={"x_monthly_budget_usd": None})
    async with QueueService(settings=settings, clock=clock) as unlimited:
        await unlimited.add_job({"job_type": "tweet", "content": "read https://example.com"})
        await unlimited.add_job({"job_type": "tweet", "content": "plain"})
        await run_burst(unlimited, clock, twitter, redis_url)
        spend = await read_month_spend(unlimited.redis, unlimited.keys, settings, clock.now_ms())
    assert (spend.posts, spend.posts_with_url, spend.spent_usd) == (1, 1, 0.215)
    assert spend.budget_usd is None


@pytest.mark.parametrize(
    ("failure", "counted"),
    [
        (RetryableJobError("X answered 503", retry_after=600), 1),  # maybe posted: kept
        (RetryableJobError("no connection", reached_remote=False), 0),  # never sent: given back
        (PermanentJobError("X answered 403 Forbidden"), 0),  # refused: given back
    ],
    ids=["maybe-posted", "never-sent", "refused"],
)
async def test_a_failed_post_keeps_its_price_only_if_x_may_have_made_it(
    service: QueueService,
    clock: ManualClock,
    twitter: CountingTwitter,
    redis_url: str,
    failure: Exception,
    counted: int,
) -> None:
    twitter.fail_next.append(failure)
    await service.add_job({"job_type": "tweet", "content": "once"})
    await run_burst(service, clock, twitter, redis_url)
    spend = await read_month_spend(service.redis, service.keys, service.settings, clock.now_ms())
    assert spend.posts == counted
    assert twitter.posted == []  # retried later, not yet
