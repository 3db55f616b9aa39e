"""The per-minute outcome counts behind the overview's chart: written by workers (from the
watchdog each second, and at shutdown), bounded by expiry, read as the last hour."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import tests.jobtypes  # noqa: F401 - registers the probe job type
from qworker.clock import ManualClock
from qworker.config import Settings
from qworker.service import QueueService
from qworker.throughput import (
    CHART_MINUTES,
    KEEP_S,
    MINUTE_MS,
    add_counts,
    new_counts,
    read_throughput,
)
from qworker.worker import Worker
from tests.jobtypes import probe


@pytest.fixture
async def service(redis_url: str, namespace: str) -> AsyncIterator[QueueService]:
    settings = Settings(redis_url=redis_url, namespace=namespace, _env_file=None)  # type: ignore[call-arg]
    async with QueueService(settings=settings) as service:
        yield service


def test_new_counts_are_what_was_not_written_yet() -> None:
    assert new_counts({"done": 5, "dead": 1, "parked": 4}, {"done": 3, "dead": 1}) == {"done": 2}
    assert new_counts({}, {}) == {}


async def test_a_burst_worker_counts_what_it_settled(service: QueueService, tmp_path: Path) -> None:
    log = tmp_path / "probe.log"
    for _ in range(3):
        await service.add_job(probe(log), 2)
    await service.add_job(probe(log, outcome="permanent"), 2)
    await Worker(service, burst=True, job_modules=["tests.jobtypes"]).run()
    minutes = await read_throughput(service.redis, service.keys, service.clock.now_ms())
    assert len(minutes) == CHART_MINUTES
    totals = {o: sum(m.counts[o] for m in minutes) for o in ("done", "dead", "retried")}
    assert totals == {"done": 3, "dead": 1, "retried": 0}
    keys = [service.keys.throughput(m.minute_ms // MINUTE_MS) for m in minutes if m.total]
    for key in keys:
        assert 0 < await service.redis.ttl(key) <= KEEP_S


async def test_a_running_worker_writes_its_counts_within_seconds(
    service: QueueService, tmp_path: Path
) -> None:
    worker = Worker(service, job_modules=["tests.jobtypes"], idle_poll_s=0.1)
    task = asyncio.create_task(worker.run())
    try:
        await service.add_job(probe(tmp_path / "probe.log"), 1)
        for _ in range(300):  # up to 30 s on a busy machine
            minutes = await read_throughput(service.redis, service.keys, service.clock.now_ms())
            if sum(m.counts["done"] for m in minutes) == 1:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the worker did not write its count while running")
        assert not task.done()
    finally:
        worker.request_stop()
        await task


async def test_only_the_last_hour_is_read(service: QueueService) -> None:
    clock = ManualClock(1_700_000_000_000)
    pipe = service.redis.pipeline(transaction=True)
    add_counts(pipe, service.keys, {"done": 2, "parked": 9}, clock.now_ms())
    await pipe.execute()
    clock.advance(30 * 60)
    pipe = service.redis.pipeline(transaction=True)
    add_counts(pipe, service.keys, {"dead": 1}, clock.now_ms())
    await pipe.execute()
    minutes = await read_throughput(service.redis, service.keys, clock.now_ms())
    assert [m.counts for m in minutes if m.total] == [
        {"done": 2, "retried": 0, "dead": 0, "canceled": 0},
        {"done": 0, "retried": 0, "dead": 1, "canceled": 0},
    ]
    clock.advance(45 * 60)  # the first minute is now more than an hour ago
    minutes = await read_throughput(service.redis, service.keys, clock.now_ms())
    assert [m.counts["dead"] for m in minutes if m.total] == [1]
