"""A worker's record in the registry is whole or absent: the counts the watchdog writes never
make a record of their own, and a reader never fails on a record written in part.

A worker that stalls past its lease (a blocked event loop, a SIGSTOP, a slow host) comes back to
an expired record; the watchdog's next count write used to create a record holding only the
counts, and ``stats`` (or anything listing the workers) then failed on the missing host."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from qworker.clock import ManualClock
from qworker.execution import RunningJob
from qworker.scripts import ClaimedJob
from qworker.service import QueueService
from qworker.throughput import minute_of
from qworker.watchdog import Watchdog
from qworker.worker import Worker
from tests.jobtypes import probe
from tests.redis.conftest import JOB_MODULES, MakeSettings

LEASE_MS = 30_000
WORKER_ID = "host-1:123:abc"


def holding(service: QueueService, clock: ManualClock, jobs: list[RunningJob]) -> Watchdog:
    return Watchdog(
        service=service,
        worker_id=WORKER_ID,
        lease_ms=LEASE_MS,
        clock=clock,
        outcomes=Counter(),
        held=lambda: jobs,
        prefetched=lambda: 0,
        cancel=lambda running: None,
    )


def running_job(job_id: str) -> RunningJob:
    return RunningJob(
        claimed=ClaimedJob(job_id, 1, {}), owner="w:1", priority=2, attempt=1, started=0.0
    )


def whole_record(now_ms: int) -> dict[str, str | int]:
    return {"host": "host-1", "pid": 123, "started_at_ms": now_ms, "last_seen_ms": now_ms}


async def test_counts_are_not_written_into_an_expired_record(
    service: QueueService, clock: ManualClock
) -> None:
    worker_key = service.keys.worker(WORKER_ID)
    watchdog = holding(service, clock, [running_job("a"), running_job("b")])

    await watchdog._watch_cancels_and_counts()
    assert await service.redis.exists(worker_key) == 0

    # The heartbeat writes the record again: the counts follow at the next look.
    await service.redis.hset(worker_key, mapping=whole_record(clock.now_ms()))
    await watchdog._watch_cancels_and_counts()
    record = cast(dict[str, str], await service.redis.hgetall(worker_key))
    assert (record["running"], record["prefetched"]) == ("2", "0")
    assert 0 < await service.redis.pttl(worker_key) <= LEASE_MS


async def test_a_record_written_anew_during_a_look_gets_the_counts_at_the_next(
    service: QueueService, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat writes the record anew while a look's write is on its way (into the old
    record, which was then lost): that write does not count as shown."""
    worker_key = service.keys.worker(WORKER_ID)
    await service.redis.hset(worker_key, mapping=whole_record(clock.now_ms()))
    watchdog = holding(service, clock, [running_job("a")])
    make_pipeline = service.redis.pipeline

    def pipeline_meeting_a_rewrite(*args: Any, **kwargs: Any) -> Any:
        pipe = make_pipeline(*args, **kwargs)
        execute = pipe.execute

        async def then_rewritten(*a: Any, **kw: Any) -> Any:
            replies = await execute(*a, **kw)
            await service.redis.hdel(worker_key, "running", "prefetched")  # the record anew
            watchdog.show_counts_again()
            return replies

        pipe.execute = then_rewritten
        return pipe

    with monkeypatch.context() as patch:
        patch.setattr(service.redis, "pipeline", pipeline_meeting_a_rewrite)
        await watchdog._watch_cancels_and_counts()
    assert await service.redis.hget(worker_key, "running") is None
    await watchdog._watch_cancels_and_counts()
    assert await service.redis.hget(worker_key, "running") == "1"


async def test_counts_are_written_once_redis_has_the_scripts_again(
    service: QueueService, clock: ManualClock
) -> None:
    worker_key = service.keys.worker(WORKER_ID)
    await service.redis.hset(worker_key, mapping=whole_record(clock.now_ms()))
    await service.redis.script_flush()
    watchdog = holding(service, clock, [running_job("a")])

    await watchdog._watch_cancels_and_counts()  # NOSCRIPT: the scripts are loaded again
    await watchdog._watch_cancels_and_counts()
    assert await service.redis.hget(worker_key, "running") == "1"


async def test_the_per_minute_counts_go_in_once_when_another_read_fails(
    service: QueueService, clock: ManualClock
) -> None:
    """The look's pipeline holds the cancel check, the counts and the per-minute increments;
    an error of one (here a key of the wrong type) must not make the next look add the same
    outcomes again."""
    await service.redis.set(service.keys.cancel_requests, "not a set")
    watchdog = holding(service, clock, [running_job("a")])
    watchdog.outcomes.update(done=3)
    for _look in range(2):
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await watchdog._watch_cancels_and_counts()
    minute = service.keys.throughput(minute_of(clock.now_ms()))
    assert await service.redis.hgetall(minute) == {"done": "3"}


async def test_a_record_missing_or_in_part_is_left_out_of_the_list_not_forgotten(
    service: QueueService, clock: ManualClock
) -> None:
    now_ms = clock.now_ms()
    registry = service.keys.workers
    await service.redis.zadd(registry, {WORKER_ID: now_ms, "gone": now_ms, "whole": now_ms})
    await service.redis.hset(
        service.keys.worker(WORKER_ID), mapping={"running": 1, "prefetched": 0}
    )
    await service.redis.hset(service.keys.worker("whole"), mapping=whole_record(now_ms))

    assert [worker.id for worker in await service.list_workers()] == ["whole"]
    # Neither is removed from the registry: either worker may be writing its record again now
    # (the heartbeats prune the registry of the long gone).
    assert set(await service.redis.zrange(registry, 0, -1)) == {WORKER_ID, "gone", "whole"}

    await service.redis.hset(service.keys.worker(WORKER_ID), mapping=whole_record(now_ms))
    listed = {worker.id: worker for worker in await service.list_workers()}
    assert set(listed) == {WORKER_ID, "whole"}
    assert listed[WORKER_ID].running == 1


async def test_a_record_written_anew_gets_its_counts_back(
    make_settings: MakeSettings, probe_log: Path
) -> None:
    """The record expired while the worker ran a job (a stall, a Redis restart): the heartbeat
    writes it anew, and the watchdog writes the counts into it again, though they never
    changed."""
    async with QueueService(settings=make_settings()) as service:
        await service.add_job(probe(probe_log, sleep_s=30))
        worker = Worker(service, settings=service.settings, job_modules=JOB_MODULES)
        task = asyncio.create_task(worker.run())
        try:
            worker_key = service.keys.worker(worker.worker_id)

            async def running_shown() -> bool:
                return await service.redis.hget(worker_key, "running") == "1"

            await wait_until(running_shown)
            await service.redis.delete(worker_key)
            assert worker._heartbeat is not None
            worker._heartbeat.beat_now()
            await wait_until(running_shown)
            [listed] = await service.list_workers()
            assert (listed.id, listed.running) == (worker.worker_id, 1)
        finally:
            worker.request_stop(immediate=True)
            await asyncio.wait_for(task, 10)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
