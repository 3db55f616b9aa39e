"""Leases: jobs of a dead worker come back, a job that keeps killing workers ends in the
dead-letter queue, and a worker that lost its lease (a zombie) can no longer move the job.

Workers here recover at once (``recovery_grace_s=0``): the grace a new worker waits before
recovering anybody's jobs has its own tests (test_recovery_grace.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from qworker.clock import ManualClock
from qworker.models import JobError
from qworker.policy import DEFAULT_MAX_RETRIES
from qworker.scripts import ClaimedJob
from qworker.service import QueueService
from tests.jobtypes import probe, read_events
from tests.redis.conftest import MakeSettings, MakeWorker
from tests.redis.faulty_jobs import faulty

RunBurst = Callable[..., Awaitable[Any]]

LEASE_EXPIRED = JobError(type="LeaseExpired", message="lost").model_dump_json()


def lease_ms(service: QueueService) -> int:
    return int(service.settings.lease_seconds * 1000)


async def claim_as(
    service: QueueService, clock: ManualClock, worker_id: str, max_jobs: int = 1
) -> list[ClaimedJob]:
    """Claim like a worker would, then do nothing more with the jobs: a worker that died."""
    call = service.scripts.claim(
        worker_id, clock.now_ms(), lease_ms(service), max_jobs, f"{worker_id}-base"
    )
    claimed: list[ClaimedJob] = (await service.runner.run(call)).jobs
    return claimed


async def recover(service: QueueService, now_ms: int) -> tuple[int, int]:
    call = service.scripts.recover(now_ms, 100, DEFAULT_MAX_RETRIES, LEASE_EXPIRED, 60_000)
    result: tuple[int, int] = await service.runner.run(call)
    return result


async def test_job_of_a_dead_worker_is_recovered_after_its_lease(
    service: QueueService, run_burst: RunBurst, clock: ManualClock, probe_log: Path
) -> None:
    job_id = await service.add_job(probe(probe_log))
    claimed = await claim_as(service, clock, "dead-worker")
    assert [job.id for job in claimed] == [job_id]

    # While the lease holds, the job belongs to the dead worker: nobody else runs it.
    clock.advance(service.settings.lease_seconds - 1)
    await run_burst(recovery_grace_s=0)
    assert read_events(probe_log) == []
    assert (await service.get_queue_stats()).in_flight == 1

    clock.advance(2)
    await run_burst(recovery_grace_s=0)

    assert [(e.kind, e.job_id, e.attempt) for e in read_events(probe_log)] == [
        ("start", job_id, 2),  # the lost run counts as attempt 1
        ("done", job_id, 2),
    ]
    stats = await service.get_queue_stats()
    assert (stats.recovered, stats.total_processed, stats.in_flight, stats.total_jobs) == (
        1,
        1,
        0,
        0,
    )


async def test_job_whose_lease_expires_four_times_is_dead_lettered(
    service: QueueService, run_burst: RunBurst, clock: ManualClock, probe_log: Path
) -> None:
    job_id = await service.add_job(probe(probe_log), priority=1)

    for expiry in range(1, DEFAULT_MAX_RETRIES + 1):
        assert [job.id for job in await claim_as(service, clock, f"dies-{expiry}")] == [job_id]
        clock.advance(service.settings.lease_seconds + 1)
        assert await recover(service, clock.now_ms()) == (1, 0)
        job = await service.get_job(job_id)
        assert job is not None
        assert job.attempts == expiry
        assert await service.redis.lrange(service.keys.priority(1), 0, -1) == [job_id]

    await claim_as(service, clock, "dies-4")
    clock.advance(service.settings.lease_seconds + 1)
    await run_burst(
        recovery_grace_s=0
    )  # the worker's own maintenance finds the fourth expired lease

    assert read_events(probe_log) == []  # never run again: it killed every worker so far
    dead = await service.get_dead(job_id)
    assert dead.attempts == DEFAULT_MAX_RETRIES + 1
    assert dead.error is not None
    assert dead.error.type == "LeaseExpired"
    assert dead.error.message
    stats = await service.get_queue_stats()
    assert (stats.recovered, stats.total_dead, stats.dead_letter) == (4, 1, 1)
    assert (stats.in_flight, stats.total_jobs) == (0, 0)


@pytest.mark.parametrize("successor", [False, True], ids=["requeued", "claimed-again"])
async def test_zombie_cannot_settle_a_recovered_job(
    service: QueueService, clock: ManualClock, probe_log: Path, successor: bool
) -> None:
    k, s = service.keys, service.scripts
    job_id = await service.add_job(probe(probe_log), priority=2)
    (claimed,) = await claim_as(service, clock, "zombie")
    zombie = f"zombie:{claimed.claims}"
    clock.advance(service.settings.lease_seconds + 1)
    assert await recover(service, clock.now_ms()) == (1, 0)
    if successor:
        (again,) = await claim_as(service, clock, "successor")
        assert again.id == job_id
    job_before = await service.redis.hgetall(k.job(job_id))
    inflight_before = await service.redis.zrange(k.inflight, 0, -1, withscores=True)
    now_ms = clock.now_ms()
    run = service.runner.run

    assert await run(s.renew(now_ms, lease_ms(service), [(job_id, zombie)])) == [(job_id, zombie)]
    keep = {"keep_ms": 60_000}
    assert await run(s.complete([(job_id, zombie, "")], now_ms, 60_000)) == [job_id]
    retry = s.defer(
        k.retry, job_id, zombie, now_ms, 2, LEASE_EXPIRED, now_ms, state="retry", **keep
    )
    assert await run(retry) == 0
    park = s.defer(k.parked, job_id, zombie, now_ms, None, "", now_ms, state="parked", **keep)
    assert await run(park) == 0
    bury = s.bury(job_id, zombie, 2, LEASE_EXPIRED, now_ms, attempt_failed=True, **keep)
    assert await run(bury) == 0
    assert await run(s.hand_back([(job_id, zombie, True)], 1, LEASE_EXPIRED, now_ms, 0)) == (0, 0)
    assert await run(s.checkpoint(job_id, zombie, "cp:tweet_id", "1")) == 0

    assert await service.redis.hgetall(k.job(job_id)) == job_before
    assert await service.redis.zrange(k.inflight, 0, -1, withscores=True) == inflight_before
    ready = await service.redis.lrange(k.priority(2), 0, -1)
    assert ready == ([] if successor else [job_id])
    stats = await service.get_queue_stats()
    assert (stats.retry, stats.parked, stats.dead_letter) == (0, 0, 0)
    assert (stats.total_processed, stats.total_failed, stats.total_dead) == (0, 0, 0)


async def wait_for_event(path: Path, kind: str, count: int = 1, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(read_events(path, kind)) < count:
        assert time.monotonic() < deadline, f"no {count} {kind!r} event(s) in {timeout_s}s"
        await asyncio.sleep(0.01)


async def test_worker_that_lost_its_lease_cancels_the_job_and_does_not_settle_it(
    make_settings: MakeSettings,
    make_worker: MakeWorker,
    service: QueueService,
    clock: ManualClock,
    probe_log: Path,
) -> None:
    """The job is recovered while it still runs (its worker stalled past the lease, as far as
    the rest of the world knows). The heartbeat learns it at its next renewal and the worker
    cancels the run at once, a zombie that could never settle; it is not handed back either.
    The recovered copy runs again, and the queue counts one success, one recovery."""
    settings = make_settings(lease_seconds=0.3)  # heartbeat every 0.1 s
    worker = make_worker(settings=settings, concurrency=1)
    job_id = await service.add_job(faulty(probe_log, sleep_s=30))  # sleeps on attempt 1 only
    task = asyncio.create_task(worker.run())
    try:
        await wait_for_event(probe_log, "start")
        # Expire the lease from the rest of the world's point of view, whatever the heartbeat
        # renewed it to (it renews relative to the unmoving ManualClock).
        assert await recover(service, clock.now_ms() + 60_000) == (1, 0)
        await asyncio.wait_for(task, 10)  # not 30 s: the zombie run was cancelled
    finally:
        task.cancel()

    assert [(e.kind, e.job_id, e.attempt) for e in read_events(probe_log)] == [
        ("start", job_id, 1),  # the zombie run, cancelled
        ("start", job_id, 2),  # the recovered copy
        ("done", job_id, 2),
    ]
    stats = await service.get_queue_stats()
    assert (stats.total_processed, stats.recovered, stats.total_failed) == (1, 1, 0)
    assert (stats.in_flight, stats.total_jobs, stats.total_dead) == (0, 0, 0)
