"""The data qworker returns: job records, queue statistics, dead-letter entries, workers.

A job lives in Redis as one hash (see ``keys.QueueKeys.job``); :class:`JobRecord` is its typed
view. Only the ``payload`` field holds user data; everything else is bookkeeping.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

CHECKPOINT_FIELD_PREFIX = "cp:"


class JobError(BaseModel):
    """Why an attempt failed: exception type, message and the last lines of its traceback."""

    type: str
    message: str
    traceback: str = ""


class JobRecord(BaseModel):
    id: str
    job_type: str | None = None
    priority: int = 3
    attempts: int = 0
    max_retries: int | None = None
    enqueued_at_ms: int | None = None
    run_at_ms: int | None = None
    failed_at_ms: int | None = None
    payload: str = Field(description="The job's parameters as JSON, exactly as enqueued.")
    error: JobError | None = None
    checkpoints: dict[str, str] = Field(default_factory=dict)

    @property
    def params(self) -> dict[str, Any] | None:
        """The payload decoded, or None when it is not a JSON object (a hand-pushed bad one)."""
        try:
            value = json.loads(self.payload)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    @classmethod
    def from_hash(cls, job_id: str, fields: dict[str, str]) -> JobRecord:
        """Build from the Redis hash (string fields, as redis-py decodes them)."""
        error = fields.get("error")
        return cls(
            id=job_id,
            job_type=fields.get("job_type") or None,
            priority=int(fields.get("priority") or 3),
            attempts=int(fields.get("attempts") or 0),
            max_retries=_int_or_none(fields.get("max_retries")),
            enqueued_at_ms=_int_or_none(fields.get("enqueued_at_ms")),
            run_at_ms=_int_or_none(fields.get("run_at_ms")),
            failed_at_ms=_int_or_none(fields.get("failed_at_ms")),
            payload=fields.get("payload", ""),
            error=JobError.model_validate_json(error) if error else None,
            checkpoints={
                name.removeprefix(CHECKPOINT_FIELD_PREFIX): value
                for name, value in fields.items()
                if name.startswith(CHECKPOINT_FIELD_PREFIX)
            },
        )


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


class QueueStats(BaseModel):
    """The seed's shape (``total_jobs``, ``queues``, ``total_processed``) plus the rest."""

    total_jobs: int = Field(description="Jobs waiting in the four priority lists.")
    queues: dict[str, int]
    total_processed: int
    total_failed: int = Field(description="Failed attempts, retried or not.")
    total_dead: int
    dead_letter_dropped: int = Field(description="Dead jobs dropped by the retention cap.")
    recovered: int = Field(description="Jobs taken back from workers whose lease expired.")
    unknown_type_waiting: int = Field(
        default=0,
        description="Scheduled jobs of a type no worker that took them knew, waiting (up to "
        "QWORKER_UNKNOWN_TYPE_GRACE_S) for a worker that knows it, as during a rolling deploy.",
    )
    retry: int
    retry_due: int
    scheduled: int
    parked: int
    dead_letter: int
    in_flight: int

    def __getitem__(self, name: str) -> Any:
        """Dict-style access, as the seed's ``get_queue_stats()`` returned a dict."""
        return getattr(self, name)


class RedisMemory(BaseModel):
    """Redis's memory as ``INFO memory`` reports it. Only ``noeviction`` keeps every job: any
    other policy lets a full Redis delete keys, job hashes and queues among them."""

    used_bytes: int
    max_bytes: int = Field(description="maxmemory; 0 means no limit.")
    policy: str = Field(description="maxmemory-policy.")

    @property
    def evicts(self) -> bool:
        return self.policy != "noeviction"


class EnqueueResult(BaseModel):
    job_id: str
    created: bool = Field(
        description="False when a job with this id already existed: nothing new was queued."
    )


class RateLimitStats(BaseModel):
    rate_key: str
    max_per_day: int | None
    max_per_hour: int | None
    min_interval_s: float
    used_last_day: int
    used_last_hour: int
    last_execution_ms: int | None
    blocked_until_ms: int | None
    next_allowed_ms: int = Field(description="Earliest time (ms) a job of this key may run.")


class WorkerInfo(BaseModel):
    id: str
    host: str
    pid: int
    started_at_ms: int
    last_seen_ms: int
    jobs_done: int
    concurrency: int
    current_jobs: list[str]


class RetryDrainResult(BaseModel):
    moved: int
    would_move: bool = Field(default=False, description="True for a dry run: nothing moved.")


class RequeueResult(BaseModel):
    requeued: list[str]
    missing: list[str]
