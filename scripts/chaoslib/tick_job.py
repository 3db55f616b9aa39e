"""The job a chaos run's schedule fires every second: it records the due time it was fired for
(``JobContext.scheduled_for``), one line per execution, in the run's record directory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from chaoslib.contract import RECORD_DIR_ENV
from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory

TICK_JOB_TYPE = "chaos-tick"
TICK_FILE_GLOB = "ticks-*.jsonl"


class TickParams(BaseJobParams):
    job_type: Literal["chaos-tick"] = "chaos-tick"


class TickJob(BaseJob[TickParams]):
    async def execute(self) -> bool:
        record_dir = os.environ.get(RECORD_DIR_ENV)
        if record_dir and self.context.scheduled_for is not None:
            line = {
                "job_id": self.context.job_id,
                "schedule": self.context.schedule,
                "due_ms": int(self.context.scheduled_for.timestamp() * 1000),
            }
            path = Path(record_dir) / f"ticks-{os.getpid()}.jsonl"
            with path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(line) + "\n")
        return True


JobFactory.register_job_type(TICK_JOB_TYPE, TickJob, TickParams)
