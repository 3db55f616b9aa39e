"""The exporter's reads: the right numbers, two round trips whatever the queue lengths, and
``qworker_up 0`` (then recovery) when Redis goes away during a scrape."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from qworker.clock import ManualClock
from qworker.config import Settings
from qworker.connection import sync_client
from qworker.keys import QueueKeys
from qworker.metrics.queue import QueueCollector, queue_registry
from qworker.rate_limiter import RateLimit, RateLimiter
from qworker.service import QueueService
from tests.metrics.jobtypes import metered
from tests.redis_server import RedisServer


def scrape(collector: QueueCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(queue_registry(collector)).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class CountingPipelines:
    """Counts pipeline round trips of a sync client."""

    def __init__(self, client: redis.Redis) -> None:
        self.client, self.round_trips = client, 0
        original = client.pipeline

        def pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = original(*args, **kwargs)
            execute = pipe.execute

            def counted(*a: Any, **k: Any) -> Any:
                self.round_trips += 1
                return execute(*a, **k)

            pipe.execute = counted  # type: ignore[method-assign]
            return pipe

        client.pipeline = pipeline  # type: ignore[method-assign]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(redis_url: str, namespace: str) -> Settings:
    return Settings(_env_file=None, redis_url=redis_url, namespace=namespace)  # type: ignore[call-arg]


def collector_for(settings: Settings, clock: ManualClock) -> QueueCollector:
    keys = QueueKeys(settings.namespace)
    return QueueCollector(sync_client(settings), keys, clock.now_ms)


async def test_queue_gauges_counters_and_rate_limits(
    settings: Settings, clock: ManualClock
) -> None:
    async with QueueService(settings=settings, clock=clock) as service:
        await service.add_jobs([metered()] * 3, priority=1)
        clock.advance(5)
        await service.add_jobs([metered()] * 2, priority=3)
        await service.add_job(metered(), 2, delay_s=60)
        limiter = RateLimiter.for_key(
            "api", RateLimit(max_per_day=5, max_per_hour=2), service.redis, service.keys, clock
        )
        for _ in range(3):
            await limiter.reserve("j")
            clock.advance(60)
        await service.redis.hset(service.keys.stats, mapping={"processed": 7, "dead": 2})
    clock.advance(5)
    collector = collector_for(settings, clock)
    values = scrape(collector)

    def gauge(name: str, **labels: str) -> float:
        return values[(name, tuple(sorted(labels.items())))]

    assert gauge("qworker_up") == 1
    assert [gauge("qworker_queue_jobs", queue=f"priority_{p}") for p in (1, 2, 3, 4)] == [
        3, 0, 2, 0,
    ]  # fmt: skip
    assert gauge("qworker_queue_jobs", queue="scheduled") == 1
    assert gauge("qworker_queue_oldest_age_seconds", priority="1") == 5 + 180 + 5
    assert gauge("qworker_queue_oldest_age_seconds", priority="3") == 180 + 5
    assert gauge("qworker_queue_oldest_age_seconds", priority="2") == 0
    assert gauge("qworker_processed_total") == 7
    assert gauge("qworker_dead_total") == 2
    assert gauge("qworker_canceled_total") == 0
    assert gauge("qworker_failed_total") == 0
    assert gauge("qworker_rate_limit_used", key="api", window="hour") == 2  # one was refused
    assert gauge("qworker_rate_limit_limit", key="api", window="hour") == 2
    assert gauge("qworker_rate_limit_limit", key="api", window="day") == 5
    # The hour frees a slot when the older of its two executions (185 s ago) is an hour old.
    assert gauge("qworker_rate_limit_next_slot_seconds", key="api") == 3600 - 185
    assert gauge("qworker_workers_alive") == 0


async def test_a_scrape_is_two_round_trips_whatever_the_lengths(
    settings: Settings, clock: ManualClock
) -> None:
    collector = collector_for(settings, clock)
    counter = CountingPipelines(collector.client)
    scrape(collector)
    empty = counter.round_trips
    async with QueueService(settings=settings, clock=clock) as service:
        for priority in (1, 2, 3, 4):
            await service.add_jobs([metered()] * 500, priority=priority)
    counter.round_trips = 0
    values = scrape(collector)
    assert values[("qworker_queue_jobs", (("queue", "priority_4"),))] == 500
    assert empty <= 2
    assert counter.round_trips == 2


def test_redis_outage_answers_up_0_logs_once_and_recovers(
    fresh_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(_env_file=None, redis_url=fresh_redis_server.url)  # type: ignore[call-arg]
    collector = QueueCollector(sync_client(settings), QueueKeys())
    assert scrape(collector)[("qworker_up", ())] == 1
    fresh_redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="qworker.metrics"):
        for _ in range(3):
            assert scrape(collector) == {("qworker_up", ()): 0}
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1
        assert "cannot read the queue from Redis" in errors[0].getMessage()
        fresh_redis_server.start()
        values = scrape(collector)
    assert values[("qworker_up", ())] == 1
    assert values[("qworker_queue_jobs", (("queue", "dead"),))] == 0
    assert any("answers again" in r.getMessage() for r in caplog.records)
