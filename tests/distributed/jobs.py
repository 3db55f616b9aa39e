"""A rate-limited probe for the distributed tests (loaded like any plugin, by module name).

Like ``tests.jobtypes.probe`` it writes ``start`` and ``done`` lines to a file (read back with
``tests.jobtypes.read_events``), so what ran is known whatever happened to Redis meanwhile.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory
from qworker.rate_limiter import RateLimit

LIMITED_PROBE = "limited_probe"


class LimitedProbeParams(BaseJobParams):
    job_type: Literal["limited_probe"] = "limited_probe"
    log_path: str = Field(min_length=1)
    per_hour: int = Field(default=1, ge=0)


class LimitedProbeJob(BaseJob[LimitedProbeParams]):
    """Records its run; at most ``per_hour`` of them run in any hour, across every worker."""

    async def execute(self) -> bool:
        for kind in ("start", "done"):
            line = f"{kind}\t{self.context.job_id}\t{self.context.attempt}\tlimited\n"
            fd = os.open(self.params.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        return True

    def get_rate_limit(self) -> RateLimit:
        return RateLimit(max_per_hour=self.params.per_hour)


JobFactory.register_job_type(LIMITED_PROBE, LimitedProbeJob, LimitedProbeParams)


def limited_probe(log_path: Path | str, **params: Any) -> dict[str, Any]:
    return {"job_type": LIMITED_PROBE, "log_path": str(log_path), **params}
