"""A job whose own code fails outside execute() (a hook, a bad answer) fails an attempt: it is
retried with backoff and then dead-lettered with the reason, never run in a loop. And whatever
hands a job back, a job that started can be handed back only so often."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from qworker.clock import ManualClock
from qworker.execution import JobExecutor, RunningJob
from qworker.jobs.base import BaseJob
from qworker.service import QueueService
from tests.jobtypes import read_events
from tests.redis.conftest import MakeSettings, MakeWorker
from tests.redis.faulty_jobs import faulty

RunBurst = Callable[..., Awaitable[Any]]

# A burst worker settles one job in milliseconds; a job run in a loop never lets it finish.
BURST_TIMEOUT_S = 5.0
TWO_HOURS_S = 7200


async def burst(run_burst: RunBurst, **overrides: Any) -> Any:
    return await asyncio.wait_for(run_burst(**overrides), BURST_TIMEOUT_S)


@pytest.mark.parametrize(
    ("broken", "extra", "hook"),
    [
        ("get_rate_limit", {}, "get_rate_limit() failed: ZeroDivisionError"),
        ("get_rate_limit_key", {}, "get_rate_limit_key() failed: KeyError"),
        ("timeout_s", {}, "timeout_s failed: 'soon' is not a number of seconds"),
        ("reset_at", {"reset_at": "soon"}, "RateLimitedJobError failed: reset_at 'soon'"),
        ("reset_at", {"reset_at": [1]}, "RateLimitedJobError failed: reset_at [1] is no time"),
    ],
)
async def test_a_failing_hook_costs_an_attempt_then_dead_letters_the_job(
    service: QueueService,
    run_burst: RunBurst,
    clock: ManualClock,
    probe_log: Path,
    broken: str,
    extra: dict[str, Any],
    hook: str,
) -> None:
    job_id = await service.add_job(faulty(probe_log, broken=broken, max_retries=1, **extra))

    await burst(run_burst)

    job = await service.get_job(job_id)
    assert job is not None and job.error is not None
    assert (job.attempts, job.error.type) == (1, "JobHookFailed")
    assert job.error.message.startswith(hook)
    due_ms = await service.redis.zscore(service.keys.retry, job_id)
    assert due_ms is not None and due_ms >= clock.now_ms() + 60_000  # backed off

    clock.advance(TWO_HOURS_S)
    await burst(run_burst)

    dead = await service.get_dead(job_id)
    assert dead.attempts == 2
    assert dead.error is not None and dead.error.message.startswith(hook)
    stats = await service.get_queue_stats()
    assert (stats.total_failed, stats.total_dead, stats.in_flight, stats.retry) == (2, 1, 0, 0)
    # A hook that fails before execute() never lets it start; reset_at fails after it ran.
    starts = len(read_events(probe_log, "start"))
    assert starts == (2 if broken == "reset_at" else 0)


@pytest.mark.parametrize("broken", ["get_retry_config", "bad_retry_config"])
async def test_a_failing_get_retry_config_falls_back_to_the_default_policy(
    service: QueueService, run_burst: RunBurst, clock: ManualClock, probe_log: Path, broken: str
) -> None:
    job_id = await service.add_job(faulty(probe_log, broken=broken, message_chars=10))

    await burst(run_burst)

    # PermanentJobError: dead at once, whatever the policy; the record is the job's own error.
    dead = await service.get_dead(job_id)
    assert dead.error is not None and dead.error.type == "PermanentJobError"
    assert dead.attempts == 1


async def test_a_failing_get_retry_config_still_retries_with_default_backoff(
    service: QueueService, run_burst: RunBurst, clock: ManualClock, probe_log: Path
) -> None:
    job_id = await service.add_job(faulty(probe_log, broken="get_retry_config", fail=True))

    await burst(run_burst)

    job = await service.get_job(job_id)
    assert job is not None and job.error is not None
    assert (job.attempts, job.error.type) == (1, "RuntimeError")
    due_ms = await service.redis.zscore(service.keys.retry, job_id)
    assert due_ms is not None
    assert clock.now_ms() + 60_000 <= due_ms <= clock.now_ms() + 66_000  # the default 1 minute


async def test_a_job_that_trips_qworker_every_time_is_dead_lettered_after_max_handbacks(
    make_settings: MakeSettings,
    make_worker: MakeWorker,
    service: QueueService,
    probe_log: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in qworker's own code around a job hands the job back, uncounted as an attempt;
    that must not loop either."""

    async def broken_gate(self: JobExecutor, job: BaseJob[Any], running: RunningJob) -> bool:
        raise RuntimeError("a bug in qworker")

    monkeypatch.setattr(JobExecutor, "_gate_and_execute", broken_gate)
    job_id = await service.add_job(faulty(probe_log))
    worker = make_worker(settings=make_settings(max_handbacks=3), burst=False)
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(BURST_TIMEOUT_S):  # a loop never gets there
            while await service.redis.zscore(service.keys.dead_letter, job_id) is None:
                await asyncio.sleep(0.01)
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 10)

    dead = await service.get_dead(job_id)
    assert dead.attempts == 0  # never charged an attempt: the job did nothing wrong
    assert dead.error is not None and dead.error.type == "HandedBack"
    assert dead.error.message.startswith("handed back 3 times without finishing")
    assert await service.redis.hget(service.keys.job(job_id), "handbacks") == "3"
    stats = await service.get_queue_stats()
    assert (stats.total_dead, stats.total_failed, stats.in_flight, stats.total_jobs) == (1, 0, 0, 0)


async def wait_for_starts(path: Path, count: int) -> None:
    async with asyncio.timeout(10):
        while len(read_events(path, "start")) < count:
            await asyncio.sleep(0.01)


async def test_only_jobs_that_started_use_up_their_hand_backs_at_a_stop(
    make_settings: MakeSettings, make_worker: MakeWorker, service: QueueService, probe_log: Path
) -> None:
    """Stopped twice while it runs, a job is dead-lettered (max_handbacks=2); the jobs that
    only waited behind it are handed back as often as that, free."""
    settings = make_settings(max_handbacks=2)
    running_id, *waiting_ids = await service.add_jobs(
        [faulty(probe_log, sleep_s=30) for _ in range(3)]
    )
    for stop in (1, 2):
        worker = make_worker(settings=settings, burst=False, concurrency=1, prefetch=2)
        task = asyncio.create_task(worker.run())
        await wait_for_starts(probe_log, stop)
        worker.request_stop(immediate=True)
        await asyncio.wait_for(task, 10)

    assert {e.job_id for e in read_events(probe_log, "start")} == {running_id}
    dead = await service.get_dead(running_id)
    assert dead.error is not None and dead.error.type == "HandedBack"
    assert dead.attempts == 0
    ready = await service.redis.lrange(service.keys.priority(3), 0, -1)
    assert ready == waiting_ids[::-1]  # still next, in their order
    for job_id in waiting_ids:
        assert await service.redis.hget(service.keys.job(job_id), "handbacks") is None
