"""A ``metered`` job type for the metrics tests: it ends as its ``outcome`` says, retries after
50 ms (so a real worker process settles a retry within the test), and has a rate limit generous
enough never to park a job, so the exporter has a key to report."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from qworker.errors import PermanentJobError, RetryableJobError
from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory
from qworker.rate_limiter import RateLimit

METERED = "metered"
RATE_KEY = "metered-api"
MAX_PER_HOUR = 1000
MAX_PER_DAY = 10_000


class MeteredParams(BaseJobParams):
    job_type: Literal["metered"] = "metered"
    # ok; fail_once: retried once, then done; permanent: dead at once; slow: overruns timeout_s.
    outcome: Literal["ok", "fail_once", "permanent", "slow"] = "ok"


class MeteredJob(BaseJob[MeteredParams]):
    timeout_s = 0.2

    async def execute(self) -> Any:
        outcome = self.params.outcome
        if outcome == "fail_once" and self.context.attempt == 1:
            raise RetryableJobError("fails on its first attempt")
        if outcome == "permanent":
            raise PermanentJobError("never works")
        if outcome == "slow":
            await asyncio.sleep(30)
        return True

    def get_retry_config(self) -> dict[str, Any]:
        return {"max_retries": 1, "base_delay": 0.05, "max_delay": 0.05, "jitter": 0}

    def get_rate_limit(self) -> RateLimit:
        return RateLimit(max_per_day=MAX_PER_DAY, max_per_hour=MAX_PER_HOUR)

    def get_rate_limit_key(self) -> str:
        return RATE_KEY


JobFactory.register_job_type(METERED, MeteredJob, MeteredParams)


def metered(outcome: str = "ok") -> dict[str, Any]:
    return {"job_type": METERED, "outcome": outcome}
