"""Job types for the rate-limit tests; worker subprocesses load them with ``--import``."""

from __future__ import annotations

from typing import Any, Literal

import redis.asyncio as aioredis

from qworker.clients import ClientContainer
from qworker.config import Settings
from qworker.errors import RateLimitedJobError
from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory
from qworker.rate_limiter import RateLimit


def _recorder(settings: Settings) -> aioredis.Redis:
    return aioredis.Redis.from_url(settings.redis_url, decode_responses=True)


ClientContainer.register_factory("test-recorder", _recorder)


class LimitedParams(BaseJobParams):
    job_type: Literal["limited"] = "limited"
    record_key: str
    per_hour: int = 5
    min_interval_minutes: float = 0.0


class LimitedJob(BaseJob[LimitedParams]):
    """Records each execution (its job id) in a Redis list; limited per hour."""

    async def execute(self) -> bool:
        recorder: Any = self.clients.get("test-recorder")
        await recorder.rpush(self.params.record_key, self.context.job_id)
        return True

    def get_rate_limit(self) -> RateLimit:
        return RateLimit(
            max_per_hour=self.params.per_hour,
            min_interval_minutes=self.params.min_interval_minutes,
        )


class UnlimitedParams(BaseJobParams):
    job_type: Literal["unlimited"] = "unlimited"
    record_key: str


class UnlimitedJob(BaseJob[UnlimitedParams]):
    async def execute(self) -> bool:
        recorder: Any = self.clients.get("test-recorder")
        await recorder.rpush(self.params.record_key, self.context.job_id)
        return True


class RemoteLimitedParams(BaseJobParams):
    job_type: Literal["remote_limited"] = "remote_limited"
    record_key: str
    reset_at_s: float


class RemoteLimitedJob(BaseJob[RemoteLimitedParams]):
    """Answers like an API's 429 on its first attempt, then succeeds."""

    async def execute(self) -> bool:
        if "refused" not in self.context.checkpoints:
            await self.context.checkpoint("refused", "1")
            raise RateLimitedJobError("429 Too Many Requests", reset_at=self.params.reset_at_s)
        recorder: Any = self.clients.get("test-recorder")
        await recorder.rpush(self.params.record_key, self.context.job_id)
        return True

    def get_rate_limit(self) -> RateLimit:
        return RateLimit(max_per_day=1000)


JobFactory.register_job_type("limited", LimitedJob, LimitedParams)
JobFactory.register_job_type("unlimited", UnlimitedJob, UnlimitedParams)
JobFactory.register_job_type("remote_limited", RemoteLimitedJob, RemoteLimitedParams)
