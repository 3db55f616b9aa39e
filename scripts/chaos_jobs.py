"""The job types of ``scripts/chaos``: they record every execution so that the run can be audited.

Workers load them with ``PYTHONPATH=scripts`` and ``--import chaos_jobs`` (or
``QWORKER_JOB_MODULES=chaos_jobs``). Each worker process appends to its own file in
``$CHAOS_RECORD_DIR``: one line when an execution starts and one when it ends (or is cancelled),
and one when a hook raises. The records are written with a single ``os.write`` on an ``O_APPEND``
descriptor, so a SIGKILL of the worker loses nothing already written (the kernel holds it), and
Redis faults cannot touch them: the observer is independent of the system under test. (Machine
crashes are not simulated, so the records are not fsynced.)
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar, Literal

from chaoslib.contract import (
    BLOCK_REQUEST_FILE,
    BLOCKER_JOB_TYPE,
    BLOCKER_TIMEOUT_S,
    DOOMED_ERROR,
    HOLD_FILE,
    HOLD_MAX_S,
    HOOK_ERROR,
    JOB_TYPE,
    LIMITED_MIN_INTERVAL_MS,
    LIMITED_RATE_KEY,
    MAX_RETRIES,
    METERED_MAX_PER_DAY,
    METERED_RATE_KEY,
    RECORD_DIR_ENV,
    RETRY_BASE_DELAY_S,
    RETRY_MAX_DELAY_S,
    JobKind,
)

from qworker.errors import RateLimitedJobError, RetryableJobError
from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory
from qworker.rate_limiter import RateLimit


class ChaosFields(BaseJobParams):
    kind: JobKind = "ok"
    # Position in the enqueue order, for the priority check.
    seq: int = 0
    # A flaky (or hook-*) job fails its first ``fail_first`` attempts.
    fail_first: int = 0
    # How long one execution works; a blocker that takes a block request blocks this long.
    work_ms: int = 0


class ChaosParams(ChaosFields):
    job_type: Literal["chaos"] = "chaos"


class BlockerParams(ChaosFields):
    job_type: Literal["chaos-blocker"] = "chaos-blocker"
    kind: JobKind = "blocker"


class DoomedJobError(Exception):
    """Raised by every attempt of an always-failing job."""


assert DoomedJobError.__name__ == DOOMED_ERROR  # the audit looks for this name in the DLQ


class FlakyJobError(Exception):
    """Raised by the first attempts of a flaky job."""


class HookFailedError(Exception):
    """Raised by a hook of a hook-* job (``get_rate_limit``, ``get_retry_config``)."""


assert HookFailedError.__name__ == HOOK_ERROR


class PlannedRetry(RetryableJobError):
    """The failure a hook-retry job reports before its ``get_retry_config()`` raises. It names
    its own short delay, so the retry need not wait for a default policy's minute."""


class _Recorder:
    """Appends execution records to this process's own file."""

    def __init__(self) -> None:
        # A token, not the pid alone, names the process: a restarted worker may reuse a pid.
        self.token = uuid.uuid4().hex[:12]
        self._fd: int | None = None
        self._count = 0

    @property
    def directory(self) -> Path:
        directory = os.environ.get(RECORD_DIR_ENV)
        if not directory:
            raise RuntimeError(f"{RECORD_DIR_ENV} is not set: nowhere to record executions")
        return Path(directory)

    def _write(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            path = self.directory / f"exec-{os.getpid()}-{self.token}.jsonl"
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        record = {**record, "proc": self.token, "pid": os.getpid(), "t_ms": _now_ms()}
        os.write(self._fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())

    def start(self, job_id: str, attempt: int, *, block_ms: int = 0) -> int:
        self._count += 1
        record = {"ev": "start", "id": job_id, "n": self._count, "attempt": attempt}
        self._write(record | ({"block_ms": block_ms} if block_ms else {}))
        return self._count

    def end(self, number: int, job_id: str, *, ok: bool | None) -> None:
        """``ok`` None: the execution was cancelled (a stop, a timeout, a lost lease)."""
        self._write({"ev": "end", "id": job_id, "n": number, "ok": ok})

    def hook(self, job_id: str, attempt: int, hook: str) -> None:
        self._write({"ev": "hook", "id": job_id, "attempt": attempt, "hook": hook})

    def take_block_request(self) -> bool:
        """True for the one process whose unlink of the request file succeeds."""
        try:
            (self.directory / BLOCK_REQUEST_FILE).unlink()
        except FileNotFoundError:
            return False
        return True

    async def wait_while_held(self) -> None:
        path = self.directory / HOLD_FILE
        deadline = time.monotonic() + HOLD_MAX_S
        while path.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


RECORDER = _Recorder()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _bad_reset_at(seq: int) -> Any:
    """Things a job might pass as ``reset_at`` that are no epoch seconds at all."""
    choices: list[Any] = ["in 15 minutes", None, datetime.datetime.now(datetime.UTC)]
    return choices[seq % len(choices)]


class ChaosJob(BaseJob[ChaosFields]):
    """Sleeps ``work_ms``, then succeeds or fails as its kind says, recording both ends."""

    async def execute(self) -> bool:
        attempt, job_id = self.context.attempt, self.context.job_id
        number = RECORDER.start(job_id, attempt)
        try:
            await asyncio.sleep(self.params.work_ms / 1000)
            await RECORDER.wait_while_held()
        except asyncio.CancelledError:
            RECORDER.end(number, job_id, ok=None)
            raise
        ok = self._succeeds(attempt)
        RECORDER.end(number, job_id, ok=ok)
        if not ok:
            raise self._failure(attempt)
        return True

    def _succeeds(self, attempt: int) -> bool:
        kind = self.params.kind
        if kind == "doomed":
            return False
        # A hook-limit job fails in get_rate_limit(), before it ever gets here.
        return kind == "hook-limit" or attempt > self.params.fail_first

    def _failure(self, attempt: int) -> Exception:
        params = self.params
        if params.kind == "doomed":
            return DoomedJobError(f"always fails (attempt {attempt})")
        if params.kind == "hook-reset":
            bad = _bad_reset_at(params.seq)
            return RateLimitedJobError(f"reset_at is {bad!r}", reset_at=bad)
        if params.kind == "hook-retry":
            return PlannedRetry(f"planned failure {attempt}", retry_after=RETRY_BASE_DELAY_S)
        return FlakyJobError(f"planned failure {attempt} of {params.fail_first}")

    def _hook_raises(self, kind: JobKind) -> bool:
        """Only inside a worker (a producer's enqueue asks hooks too, with no job id yet)."""
        context = self.context
        return (
            self.params.kind == kind
            and bool(context.job_id)
            and (context.attempt <= self.params.fail_first)
        )

    def get_rate_limit_key(self) -> str:
        return LIMITED_RATE_KEY if self.params.kind == "limited" else METERED_RATE_KEY

    def get_rate_limit(self) -> RateLimit:
        if self._hook_raises("hook-limit"):
            RECORDER.hook(self.context.job_id, self.context.attempt, "get_rate_limit")
            raise HookFailedError(f"get_rate_limit failed (attempt {self.context.attempt})")
        if self.params.kind == "limited":
            return RateLimit(min_interval_minutes=LIMITED_MIN_INTERVAL_MS / 60_000)
        return RateLimit(max_per_day=METERED_MAX_PER_DAY)

    def get_retry_config(self) -> dict[str, Any]:
        if self._hook_raises("hook-retry"):
            RECORDER.hook(self.context.job_id, self.context.attempt, "get_retry_config")
            raise HookFailedError(f"get_retry_config failed (attempt {self.context.attempt})")
        return {
            "max_retries": MAX_RETRIES,
            "base_delay": RETRY_BASE_DELAY_S,
            "max_delay": RETRY_MAX_DELAY_S,
        }


class BlockerJob(ChaosJob):
    """Runs briefly, unless it finds a block request: then it blocks its worker's event loop in
    synchronous code for ``work_ms``, longer than its timeout, qworker's margin and the lease."""

    timeout_s: ClassVar[float | None] = BLOCKER_TIMEOUT_S

    async def execute(self) -> bool:
        attempt, job_id = self.context.attempt, self.context.job_id
        # Some asynchronous work first, as a real job does before its synchronous call: the
        # jobs started beside this one get going before the loop stops.
        await asyncio.sleep(0.05)
        blocking = RECORDER.take_block_request()
        number = RECORDER.start(job_id, attempt, block_ms=self.params.work_ms if blocking else 0)
        if blocking:
            time.sleep(self.params.work_ms / 1000)  # on purpose: nothing else on the loop runs
        RECORDER.end(number, job_id, ok=True)
        return True


JobFactory.register_job_type(JOB_TYPE, ChaosJob, ChaosParams)
JobFactory.register_job_type(BLOCKER_JOB_TYPE, BlockerJob, BlockerParams)
