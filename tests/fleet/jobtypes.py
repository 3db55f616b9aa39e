"""Two plugin job types for the fleet tests, registered when this module is imported.

Each job records which worker ran it: the name a test gives each worker's ClientContainer under
``fleet_name`` (``ClientContainer.provide``). A worker without a name fails the job, so a job
run by a worker the test did not set up is seen, not hidden.
"""

from __future__ import annotations

from typing import Literal

from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory

# (job id, job type, name of the worker that ran it), in the order they ran.
RAN: list[tuple[str, str, str]] = []
NAME_CLIENT = "fleet_name"


class ReportParams(BaseJobParams):
    job_type: Literal["report"] = "report"
    n: int = 0


class MailParams(BaseJobParams):
    job_type: Literal["mail"] = "mail"
    n: int = 0


class _Recorded(BaseJob[BaseJobParams]):
    async def execute(self) -> bool:
        name = str(self.clients.get(NAME_CLIENT))
        RAN.append((self.context.job_id, self.params.job_type, name))
        return True


class ReportJob(_Recorded):
    pass


class MailJob(_Recorded):
    pass


JobFactory.register_job_type("report", ReportJob, ReportParams)
JobFactory.register_job_type("mail", MailJob, MailParams)
