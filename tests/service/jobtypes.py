"""A minimal job type for the QueueService tests."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory


class EchoParams(BaseJobParams):
    job_type: Literal["echo"] = "echo"
    text: str = Field(min_length=1, max_length=50)


class EchoJob(BaseJob[EchoParams]):
    async def execute(self) -> bool:
        return True


JobFactory.register_job_type("echo", EchoJob, EchoParams)
