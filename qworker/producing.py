"""What a producer's input must be before anything reaches Redis: pure checks and the one
place that turns job data into the :class:`EnqueueItem` the enqueue script stores.

Every check raises ValidationFailed naming the problem, so nothing is queued and the command
line exits 2.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from qworker.errors import PayloadTooLarge, ValidationFailed
from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory
from qworker.keys import PRIORITIES
from qworker.policy import RetryPolicy
from qworker.scripts import EnqueueItem

if TYPE_CHECKING:
    from qworker.clients import ClientContainer
    from qworker.config import Settings

# One script call carries at most this many jobs, so a huge batch never blocks Redis for long.
ENQUEUE_CHUNK = 1000
# What a caller's own job id may be: short, and safe in a key, a log line and a shell.
JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# The latest time a job can be scheduled for: the end of the year 9999 (what datetime can show).
MAX_RUN_AT_MS = 253_402_300_799_999
# BaseJob's own retry limit, stored for job types that do not override get_retry_config.
DEFAULT_MAX_RETRIES = RetryPolicy().max_retries


def check_priority(priority: int) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or priority not in PRIORITIES:
        raise ValidationFailed(f"priority must be 1 (urgent) to 4 (low), not {priority!r}")
    return priority


def check_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not JOB_ID_PATTERN.fullmatch(job_id):
        raise ValidationFailed(
            f"job id {job_id!r} is not valid: use 1 to 64 characters of A-Z, a-z, 0-9, "
            "'.', '_', ':' and '-'"
        )
    return job_id


def check_job_ids(job_ids: Sequence[str] | None, count: int) -> Sequence[str | None]:
    """One id per job (or None each, for new random ids), all different."""
    if job_ids is None:
        return [None] * count
    if len(job_ids) != count:
        raise ValidationFailed(f"{len(job_ids)} job ids for {count} jobs")
    if len(set(job_ids)) != len(job_ids):
        raise ValidationFailed("the job ids of one batch must all differ")
    return job_ids


def new_job_id() -> str:
    """128 random bits as 32 hex characters (what uuid4().hex gives, at a fraction of the cost)."""
    return os.urandom(16).hex()


def run_at_ms(delay_s: float | None, at_ms: int | None, now_ms: int) -> int | None:
    """When a job becomes ready (None: now) from a delay or a start time, each in range."""
    if delay_s is not None and at_ms is not None:
        raise ValidationFailed("give a delay or a start time, not both")
    if delay_s is not None:
        if not math.isfinite(delay_s):
            raise ValidationFailed(f"delay must be a finite number of seconds, not {delay_s}")
        if delay_s < 0:
            raise ValidationFailed(f"delay must not be negative, not {delay_s}")
        if now_ms + delay_s * 1000 > MAX_RUN_AT_MS:
            raise ValidationFailed(f"a delay of {delay_s:g} s ends after the year 9999")
        at_ms = now_ms + int(delay_s * 1000)
    if at_ms is not None and not 0 <= at_ms <= MAX_RUN_AT_MS:
        raise ValidationFailed(
            f"the start time {at_ms!r} ms is out of range: it must fall between 1970 and the "
            "end of the year 9999"
        )
    return at_ms


# A unique key: what a caller dedupes on (a name, a hash of a text); stored inside a key name.
UNIQUE_KEY_MAX_LENGTH = 200
UNIQUE_UNTIL = ("started", "finished")


def with_unique_key(
    item: EnqueueItem, unique_key: str | None, unique_for_s: float | None, unique_until: str
) -> EnqueueItem:
    """``item`` holding ``unique_key`` (checked) until its job passes ``unique_until`` or
    ``unique_for_s`` ends (None: no end)."""
    if unique_key is None:
        if unique_for_s is not None:
            raise ValidationFailed("a unique-for time needs a unique key")
        return item
    if not isinstance(unique_key, str) or not 1 <= len(unique_key) <= UNIQUE_KEY_MAX_LENGTH:
        raise ValidationFailed(
            f"a unique key must be 1 to {UNIQUE_KEY_MAX_LENGTH} characters, "
            f"not {len(unique_key) if isinstance(unique_key, str) else unique_key!r}"
        )
    if not unique_key.isprintable():
        raise ValidationFailed("a unique key must not hold control characters")
    if unique_until not in UNIQUE_UNTIL:
        raise ValidationFailed(f"unique-until must be started or finished, not {unique_until!r}")
    unique_for_ms = None
    if unique_for_s is not None:
        if not math.isfinite(unique_for_s) or unique_for_s <= 0:
            raise ValidationFailed(f"unique-for must be a positive time, not {unique_for_s}")
        unique_for_ms = max(int(unique_for_s * 1000), 1)
    return dataclasses.replace(
        item, unique_key=unique_key, unique_for_ms=unique_for_ms, unique_until=unique_until
    )


def max_retries_of(params: BaseJobParams, settings: Settings, clients: ClientContainer) -> int:
    """The job's own retry limit. ``get_retry_config`` is an instance method, so each job is
    asked; a job type that keeps BaseJob's needs no job built (the common, fast case)."""
    job_cls = JobFactory.get(params.job_type).job_cls
    if job_cls.get_retry_config is BaseJob.get_retry_config:
        return DEFAULT_MAX_RETRIES
    try:
        job = job_cls(params, settings, clients)
        return RetryPolicy.from_config(job.get_retry_config()).max_retries
    except Exception as exc:
        raise ValidationFailed(
            f"the {params.job_type} job's get_retry_config() failed: {type(exc).__name__}: {exc}"
        ) from None


def prepare(
    job_data: dict[str, Any] | BaseJobParams,
    priority: int,
    ready_at_ms: int | None,
    job_id: str | None,
    settings: Settings,
    clients: ClientContainer,
) -> EnqueueItem:
    """Validate one job into what the enqueue script stores."""
    check_priority(priority)
    job_id = new_job_id() if job_id is None else check_job_id(job_id)
    params = JobFactory.validate_params(job_data)
    try:
        payload = params.model_dump_json()
    except ValueError as exc:  # e.g. text with lone surrogates, which UTF-8 cannot carry
        raise ValidationFailed(f"cannot store the {params.job_type} job: {exc}") from None
    size_bytes = len(payload.encode())
    if size_bytes > settings.max_payload_bytes:
        raise PayloadTooLarge(size_bytes, settings.max_payload_bytes)
    max_retries = max_retries_of(params, settings, clients)
    return EnqueueItem(job_id, priority, params.job_type, payload, max_retries, ready_at_ms)


def split_by_outcome(
    chunks: Sequence[Sequence[EnqueueItem]], replies: Sequence[Any]
) -> tuple[list[str], list[str]]:
    """(ids whose script call ran, ids whose call Redis refused). Redis refuses a script for
    lack of memory at its first write, so a call refused that way stored nothing."""
    queued: list[str] = []
    not_queued: list[str] = []
    for chunk, reply in zip(chunks, replies, strict=True):
        (not_queued if isinstance(reply, Exception) else queued).extend(i.job_id for i in chunk)
    return queued, not_queued
