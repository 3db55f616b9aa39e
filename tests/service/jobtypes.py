"""Minimal job types for the QueueService tests."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory


class EchoParams(BaseJobParams):
    job_type: Literal["echo"] = "echo"
    text: str = Field(min_length=1, max_length=50)


class EchoJob(BaseJob[EchoParams]):
    async def execute(self) -> bool:
        return True


JobFactory.register_job_type("echo", EchoJob, EchoParams)


class RetriesParams(BaseJobParams):
    job_type: Literal["own_retries"] = "own_retries"
    retries: int


class OwnRetriesJob(BaseJob[RetriesParams]):
    """Each job asks for its own retry limit, as ``get_retry_config`` is an instance method."""

    built = 0  # jobs made, to see that enqueue asks each job

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        type(self).built += 1

    async def execute(self) -> bool:
        return True

    def get_retry_config(self) -> dict[str, Any]:
        if self.params.retries < 0:
            raise RuntimeError("no retry config for a negative count")
        return {"max_retries": self.params.retries, "base_delay": 1}


class CountedEchoParams(BaseJobParams):
    job_type: Literal["counted_echo"] = "counted_echo"
    text: str


class CountedEchoJob(BaseJob[CountedEchoParams]):
    """Keeps BaseJob's retry config: enqueue needs no job built for it."""

    built = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        type(self).built += 1

    async def execute(self) -> bool:
        return True


JobFactory.register_job_type("own_retries", OwnRetriesJob, RetriesParams)
JobFactory.register_job_type("counted_echo", CountedEchoJob, CountedEchoParams)
