"""A job of a type this worker does not know waits for a worker that knows it (a rolling deploy
brings the new type's producers and workers up in some order), for a bounded time, and counts in
the statistics hash meanwhile; only then is it dead-lettered, saying which type and why."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Literal

import pytest

from qworker.clock import ManualClock
from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory
from qworker.keys import STAT_UNKNOWN_TYPE_WAITING
from qworker.service import QueueService
from tests.redis.conftest import MakeSettings, MakeWorker

RunBurst = Callable[..., Awaitable[Any]]

NEW_TYPE = "brand_new"


class NewParams(BaseJobParams):
    job_type: Literal["brand_new"] = "brand_new"


class NewJob(BaseJob[NewParams]):
    async def execute(self) -> bool:
        return True


@pytest.fixture
def new_type() -> Iterator[Callable[[bool], None]]:
    """``known(True)``: the type is registered (a new worker); ``known(False)``: an old one."""

    def known(yes: bool) -> None:
        if yes:
            JobFactory.register_job_type(NEW_TYPE, NewJob, NewParams)
        else:
            JobFactory.unregister_job_type(NEW_TYPE)

    known(True)
    yield known
    known(False)


async def waiting_count(service: QueueService) -> int:
    return int(await service.redis.hget(service.keys.stats, STAT_UNKNOWN_TYPE_WAITING) or 0)


async def burst(make_worker: MakeWorker, **overrides: Any) -> None:
    await asyncio.wait_for(make_worker(**overrides).run(), 10)


async def test_a_job_of_an_unknown_type_waits_for_a_worker_that_knows_it(
    service: QueueService,
    make_worker: MakeWorker,
    clock: ManualClock,
    new_type: Callable[[bool], None],
) -> None:
    job_id = await service.add_job({"job_type": NEW_TYPE})  # a new producer
    new_type(False)  # ... and only old workers so far

    for _ in range(3):
        await burst(make_worker)
        job = await service.get_job(job_id)
        assert job is not None and job.error is not None
        assert (job.attempts, job.error.type) == (0, "UnknownJobType")
        assert repr(NEW_TYPE) in job.error.message
        assert await service.redis.zscore(service.keys.scheduled, job_id) is not None
        assert await waiting_count(service) == 1  # counted once, however often it comes back
        assert (await service.get_queue_stats()).unknown_type_waiting == 1
        clock.advance(10)

    new_type(True)  # a new worker comes up
    await burst(make_worker)

    done = await service.get_job(job_id)
    assert done is not None and done.state == "done"
    stats = await service.get_queue_stats()
    assert (stats.total_processed, stats.total_dead, stats.scheduled) == (1, 0, 0)
    assert stats.unknown_type_waiting == 0
    assert await waiting_count(service) == 0


async def test_an_unknown_type_is_dead_lettered_once_its_grace_has_passed(
    service: QueueService,
    make_settings: MakeSettings,
    make_worker: MakeWorker,
    clock: ManualClock,
    new_type: Callable[[bool], None],
) -> None:
    settings = make_settings(unknown_type_grace_s=30)
    job_id = await service.add_job({"job_type": NEW_TYPE})
    new_type(False)

    await burst(make_worker, settings=settings)
    assert await waiting_count(service) == 1
    clock.advance(31)
    await burst(make_worker, settings=settings)

    dead = await service.get_dead(job_id)
    assert dead.error is not None and dead.error.type == "UnknownJobType"
    assert dead.error.message.startswith(f"no worker knew job type {NEW_TYPE!r} within 30s")
    assert "probe" in dead.error.message  # the types this worker knows
    stats = await service.get_queue_stats()
    assert (stats.total_dead, stats.total_failed, stats.scheduled) == (1, 0, 0)
    assert await waiting_count(service) == 0


async def test_no_grace_dead_letters_an_unknown_type_at_once(
    service: QueueService,
    make_settings: MakeSettings,
    make_worker: MakeWorker,
    new_type: Callable[[bool], None],
) -> None:
    job_id = await service.add_job({"job_type": NEW_TYPE})
    new_type(False)

    await burst(make_worker, settings=make_settings(unknown_type_grace_s=0))

    dead = await service.get_dead(job_id)
    assert dead.error is not None and dead.error.type == "UnknownJobType"
    assert await waiting_count(service) == 0
