"""A plugin job type for the CLI tests, registered on import (``--import tests.cli.jobtypes``).

``cli_job`` succeeds, fails for good, or asks to be retried after ``retry_after_s``; it runs under
a rate limit so that ``stats`` has a limiter to show.
"""

from __future__ import annotations

from typing import Literal

from qworker.errors import PermanentJobError, RetryableJobError
from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory
from qworker.rate_limiter import RateLimit

CLI_JOB = "cli_job"


class CliJobParams(BaseJobParams):
    job_type: Literal["cli_job"] = "cli_job"
    outcome: Literal["ok", "permanent", "retry"] = "ok"
    message: str = "failed on purpose"
    retry_after_s: float = 60.0


class CliJob(BaseJob[CliJobParams]):
    async def execute(self) -> bool:
        if self.params.outcome == "permanent":
            raise PermanentJobError(self.params.message)
        if self.params.outcome == "retry":
            raise RetryableJobError(self.params.message, retry_after=self.params.retry_after_s)
        return True

    def get_rate_limit(self) -> RateLimit:
        return RateLimit(max_per_day=1000, max_per_hour=100)


JobFactory.register_job_type(CLI_JOB, CliJob, CliJobParams)
