"""A job's life under a ManualClock: success, retries with backoff, and the dead-letter queue.

Burst workers run until nothing is ready; the test moves the clock to make retries due, so
minutes of backoff take no time at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from qworker.clock import ManualClock
from qworker.models import JobRecord
from qworker.service import QueueService
from tests.jobtypes import ProbeParams, probe, read_events

RunBurst = Callable[..., Awaitable[Any]]

BACKOFF_S = (60, 120, 240)  # the seed's retry delays: 1, 2 and 4 minutes
JITTER = 0.1


async def retry_score_ms(service: QueueService, job_id: str) -> int | None:
    score = await service.redis.zscore(service.keys.retry, job_id)
    return None if score is None else int(score)


async def record(service: QueueService, job_id: str) -> JobRecord:
    job = await service.get_job(job_id)
    assert job is not None, f"job {job_id} has no hash"
    return job


def clock_ms(service: QueueService) -> int:
    return service.clock.now_ms()


def attempts_started(probe_log: Path, job_id: str) -> list[int]:
    return [e.attempt for e in read_events(probe_log, "start") if e.job_id == job_id]


async def test_successful_job_is_done_and_counted(
    service: QueueService, run_burst: RunBurst, probe_log: Path
) -> None:
    job_id = await service.add_job(probe(probe_log), priority=3)

    worker = await run_burst()

    assert [(e.kind, e.job_id, e.attempt) for e in read_events(probe_log)] == [
        ("start", job_id, 1),
        ("done", job_id, 1),
    ]
    assert worker.jobs_done == 1
    done = await record(service, job_id)  # kept, readable, for QWORKER_KEEP_FINISHED_S
    assert (done.state, done.attempts, done.finished_at_ms) == ("done", 1, clock_ms(service))
    keep_ms = service.settings.keep_finished_ms
    assert 0 < await service.redis.pttl(service.keys.job(job_id)) <= keep_ms
    stats = await service.get_queue_stats()
    assert (stats.total_processed, stats.total_failed, stats.total_dead) == (1, 0, 0)
    assert (stats.total_jobs, stats.in_flight, stats.retry, stats.dead_letter) == (0, 0, 0, 0)


async def test_always_failing_job_backs_off_then_goes_to_dead_letter(
    service: QueueService, run_burst: RunBurst, clock: ManualClock, probe_log: Path
) -> None:
    job_id = await service.add_job(probe(probe_log, outcome="fail"), priority=2)

    for attempt, delay_s in enumerate(BACKOFF_S, start=1):
        failed_at_ms = clock.now_ms()
        await run_burst()

        due_ms = await retry_score_ms(service, job_id)
        assert due_ms is not None, f"attempt {attempt} did not schedule a retry"
        assert (
            failed_at_ms + delay_s * 1000 <= due_ms <= failed_at_ms + delay_s * 1000 * (1 + JITTER)
        )
        job = await record(service, job_id)
        assert job.attempts == attempt
        assert job.failed_at_ms == failed_at_ms
        assert job.error is not None
        assert (job.error.type, job.error.message) == ("RuntimeError", f"boom on attempt {attempt}")
        stats = await service.get_queue_stats()
        assert (stats.retry, stats.total_jobs, stats.in_flight) == (1, 0, 0)

        # One millisecond early the retry is not due: a worker leaves it where it is.
        clock.set_ms(due_ms - 1)
        await run_burst()
        assert attempts_started(probe_log, job_id) == list(range(1, attempt + 1))
        assert await retry_score_ms(service, job_id) == due_ms

        clock.set_ms(due_ms)

    await run_burst()  # attempt 4 of 4: max_retries=3 is used up

    assert attempts_started(probe_log, job_id) == [1, 2, 3, 4]
    assert await retry_score_ms(service, job_id) is None
    dead = await service.get_dead(job_id)
    assert dead.attempts == 4
    assert dead.priority == 2
    assert dead.error is not None
    assert (dead.error.type, dead.error.message) == ("RuntimeError", "boom on attempt 4")
    assert "Traceback" in dead.error.traceback
    assert "jobtypes.py" in dead.error.traceback  # the job's own frame is kept
    assert dead.params == ProbeParams.model_validate(probe(probe_log, outcome="fail")).model_dump()
    stats = await service.get_queue_stats()
    assert (stats.total_failed, stats.total_dead, stats.total_processed) == (4, 1, 0)
    assert (stats.dead_letter, stats.retry, stats.in_flight, stats.total_jobs) == (1, 0, 0, 0)


async def test_permanent_error_goes_straight_to_dead_letter(
    service: QueueService, run_burst: RunBurst, probe_log: Path
) -> None:
    job_id = await service.add_job(probe(probe_log, outcome="permanent"))

    await run_burst()

    dead = await service.get_dead(job_id)
    assert dead.attempts == 1
    assert dead.error is not None
    assert dead.error.type == "PermanentJobError"
    assert dead.error.message == "never works (attempt 1)"
    stats = await service.get_queue_stats()
    assert (stats.retry, stats.dead_letter, stats.total_failed, stats.total_dead) == (0, 1, 1, 1)


async def test_retry_after_overrides_backoff(
    service: QueueService, run_burst: RunBurst, clock: ManualClock, probe_log: Path
) -> None:
    job_id = await service.add_job(probe(probe_log, outcome="retry_after"))
    failed_at_ms = clock.now_ms()

    await run_burst()

    assert await retry_score_ms(service, job_id) == failed_at_ms + 5_000  # no jitter added
    job = await record(service, job_id)
    assert job.attempts == 1
    assert job.error is not None
    assert (job.error.type, job.error.message) == ("RetryableJobError", "come back later")

    clock.advance(5)
    await run_burst()
    assert attempts_started(probe_log, job_id) == [1, 2]


async def test_execute_returning_false_is_a_failed_attempt(
    service: QueueService, run_burst: RunBurst, clock: ManualClock, probe_log: Path
) -> None:
    job_id = await service.add_job(probe(probe_log, outcome="false"))
    failed_at_ms = clock.now_ms()

    worker = await run_burst()

    due_ms = await retry_score_ms(service, job_id)
    assert due_ms is not None
    assert failed_at_ms + 60_000 <= due_ms <= failed_at_ms + 66_000
    job = await record(service, job_id)
    assert job.attempts == 1
    assert job.error is not None
    assert job.error.type == "RetryableJobError"
    assert "returned False" in job.error.message
    assert worker.jobs_done == 0
    stats = await service.get_queue_stats()
    assert (stats.total_processed, stats.total_failed, stats.retry) == (0, 1, 1)


@pytest.mark.parametrize("outcome", ["fail", "false"])
async def test_job_that_fails_then_succeeds_is_done_once(
    service: QueueService,
    run_burst: RunBurst,
    clock: ManualClock,
    probe_log: Path,
    outcome: str,
) -> None:
    """A retried job keeps its id and hash; once it succeeds the hash is gone and the
    counters say one failure, one success."""
    job_id = await service.add_job(probe(probe_log, outcome=outcome))
    await run_burst()
    due_ms = await retry_score_ms(service, job_id)
    assert due_ms is not None

    # Turn the job into one that succeeds, as a fixed bug or a recovered remote API would.
    job_key = service.keys.job(job_id)
    payload = (await record(service, job_id)).payload.replace(f'"{outcome}"', '"ok"')
    await service.redis.hset(job_key, "payload", payload)
    clock.set_ms(due_ms)
    await run_burst()

    assert [(e.kind, e.attempt) for e in read_events(probe_log)] == [
        ("start", 1),
        ("start", 2),
        ("done", 2),
    ]
    assert (await record(service, job_id)).state == "done"
    stats = await service.get_queue_stats()
    assert (stats.total_processed, stats.total_failed, stats.retry, stats.dead_letter) == (
        1,
        1,
        0,
        0,
    )


async def test_delayed_job_waits_for_the_clock(
    service: QueueService, run_burst: RunBurst, clock: ManualClock, probe_log: Path
) -> None:
    job_id = await service.add_job(probe(probe_log), delay_s=30)

    clock.advance(29.999)
    await run_burst()
    assert read_events(probe_log) == []
    assert (await service.get_queue_stats()).scheduled == 1

    clock.advance(0.001)
    await run_burst()
    assert [(e.kind, e.job_id) for e in read_events(probe_log)] == [
        ("start", job_id),
        ("done", job_id),
    ]
    stats = await service.get_queue_stats()
    assert (stats.scheduled, stats.total_processed) == (0, 1)
