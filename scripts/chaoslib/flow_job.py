"""The job of a chaos run's flows: it records each execution's start (with the results of the
jobs it waited for, ``JobContext.dependency_results``) and its end, one JSON line each, in the
run's record directory. A member told to fail always fails for good."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any, Literal

from chaoslib.contract import RECORD_DIR_ENV
from qworker.errors import PermanentJobError
from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory

FLOW_JOB_TYPE = "chaos-flow"
FLOW_FILE_GLOB = "flows-*.jsonl"


class FlowParams(BaseJobParams):
    job_type: Literal["chaos-flow"] = "chaos-flow"
    flow: str
    step: str
    fail: bool = False
    work_ms: int = 20


class FlowJob(BaseJob[FlowParams]):
    async def execute(self) -> dict[str, str]:
        p = self.params
        _record({"event": "start", "deps": self.context.dependency_results}, self.context.job_id)
        await asyncio.sleep(p.work_ms / 1000)
        if p.fail:
            raise PermanentJobError(f"chaos: flow {p.flow} step {p.step} always fails")
        _record({"event": "done"}, self.context.job_id)
        return {"step": p.step}


def _record(line: dict[str, Any], job_id: str) -> None:
    record_dir = os.environ.get(RECORD_DIR_ENV)
    if record_dir:
        line |= {"job_id": job_id, "at_ms": time.time_ns() // 1_000_000}
        path = Path(record_dir) / f"flows-{os.getpid()}.jsonl"
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


JobFactory.register_job_type(FLOW_JOB_TYPE, FlowJob, FlowParams)
