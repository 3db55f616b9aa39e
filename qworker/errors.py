"""One hierarchy of errors, so the CLI can map each kind to one line and one exit code.

Two families live here:

* ``QworkerError`` and its subclasses: what qworker itself reports (bad input, no such job,
  Redis gone).
* ``JobError`` and its subclasses: raised by a job's ``execute()`` to steer what happens next.
"""

from __future__ import annotations


class QworkerError(Exception):
    """Base of every error qworker raises on purpose."""


class ValidationFailed(QworkerError):
    """A job, an argument or a payload was rejected before anything was queued."""


class UnknownJobType(ValidationFailed):
    def __init__(self, job_type: str, known: list[str]) -> None:
        names = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"unknown job type {job_type!r}; registered types: {names} "
            "(load plugins with --import MODULE or QWORKER_JOB_MODULES)"
        )
        self.job_type = job_type


class PayloadTooLarge(ValidationFailed):
    def __init__(self, size_bytes: int, limit_bytes: int) -> None:
        super().__init__(
            f"job payload is {size_bytes} bytes; the limit is {limit_bytes} "
            "(QWORKER_MAX_PAYLOAD_BYTES)"
        )


class ConfigurationError(QworkerError):
    """Settings are missing or contradictory (e.g. no credentials for a job type)."""


class JobNotFound(QworkerError):
    def __init__(self, job_ids: list[str], where: str) -> None:
        super().__init__(f"not in the {where}: {', '.join(job_ids)}")
        self.job_ids = job_ids


class RedisUnavailable(QworkerError):
    """Redis could not be reached; the message names the URL with its password masked."""


class ReplicationUnconfirmed(QworkerError):
    """A durable enqueue: the jobs ARE queued on the master, but fewer replicas than asked
    confirmed them in time, so a failover now could lose them."""

    def __init__(self, job_ids: list[str], acked: int, wanted: int, timeout_ms: int) -> None:
        one = len(job_ids) == 1
        what = f"job {job_ids[0]} is" if one else f"{len(job_ids)} jobs are"
        it = "it" if one else "them"
        super().__init__(
            f"{what} queued on the master, but only {acked} of {wanted} replica(s) confirmed "
            f"{it} within {timeout_ms} ms (QWORKER_DURABLE_REPLICAS); {it} will run, but a "
            f"failover before replication would lose {it}; do not enqueue {it} again"
        )
        self.job_ids = job_ids
        self.acked = acked
        self.wanted = wanted


class EnqueueIncomplete(QworkerError):
    """A batch enqueue in several script calls where some calls failed: ``queued_ids`` are
    queued (they will run), ``not_queued_ids`` are not. Enqueueing ``not_queued_ids`` again
    with the same job ids is safe."""

    def __init__(self, queued_ids: list[str], not_queued_ids: list[str], reason: str) -> None:
        total = len(queued_ids) + len(not_queued_ids)
        super().__init__(
            f"{len(queued_ids)} of {total} jobs were queued and {len(not_queued_ids)} were not "
            f"({reason}); the queued ones will run: enqueue only the others again"
        )
        self.queued_ids = queued_ids
        self.not_queued_ids = not_queued_ids


class LeaseLost(QworkerError):
    """This worker no longer owns the job: its lease expired and the job was recovered."""


class JobHookFailed(Exception):
    """A job's own code outside ``execute()`` (``get_rate_limit()``, ``get_rate_limit_key()``,
    ``timeout_s``, the ``reset_at`` of its ``RateLimitedJobError`` ...) raised or answered
    nonsense. That is the job's failure, not qworker's: it costs the job an attempt."""

    def __init__(self, hook: str, cause: BaseException | str) -> None:
        if isinstance(cause, BaseException):
            try:
                detail = f"{type(cause).__name__}: {cause}"
            except Exception:  # its __str__ is job code too
                detail = type(cause).__name__
        else:
            detail = cause
        super().__init__(f"{hook} failed: {detail}")
        self.hook = hook


class JobError(Exception):
    """Raised by a job to steer its own fate. ``reached_remote`` tells the rate limiter
    whether the attempt used up a slot at the remote API (if not, the slot is given back)."""

    def __init__(self, message: str = "", *, reached_remote: bool = True) -> None:
        super().__init__(message)
        self.reached_remote = reached_remote


class PermanentJobError(JobError):
    """Retrying can never succeed: the job goes straight to the dead-letter queue."""


class RetryableJobError(JobError):
    """A temporary failure: retry with backoff, or after ``retry_after`` seconds if given."""

    def __init__(
        self,
        message: str = "",
        *,
        retry_after: float | None = None,
        reached_remote: bool = True,
    ) -> None:
        super().__init__(message, reached_remote=reached_remote)
        self.retry_after = retry_after


class ResultNotStored(JobError):
    """What ``execute()`` returned cannot be kept as the job's result (not JSON, or too large):
    the attempt fails, as if the job had raised."""


class RateLimitedJobError(JobError):
    """The remote side said "too many requests" and when it resets (epoch seconds).

    Not a failure: the job waits until ``reset_at`` and the shared limiter of its job type
    learns the reset, so every worker stops trying until then.
    """

    def __init__(self, message: str = "", *, reset_at: float) -> None:
        super().__init__(message, reached_remote=False)
        self.reset_at = reset_at


class AlreadyDone(JobError):
    """The job's effect already happened in an earlier attempt; finish it as done."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message, reached_remote=True)
