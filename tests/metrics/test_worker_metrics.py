"""What a worker counts about itself: every attempt once, by type and outcome; durations and
waits; the running gauge; jobs handed back at a stop."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from qworker.clock import ManualClock
from qworker.config import Settings
from qworker.metrics.worker import WorkerMetrics
from qworker.service import QueueService
from qworker.worker import Worker
from tests.metrics.jobtypes import METERED, metered

RUN_TIMEOUT_S = 30.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def service(
    redis_url: str, namespace: str, clock: ManualClock
) -> AsyncIterator[QueueService]:
    settings = Settings(_env_file=None, redis_url=redis_url, namespace=namespace)  # type: ignore[call-arg]
    async with QueueService(settings=settings, clock=clock) as queue_service:
        yield queue_service


@pytest.fixture
def metrics() -> WorkerMetrics:
    return WorkerMetrics(CollectorRegistry())


def make_worker(
    service: QueueService, clock: ManualClock, metrics: WorkerMetrics, **options: Any
) -> Worker:
    options = {"burst": True, **options}
    return Worker(
        service, settings=service.settings, clock=clock, rng=random.Random(1),
        job_modules=["tests.metrics.jobtypes"], metrics=metrics, **options,
    )  # fmt: skip


def value(metrics: WorkerMetrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def outcomes(metrics: WorkerMetrics) -> dict[str, float]:
    names = ("done", "retried", "dead", "parked", "timeout", "canceled", "handed_back")
    counts = {o: value(metrics, "qworker_jobs_total", job_type=METERED, outcome=o) for o in names}
    return {name: count for name, count in counts.items() if count}


async def test_every_attempt_counts_once_by_outcome(
    service: QueueService, clock: ManualClock, metrics: WorkerMetrics
) -> None:
    await service.add_jobs([metered("ok")] * 5 + [metered("fail_once")] * 3, priority=2)
    await service.add_jobs([metered("permanent")] * 2, priority=3)
    clock.advance(2)  # every job waited two seconds before its first start
    worker = make_worker(service, clock, metrics, concurrency=4)
    await asyncio.wait_for(worker.run(), RUN_TIMEOUT_S)
    assert outcomes(metrics) == {"done": 5, "retried": 3, "dead": 2}
    clock.advance(1)  # the retries are due
    await asyncio.wait_for(make_worker(service, clock, metrics).run(), RUN_TIMEOUT_S)
    assert outcomes(metrics) == {"done": 8, "retried": 3, "dead": 2}
    attempts = 5 + 3 * 2 + 2
    assert value(metrics, "qworker_job_duration_seconds_count", job_type=METERED) == attempts
    assert value(metrics, "qworker_job_wait_seconds_count", job_type=METERED) == attempts
    # First attempts waited 2 s (the first run) or 3 s; retries 1 s minus their 50 ms backoff.
    wait_sum = value(metrics, "qworker_job_wait_seconds_sum", job_type=METERED)
    assert wait_sum == pytest.approx(10 * 2 + 3 * 0.95)
    assert value(metrics, "qworker_worker_concurrency") == 1
    assert value(metrics, "qworker_jobs_running") == 0
    assert value(metrics, "qworker_redis_errors_total") == 0


async def test_an_overrun_counts_as_timeout(
    service: QueueService, clock: ManualClock, metrics: WorkerMetrics
) -> None:
    await service.add_job(metered("slow"))
    await asyncio.wait_for(make_worker(service, clock, metrics).run(), RUN_TIMEOUT_S)
    assert outcomes(metrics) == {"timeout": 1}


async def test_a_stop_hands_back_a_running_job_and_the_gauge_saw_it(
    service: QueueService, clock: ManualClock, metrics: WorkerMetrics
) -> None:
    await service.add_job(metered("slow"))
    worker = make_worker(service, clock, metrics, burst=False)
    task = asyncio.create_task(worker.run())
    for _ in range(500):
        if value(metrics, "qworker_jobs_running") == 1:
            break
        await asyncio.sleep(0.01)
    assert value(metrics, "qworker_jobs_running") == 1
    worker.request_stop(immediate=True)
    await asyncio.wait_for(task, RUN_TIMEOUT_S)
    assert outcomes(metrics) == {"handed_back": 1}
    assert value(metrics, "qworker_jobs_running") == 0


async def test_an_unregistered_type_is_one_label(
    service: QueueService, clock: ManualClock, metrics: WorkerMetrics
) -> None:
    await service.redis.lpush(service.keys.priority(3), '{"job_type": "no such [type]"}')
    await asyncio.wait_for(make_worker(service, clock, metrics).run(), RUN_TIMEOUT_S)
    labels = {
        sample.labels["job_type"]
        for family in metrics.registry.collect()
        if family.name == "qworker_jobs"
        for sample in family.samples
    }
    assert labels == {"unknown"}
