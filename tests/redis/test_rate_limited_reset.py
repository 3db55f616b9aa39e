"""Whatever job type raises RateLimitedJobError, its reset is clamped as the tweet job's is: one
in the past waits a little, milliseconds passed as seconds are read as milliseconds, and one
absurdly far parks the job for a day at most."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from qworker.clock import ManualClock
from qworker.policy import MAX_RATE_LIMIT_WAIT_S, MIN_RATE_LIMIT_WAIT_S
from qworker.service import QueueService
from tests.redis.faulty_jobs import faulty

RunBurst = Callable[..., Awaitable[Any]]


@pytest.mark.parametrize(
    ("reset_in_s", "in_ms", "parked_for_s"),
    [
        (600, False, 600),  # a sensible reset is kept
        (-3600, False, MIN_RATE_LIMIT_WAIT_S),  # already past (clock skew)
        (600, True, 600),  # milliseconds passed as seconds
        (10 * 86_400, False, MAX_RATE_LIMIT_WAIT_S),  # absurdly far
    ],
    ids=["kept", "past", "milliseconds", "far"],
)
async def test_any_jobs_rate_limit_reset_is_clamped(
    service: QueueService,
    run_burst: RunBurst,
    clock: ManualClock,
    probe_log: Path,
    reset_in_s: float,
    in_ms: bool,
    parked_for_s: float,
) -> None:
    reset_at = clock.now_ms() / 1000 + reset_in_s
    job_id = await service.add_job(
        faulty(probe_log, broken="reset_at", reset_at=reset_at * 1000 if in_ms else reset_at)
    )

    await asyncio.wait_for(run_burst(), 5)

    parked_until_ms = await service.redis.zscore(service.keys.parked, job_id)
    assert parked_until_ms == clock.now_ms() + parked_for_s * 1000
    job = await service.get_job(job_id)
    assert job is not None and job.attempts == 0  # being rate-limited is no failure
