"""A job type that records where it came from: its schedule and the due time it is for."""

from __future__ import annotations

import json
from typing import Literal

from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory

ORIGIN = "origin"


class OriginParams(BaseJobParams):
    job_type: Literal["origin"] = "origin"
    log_path: str = ""
    note: str = ""


class OriginJob(BaseJob[OriginParams]):
    async def execute(self) -> bool:
        if self.params.log_path:
            context = self.context
            line = {
                "job_id": context.job_id,
                "schedule": context.schedule,
                "scheduled_for": context.scheduled_for.isoformat()
                if context.scheduled_for
                else None,
            }
            with open(self.params.log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(line) + "\n")
        return True


JobFactory.register_job_type(ORIGIN, OriginJob, OriginParams)
