"""The job type of ``scripts/chaos``: it records every execution so that the run can be audited.

Workers load it with ``PYTHONPATH=scripts`` and ``--import chaos_jobs`` (or
``QWORKER_JOB_MODULES=chaos_jobs``). Each worker process appends to its own file in
``$CHAOS_RECORD_DIR``: one line when an execution starts and one when it ends. The records are
written with a single ``os.write`` on an ``O_APPEND`` descriptor, so a SIGKILL of the worker
loses nothing already written (the kernel holds it), and Redis faults cannot touch them: the
observer is independent of the system under test. (Machine crashes are not simulated, so the
records are not fsynced.)
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from chaoslib.contract import (
    DOOMED_ERROR,
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

from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory
from qworker.rate_limiter import RateLimit


class ChaosParams(BaseJobParams):
    job_type: Literal["chaos"] = "chaos"
    kind: JobKind = "ok"
    # Position in the enqueue order, for the priority check.
    seq: int = 0
    # A flaky job fails its first ``fail_first`` attempts.
    fail_first: int = 0
    work_ms: int = 0


class DoomedJobError(Exception):
    """Raised by every attempt of an always-failing job."""


assert DoomedJobError.__name__ == DOOMED_ERROR  # the audit looks for this name in the DLQ


class FlakyJobError(Exception):
    """Raised by the first attempts of a flaky job."""


class _Recorder:
    """Appends execution records to this process's own file."""

    def __init__(self) -> None:
        # A token, not the pid alone, names the process: a restarted worker may reuse a pid.
        self.token = uuid.uuid4().hex[:12]
        self._fd: int | None = None
        self._count = 0

    def _write(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            directory = os.environ.get(RECORD_DIR_ENV)
            if not directory:
                raise RuntimeError(f"{RECORD_DIR_ENV} is not set: nowhere to record executions")
            path = Path(directory) / f"exec-{os.getpid()}-{self.token}.jsonl"
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self._fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())

    def start(self, job_id: str, attempt: int) -> int:
        self._count += 1
        self._write(
            {
                "ev": "start",
                "id": job_id,
                "pid": os.getpid(),
                "proc": self.token,
                "n": self._count,
                "attempt": attempt,
                "t_ms": _now_ms(),
            }
        )
        return self._count

    def end(self, number: int, job_id: str, *, ok: bool) -> None:
        record = {"ev": "end", "id": job_id, "proc": self.token, "n": number, "ok": ok}
        self._write({**record, "t_ms": _now_ms()})


RECORDER = _Recorder()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ChaosJob(BaseJob[ChaosParams]):
    """Sleeps ``work_ms``, then succeeds or fails as its kind says, recording both ends."""

    async def execute(self) -> bool:
        params = self.params
        attempt = self.context.attempt
        number = RECORDER.start(self.context.job_id, attempt)
        await asyncio.sleep(params.work_ms / 1000)
        ok = params.kind != "doomed" and attempt > params.fail_first
        RECORDER.end(number, self.context.job_id, ok=ok)
        if params.kind == "doomed":
            raise DoomedJobError(f"always fails (attempt {attempt})")
        if not ok:
            raise FlakyJobError(f"planned failure {attempt} of {params.fail_first}")
        return True

    def get_rate_limit_key(self) -> str:
        return LIMITED_RATE_KEY if self.params.kind == "limited" else METERED_RATE_KEY

    def get_rate_limit(self) -> RateLimit:
        if self.params.kind == "limited":
            return RateLimit(min_interval_minutes=LIMITED_MIN_INTERVAL_MS / 60_000)
        return RateLimit(max_per_day=METERED_MAX_PER_DAY)

    def get_retry_config(self) -> dict[str, Any]:
        return {
            "max_retries": MAX_RETRIES,
            "base_delay": RETRY_BASE_DELAY_S,
            "max_delay": RETRY_MAX_DELAY_S,
        }


JobFactory.register_job_type(JOB_TYPE, ChaosJob, ChaosParams)
