"""A worker's record in the registry is whole or absent: the counts the watchdog writes never
make a record of their own, and a reader never fails on a record written in part.

A worker that stalls past its lease (a blocked event loop, a SIGSTOP, a slow host) comes back to
an expired record; the watchdog's next count write used to create a record holding only the
counts, and ``stats`` (or anything listing the workers) then failed on the missing host."""

from __future__ import annotations

from collections import Counter
from typing import cast

from qworker.clock import ManualClock
from qworker.execution import RunningJob
from qworker.scripts import ClaimedJob
from qworker.service import QueueService
from qworker.watchdog import Watchdog

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


async def test_a_record_written_in_part_is_left_out_of_the_list_not_forgotten(
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
    # The record that expired is forgotten; the one in part waits for its next heartbeat.
    assert set(await service.redis.zrange(registry, 0, -1)) == {WORKER_ID, "whole"}

    await service.redis.hset(service.keys.worker(WORKER_ID), mapping=whole_record(now_ms))
    listed = {worker.id: worker for worker in await service.list_workers()}
    assert set(listed) == {WORKER_ID, "whole"}
    assert listed[WORKER_ID].running == 1
