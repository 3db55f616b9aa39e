"""A job type for the workflow tests: it appends what it saw (its id and its dependencies'
results) to a JSON-lines file, then returns its ``result`` or fails as told."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from qworker.errors import PermanentJobError
from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory

STEP = "flowstep"


class StepParams(BaseJobParams):
    job_type: Literal["flowstep"] = "flowstep"
    log_path: str = Field(min_length=1)
    name: str = ""
    result: Any = None
    # Fail for good (PermanentJobError) while this file exists: the test deletes it to repair.
    fail_while: str = ""
    # Seconds the step takes (the fan-in test's slowest member).
    sleep_s: float = Field(default=0.0, ge=0)


class StepJob(BaseJob[StepParams]):
    async def execute(self) -> Any:
        p = self.params
        line = {"name": p.name, "id": self.context.job_id,
                "deps": self.context.dependency_results}  # fmt: skip
        if p.sleep_s:
            await asyncio.sleep(p.sleep_s)
        if p.fail_while and Path(p.fail_while).exists():
            raise PermanentJobError(f"{p.name} fails while {p.fail_while} exists")
        fd = os.open(p.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(line) + "\n").encode())
        finally:
            os.close(fd)
        return p.result


JobFactory.register_job_type(STEP, StepJob, StepParams)


def step(log_path: Path, name: str, **params: Any) -> dict[str, Any]:
    return {"job_type": STEP, "log_path": str(log_path), "name": name, **params}


def ran(log_path: Path) -> list[dict[str, Any]]:
    """What the steps recorded, in the order they ran."""
    if not log_path.exists():
        return []
    return [json.loads(line) for line in log_path.read_text().splitlines()]
