"""A job type whose every hook can misbehave, for the tests of what qworker does about it.

``faulty`` jobs record ``start``/``done`` lines in the probe log format (``tests.jobtypes``), so
``read_events`` reads them. Registered when this module is imported.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Literal

from pydantic import Field

from qworker.errors import PermanentJobError, RateLimitedJobError
from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory
from qworker.rate_limiter import RateLimit

FAULTY = "faulty"

Hook = Literal[
    "",
    "get_rate_limit",
    "get_rate_limit_key",
    "get_retry_config",
    "bad_retry_config",
    "timeout_s",
    "reset_at",
]


class FaultyParams(BaseJobParams):
    job_type: Literal["faulty"] = "faulty"
    log_path: str = Field(min_length=1)
    # The hook that raises (or returns nonsense); execute() itself succeeds unless told below.
    broken: Hook = ""
    max_retries: int = 3
    # execute(): raise PermanentJobError with a message this long, from this deep a stack.
    message_chars: int = 0
    depth: int = 0
    # execute(): block the event loop (time.sleep) on the first attempt only.
    block_s: float = 0.0
    # execute(): await this long on the first attempt only (cancellable).
    sleep_s: float = 0.0
    # execute(): checkpoint this name before finishing.
    checkpoint: str = ""
    # execute(): raise RateLimitedJobError with this reset_at.
    reset_at: Any = None
    # execute(): raise RuntimeError (a retryable failure).
    fail: bool = False
    timeout: float | None = 120.0


class FaultyJob(BaseJob[FaultyParams]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.params.broken == "timeout_s":
            self.timeout_s = "soon"  # type: ignore[assignment]
        else:
            self.timeout_s = self.params.timeout  # type: ignore[misc]

    async def execute(self) -> bool:
        p, attempt = self.params, self.context.attempt
        record(p.log_path, "start", self.context.job_id, attempt)
        if p.block_s and attempt == 1:
            time.sleep(p.block_s)  # the fault under test: synchronous code on the event loop
        if p.sleep_s and attempt == 1:
            await asyncio.sleep(p.sleep_s)
        if p.checkpoint:
            await self.context.checkpoint(p.checkpoint, str(attempt))
        if p.broken == "reset_at":
            raise RateLimitedJobError("slow down", reset_at=p.reset_at)
        if p.message_chars:
            raise_from_depth(p.depth, "x" * p.message_chars)
        if p.fail:
            raise RuntimeError(f"boom on attempt {attempt}")
        record(p.log_path, "done", self.context.job_id, attempt)
        return True

    def get_rate_limit(self) -> RateLimit | None:
        if self.params.broken == "get_rate_limit":
            raise ZeroDivisionError("division by zero in get_rate_limit")
        if self.params.broken == "get_rate_limit_key":
            return RateLimit(max_per_hour=1000)
        return None

    def get_rate_limit_key(self) -> str:
        if self.params.broken == "get_rate_limit_key":
            raise KeyError("no key")
        return super().get_rate_limit_key()

    def get_retry_config(self) -> dict[str, Any]:
        in_worker = bool(self.context.job_id)  # enqueue asks too: that must still work
        if in_worker and self.params.broken == "get_retry_config":
            raise RuntimeError("retry config unavailable")
        if in_worker and self.params.broken == "bad_retry_config":
            return {"max_retries": "many"}
        return {"max_retries": self.params.max_retries, "base_delay": 60}


def raise_from_depth(depth: int, message: str) -> None:
    if depth > 0:
        _deeper(depth - 1, message)  # two functions in turn: Python folds no repeated frames
    raise PermanentJobError(message)


def _deeper(depth: int, message: str) -> None:
    raise_from_depth(depth, message)


def record(path: str, kind: str, job_id: str, attempt: int) -> None:
    """One line in the probe log format (kind, job id, attempt, tag), written in one go."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{kind}\t{job_id}\t{attempt}\t\n".encode())
    finally:
        os.close(fd)


def faulty(log_path: object, **params: Any) -> dict[str, Any]:
    """Job data of a faulty job."""
    return {"job_type": FAULTY, "log_path": str(log_path), **params}


JobFactory.register_job_type(FAULTY, FaultyJob, FaultyParams)
