"""The data qworker returns: job records, queue statistics, dead-letter entries, workers.

A job lives in Redis as one hash (see ``keys.QueueKeys.job``); :class:`JobRecord` is its typed
view. Only the ``payload`` field holds user data; everything else is bookkeeping.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field

CHECKPOINT_FIELD_PREFIX = "cp:"

JobState = Literal[
    "queued",
    "scheduled",
    "waiting",
    "running",
    "retry",
    "parked",
    "paused",
    "done",
    "dead",
    "canceled",
]
JOB_STATES: tuple[str, ...] = JobState.__args__  # type: ignore[attr-defined]
# The states a job ends in; every other state moves on by itself.
FINISHED_STATES = frozenset({"done", "dead", "canceled"})


class JobError(BaseModel):
    """Why an attempt failed: exception type, message and the last lines of its traceback."""

    type: str
    message: str
    traceback: str = ""


class WaitReason(BaseModel):
    """Why a job that is not running waits, and until when (ms; None: until something else
    happens, e.g. a resume)."""

    reason: str
    until_ms: int | None = None


class JobRecord(BaseModel):
    id: str
    state: JobState = Field(
        default="queued", description="Kept by the same Lua step that moves the job."
    )
    job_type: str | None = None
    priority: int = 3
    attempts: int = 0
    max_retries: int | None = None
    enqueued_at_ms: int | None = None
    state_at_ms: int | None = Field(default=None, description="When the job entered its state.")
    run_at_ms: int | None = None
    due_at_ms: int | None = Field(
        default=None, description="When a retry or parked job becomes ready again."
    )
    started_at_ms: int | None = Field(default=None, description="Its latest claim.")
    failed_at_ms: int | None = None
    finished_at_ms: int | None = None
    cancel_requested_at_ms: int | None = None
    dry_run_at_ms: int | None = Field(
        default=None, description="A dry-run worker ran it without doing its work (no post)."
    )
    payload: str = Field(description="The job's parameters as JSON, exactly as enqueued.")
    error: JobError | None = None
    result_json: str | None = Field(default=None, description="What execute() returned (JSON).")
    checkpoints: dict[str, str] = Field(default_factory=dict)
    unique_key: str | None = None
    rate_key: str | None = None
    worker_id: str | None = Field(default=None, description="The worker holding a running job.")
    schedule: str | None = Field(default=None, description="The schedule that enqueued it.")
    scheduled_for_ms: int | None = Field(default=None, description="The due time it is for.")
    schedule_covers: int | None = Field(
        default=None, description="Due times it stands for, when it stands for missed ones."
    )
    waiting: WaitReason | None = Field(
        default=None, description="Why it waits (filled in by QueueService.get_job)."
    )

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def result(self) -> Any:
        """The job's result decoded (None when it returned none)."""
        return None if self.result_json is None else json.loads(self.result_json)

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
        state = fields.get("state")
        owner = fields.get("owner") or ""
        return cls(
            id=job_id,
            state=state if state in JOB_STATES else "queued",  # type: ignore[arg-type]
            job_type=fields.get("job_type") or None,
            priority=int(fields.get("priority") or 3),
            attempts=int(fields.get("attempts") or 0),
            max_retries=_int_or_none(fields.get("max_retries")),
            enqueued_at_ms=_int_or_none(fields.get("enqueued_at_ms")),
            state_at_ms=_int_or_none(fields.get("state_at_ms")),
            run_at_ms=_int_or_none(fields.get("run_at_ms")),
            due_at_ms=_int_or_none(fields.get("due_at_ms")),
            started_at_ms=_int_or_none(fields.get("started_at_ms")),
            failed_at_ms=_int_or_none(fields.get("failed_at_ms")),
            finished_at_ms=_int_or_none(fields.get("finished_at_ms")),
            cancel_requested_at_ms=_int_or_none(fields.get("cancel_requested_at_ms")),
            dry_run_at_ms=_int_or_none(fields.get("dry_run_at_ms")),
            payload=fields.get("payload", ""),
            error=JobError.model_validate_json(error) if error else None,
            result_json=fields.get("result"),
            unique_key=fields.get("unique_key") or None,
            rate_key=fields.get("rate_key") or None,
            worker_id=owner.rpartition(":")[0] or None,
            schedule=fields.get("schedule") or None,
            scheduled_for_ms=_int_or_none(fields.get("scheduled_for_ms")),
            schedule_covers=_int_or_none(fields.get("schedule_covers")),
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
    waiting: int = Field(
        default=0, description="Jobs waiting for their dependencies (workflows) to be done."
    )
    dead_letter: int
    in_flight: int
    canceled: int = Field(default=0, description="Jobs canceled (counter).")
    pauses: list[Pause] = Field(default_factory=list)
    lanes: dict[str, int] = Field(
        default_factory=dict,
        description="Ready jobs per job type with a lane of its own (counted in queues too).",
    )
    waiting_without_worker: dict[str, int] = Field(
        default_factory=dict,
        description="Job types with jobs waiting that no live worker serves (--job-types).",
    )
    dry_run: int = Field(
        default=0, description="Jobs a dry-run worker marked done without doing (counter)."
    )

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
    job_id: str = Field(description="The new job's id, or the id of the job it duplicates.")
    created: bool = Field(
        description="False when a job with this id already existed: nothing new was queued."
    )
    duplicate: bool = Field(
        default=False,
        description="True when another job held the unique key: nothing was queued, and "
        "job_id is that job's.",
    )


class JobPage(BaseModel):
    """One page of ``list_jobs``; pass ``next_cursor`` back for the next (None: the last)."""

    jobs: list[JobRecord]
    next_cursor: str | None = None


class Pause(BaseModel):
    """A paused priority or job type; ``until_ms`` None: until resumed."""

    priority: int | None = None
    job_type: str | None = None
    until_ms: int | None = None
    held_jobs: int = Field(
        default=0, description="Jobs of a paused type moved aside, waiting for the resume."
    )

    def active(self, now_ms: int) -> bool:
        return self.until_ms is None or self.until_ms > now_ms

    @property
    def target(self) -> str:
        return (
            f"priority {self.priority}"
            if self.priority is not None
            else f"job type {self.job_type}"
        )


class CancelResult(BaseModel):
    job_id: str
    outcome: Literal["canceled", "requested", "finished"] = Field(
        description="canceled: it will not run; requested: it was running and its worker is "
        "stopping it; finished: it had already ended (state says how)."
    )
    state: JobState = Field(description="The job's state after the call.")
    previous_state: str


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
    running: int = Field(default=0, description="Jobs executing now (within a second).")
    prefetched: int = Field(default=0, description="Jobs claimed ahead, waiting for a slot.")
    serves_all: bool = Field(default=True, description="False: it serves only job_types.")
    job_types: list[str] = Field(
        default_factory=list, description="The job types it serves (or knows, serving all)."
    )


class RetryDrainResult(BaseModel):
    moved: int
    would_move: bool = Field(default=False, description="True for a dry run: nothing moved.")


class RequeueResult(BaseModel):
    requeued: list[str]
    missing: list[str]
