"""Job types for the Redis and worker-process tests, registered when this module is imported.

Workers load it like any plugin (``job_modules=["tests.jobtypes"]`` or ``--import
tests.jobtypes``). A ``probe`` job writes one line to a file when it starts and one when it
ends: a file, not Redis, so that recording keeps working while Redis is down and a worker
process killed with SIGKILL leaves an honest trace of what it ran.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from qworker.errors import PermanentJobError, RetryableJobError
from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory

PROBE = "probe"

Outcome = Literal["ok", "fail", "permanent", "retry_after", "false", "unserialisable"]


class ProbeParams(BaseJobParams):
    job_type: Literal["probe"] = "probe"
    log_path: str = Field(min_length=1)
    sleep_s: float = Field(default=0.0, ge=0)
    outcome: Outcome = "ok"
    tag: str = ""
    # What execute() returns on success (None: True, the seed's way), or a string this long.
    result: Any = None
    result_length: int = 0
    # Sleep inside a cancel shield (JobContext.cancel_shield) instead of outside it.
    shielded: bool = False


class ProbeJob(BaseJob[ProbeParams]):
    """Records ``start``, sleeps, then behaves as ``outcome`` says (and records ``done`` on
    success)."""

    timeout_s = 120.0

    async def execute(self) -> Any:
        p = self.params
        _append(p.log_path, "start", self.context.job_id, self.context.attempt, p.tag)
        try:
            if p.sleep_s and p.shielded:
                with self.context.cancel_shield():
                    await asyncio.sleep(p.sleep_s)
            elif p.sleep_s:
                await asyncio.sleep(p.sleep_s)
        except asyncio.CancelledError:
            _append(p.log_path, "cancelled", self.context.job_id, self.context.attempt, p.tag)
            raise
        attempt = self.context.attempt
        if p.outcome == "fail":
            raise RuntimeError(f"boom on attempt {attempt}")
        if p.outcome == "permanent":
            raise PermanentJobError(f"never works (attempt {attempt})")
        if p.outcome == "retry_after":
            raise RetryableJobError("come back later", retry_after=5)
        if p.outcome == "false":
            return False
        _append(p.log_path, "done", self.context.job_id, attempt, p.tag)
        if p.outcome == "unserialisable":
            return {"when": object()}
        if p.result_length:
            return "x" * p.result_length
        return True if p.result is None else p.result


JobFactory.register_job_type(PROBE, ProbeJob, ProbeParams)


def probe(log_path: Path | str, **params: Any) -> dict[str, Any]:
    """Job data of a probe job."""
    return {"job_type": PROBE, "log_path": str(log_path), **params}


@dataclass(frozen=True)
class Event:
    kind: str
    job_id: str
    attempt: int
    tag: str


def _append(path: str, kind: str, job_id: str, attempt: int, tag: str) -> None:
    # One write() of a short line with O_APPEND: lines from concurrent jobs never interleave.
    line = f"{kind}\t{job_id}\t{attempt}\t{tag}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_events(path: Path, kind: str | None = None) -> list[Event]:
    """The probe log in the order written; only complete lines (a killed writer may leave a
    partial one, though a single short write never does)."""
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) != 4:
            continue
        event = Event(fields[0], fields[1], int(fields[2]), fields[3])
        if kind is None or event.kind == kind:
            events.append(event)
    return events
