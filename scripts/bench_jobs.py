"""Job types for `scripts/bench`; workers load them by `PYTHONPATH=scripts --import bench_jobs`.

* ``bench_noop``: does nothing at all. The drain and scale figures measure qworker, not a job.
* ``bench_latency``: appends ``sent_at started_at`` (epoch seconds) to the file named by
  ``QWORKER_BENCH_LATENCY_FILE`` as the first thing it does, for the enqueue-to-start figure.
  Kept apart from ``bench_noop`` so the drain never pays for the recording.

Neither has a rate limit, and both use qworker's default retry policy.
"""

from __future__ import annotations

import os
import time
from typing import Final, Literal

from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory

NOOP: Final = "bench_noop"
LATENCY: Final = "bench_latency"
LATENCY_FILE_ENV: Final = "QWORKER_BENCH_LATENCY_FILE"


class NoopParams(BaseJobParams):
    job_type: Literal["bench_noop"] = NOOP
    n: int = 0


class NoopJob(BaseJob[NoopParams]):
    async def execute(self) -> bool:
        return True


class LatencyParams(BaseJobParams):
    job_type: Literal["bench_latency"] = LATENCY
    sent_at: float


class LatencyJob(BaseJob[LatencyParams]):
    async def execute(self) -> bool:
        started_at = time.time()
        # One O_APPEND write per job: lines from concurrent jobs never interleave.
        fd = os.open(os.environ[LATENCY_FILE_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{self.params.sent_at!r} {started_at!r}\n".encode())
        finally:
            os.close(fd)
        return True


JobFactory.register_job_type(NOOP, NoopJob, NoopParams)
JobFactory.register_job_type(LATENCY, LatencyJob, LatencyParams)
