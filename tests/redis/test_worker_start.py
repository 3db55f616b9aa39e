"""A worker whose Redis is unreachable at start keeps trying (so a service manager's start limit
never gives up on it), says so at each attempt with the password masked, and stops cleanly when
told to meanwhile; a burst worker gives up at once. Its last line counts every job it settled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from qworker.clock import ManualClock
from qworker.errors import RedisUnavailable
from qworker.service import QueueService
from qworker.worker import Worker
from tests.jobtypes import read_events
from tests.redis.conftest import JOB_MODULES, make_test_settings
from tests.redis.faulty_jobs import faulty
from tests.redis_server import RedisServer

RunBurst = Callable[..., Awaitable[Any]]


def attempts_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "Redis not reachable" in r.getMessage()
    ]


async def wait_for_attempts(caplog: pytest.LogCaptureFixture, count: int) -> None:
    async with asyncio.timeout(10):
        while len(attempts_logged(caplog)) < count:
            await asyncio.sleep(0.01)


def make_worker(url: str, namespace: str, *, burst: bool = False) -> Worker:
    settings = make_test_settings(url, namespace)
    service = QueueService(settings=settings, clock=ManualClock())
    return Worker(service, settings=settings, burst=burst, job_modules=JOB_MODULES)


async def test_a_worker_keeps_trying_until_redis_is_up_then_works(
    fresh_redis_server: RedisServer,
    namespace: str,
    probe_log: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fresh_redis_server.stop()
    worker = make_worker(fresh_redis_server.url, namespace)
    with caplog.at_level(logging.WARNING, logger="qworker.worker"):
        task = asyncio.create_task(worker.run())
        try:
            await wait_for_attempts(caplog, 3)
            assert not task.done(), "the worker gave up"
            fresh_redis_server.start()
            job_id = await worker.service.add_job(faulty(probe_log))
            async with asyncio.timeout(10):
                while not read_events(probe_log, "done"):
                    await asyncio.sleep(0.01)
        finally:
            worker.request_stop()
            await asyncio.wait_for(task, 10)
            await worker.service.close()

    first, second, *_ = attempts_logged(caplog)
    assert first.startswith("Redis not reachable (attempt 1): cannot reach Redis at ")
    assert second.startswith("Redis not reachable (attempt 2): ")
    assert fresh_redis_server.url in first
    assert [e.job_id for e in read_events(probe_log, "done")] == [job_id]


async def test_a_stop_while_waiting_for_redis_stops_cleanly_and_masks_the_password(
    fresh_redis_server: RedisServer, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    fresh_redis_server.stop()
    url = fresh_redis_server.url.replace("redis://", "redis://:s3cret@")
    worker = make_worker(url, namespace)
    with caplog.at_level(logging.INFO, logger="qworker.worker"):
        task = asyncio.create_task(worker.run())
        await wait_for_attempts(caplog, 2)
        worker.request_stop()
        await asyncio.wait_for(task, 5)  # returns: no exception, no exit 1
        await worker.service.close()

    assert all("redis://:***@127.0.0.1" in line for line in attempts_logged(caplog))
    assert "s3cret" not in caplog.text


async def test_a_burst_worker_gives_up_at_once(
    fresh_redis_server: RedisServer, namespace: str
) -> None:
    fresh_redis_server.stop()
    worker = make_worker(fresh_redis_server.url, namespace, burst=True)
    with pytest.raises(RedisUnavailable, match="cannot reach Redis"):
        await asyncio.wait_for(worker.run(), 5)
    await worker.service.close()


async def test_the_last_line_counts_every_job_the_worker_settled(
    service: QueueService,
    run_burst: RunBurst,
    probe_log: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await service.add_jobs(
        [
            faulty(probe_log),
            faulty(probe_log),
            faulty(probe_log, fail=True),
            faulty(probe_log, message_chars=5),  # permanent: dead at once
            faulty(probe_log, broken="reset_at", reset_at=0),  # parked
        ]
    )
    with caplog.at_level(logging.INFO, logger="qworker.worker"):
        worker = await run_burst()

    last = caplog.records[-1].getMessage()
    assert last.endswith("stopped after 5 job(s): 2 done, 1 retried, 1 dead, 1 parked")
    assert worker.jobs_done == 2
