"""The whole life of jobs, run against whatever Redis the settings name: a cluster, a TLS server
as a restricted ACL user, a unix socket.

Enqueue, work, retry with backoff, dead letter, requeue, rate limit, scheduled jobs, stats, the
worker list and a full clear, each checked. Burst workers run in this process on a ManualClock,
so minutes of backoff and an hour of rate limit take no time.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from qworker.clock import ManualClock
from qworker.config import Settings
from qworker.models import QueueStats
from qworker.service import QueueService
from qworker.worker import Worker
from tests.distributed.jobs import LIMITED_PROBE, limited_probe
from tests.jobtypes import probe, read_events

JOB_MODULES = ["tests.jobtypes", "tests.distributed.jobs"]
RUN_TIMEOUT_S = 30.0
ROUND_S = 300  # more than any backoff of the probe's retries (60, 120, 240 s, +10% jitter)


async def burst(service: QueueService, clock: ManualClock, concurrency: int = 2) -> Worker:
    worker = Worker(
        service,
        settings=service.settings,
        concurrency=concurrency,
        burst=True,
        clock=clock,
        rng=random.Random(7),
        job_modules=JOB_MODULES,
    )
    await asyncio.wait_for(worker.run(), RUN_TIMEOUT_S)
    return worker


def done_ids(log_path: Path) -> list[str]:
    return [event.job_id for event in read_events(log_path, "done")]


def counts(stats: QueueStats) -> dict[str, int]:
    """The numbers the lifecycle checks, by name, so a failure shows them all."""
    return {
        "ready": stats.total_jobs,
        "in_flight": stats.in_flight,
        "retry": stats.retry,
        "scheduled": stats.scheduled,
        "parked": stats.parked,
        "dead_letter": stats.dead_letter,
        "processed": stats.total_processed,
        "failed": stats.total_failed,
        "dead": stats.total_dead,
    }


async def run_lifecycle(settings: Settings, log_path: Path) -> None:
    clock = ManualClock()
    async with QueueService(settings=settings, clock=clock) as service:
        ok_ids = await service.add_jobs([probe(log_path, tag=f"ok{i}") for i in range(3)], 2)
        failing = await service.add_job(probe(log_path, outcome="fail"), priority=1)
        doomed = await service.add_job(probe(log_path, outcome="permanent"), priority=3)
        limited = await service.add_jobs([limited_probe(log_path) for _ in range(3)], 4)
        later = await service.add_job(probe(log_path, tag="later"), delay_s=30)

        # First pass: the ready jobs run; one limited job of three; the failures part ways.
        await burst(service, clock)
        done = done_ids(log_path)
        # Which limited job gets the one slot is a race between the worker's two tasks.
        assert sorted(done) == sorted(ok_ids + [j for j in limited if j in done]), done
        assert len([job_id for job_id in done if job_id in limited]) == 1, done
        assert counts(await service.get_queue_stats()) == {
            "ready": 0, "in_flight": 0, "retry": 1, "scheduled": 1, "parked": 2,
            "dead_letter": 1, "processed": 4, "failed": 2, "dead": 1,
        }  # fmt: skip
        (rate,) = await service.get_rate_limit_stats()
        assert (rate.rate_key, rate.used_last_hour, rate.max_per_hour) == (LIMITED_PROBE, 1, 1)
        assert rate.next_allowed_ms == clock.now_ms() + 3_600_000

        # Retries come due one by one until the failing job is dead; the scheduled job runs.
        for _ in range(3):
            clock.advance(ROUND_S)
            await burst(service, clock)
        assert later in done_ids(log_path)
        assert counts(await service.get_queue_stats()) == {
            "ready": 0, "in_flight": 0, "retry": 0, "scheduled": 0, "parked": 2,
            "dead_letter": 2, "processed": 5, "failed": 5, "dead": 2,
        }  # fmt: skip
        dead = {record.id: record for record in await service.list_dead()}
        assert set(dead) == {failing, doomed}
        assert dead[failing].attempts == 4
        assert (await service.get_dead(doomed)).error is not None

        # An hour later the limiter lets one more limited job through.
        clock.advance(3600)
        await burst(service, clock)
        limited_done = [job_id for job_id in done_ids(log_path) if job_id in limited]
        assert len(limited_done) == len(set(limited_done)) == 2

        # A requeued dead job runs again (and, being doomed, dies again).
        result = await service.requeue_dead([doomed, "no-such-job"])
        assert (result.requeued, result.missing) == ([doomed], ["no-such-job"])
        await burst(service, clock)
        assert await service.retry_drain(include_not_due=True) == 0
        assert await service.list_workers() == []  # burst workers deregister when they stop
        stats = counts(await service.get_queue_stats())
        assert (stats["processed"], stats["dead"], stats["dead_letter"]) == (6, 3, 2), stats
        assert stats["parked"] == 1

        # Clearing everything leaves nothing of the namespace behind.
        await service.clear_queue(everything=True)
        assert set(counts(await service.get_queue_stats()).values()) == {0}
        assert await service.get_rate_limit_stats() == []
