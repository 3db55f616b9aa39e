"""A job that overruns its timeout is cancelled by the worker's watchdog and retried."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory
from qworker.service import QueueService


class SlowParams(BaseJobParams):
    job_type: Literal["slow"] = "slow"
    sleep_s: float


class SlowJob(BaseJob[SlowParams]):
    timeout_s = 0.2

    async def execute(self) -> bool:
        await asyncio.sleep(self.params.sleep_s)
        return True


JobFactory.register_job_type("slow", SlowJob, SlowParams)


async def test_overrunning_job_is_cancelled_and_retried(
    service: QueueService, run_burst: Any
) -> None:
    job_id = await service.add_job(SlowParams(sleep_s=30))
    fast_id = await service.add_job(SlowParams(sleep_s=0))

    await asyncio.wait_for(run_burst(concurrency=2), timeout=10)

    record = await service.get_job(job_id)
    assert record is not None and record.error is not None
    assert (record.attempts, record.error.type) == (1, "TimeoutError")
    assert "longer than its timeout of 0.2s" in record.error.message
    assert await service.redis.zscore(service.keys.retry, job_id) is not None
    fast = await service.get_job(fast_id)
    assert fast is not None and fast.state == "done"
    stats = await service.get_queue_stats()
    assert (stats.total_processed, stats.total_failed, stats.in_flight) == (1, 1, 0)
