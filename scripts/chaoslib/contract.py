"""What the chaos job (``scripts/chaos_jobs.py``) and the audit agree on.

The job module registers a job type when imported; the audit must not, so the shared names live
here and the checks can run anywhere (in a test process, on a copied run directory).
"""

from __future__ import annotations

from typing import Literal

JOB_TYPE = "chaos"
JobKind = Literal["ok", "flaky", "doomed", "limited"]

# Where each worker process appends its execution records: one file per process.
RECORD_DIR_ENV = "CHAOS_RECORD_DIR"
RECORD_FILE_GLOB = "exec-*.jsonl"

# Short retries, so that failing jobs reach their final state within seconds. The same
# max_retries as qworker's default, which lease recovery applies to every job.
MAX_RETRIES = 3
RETRY_BASE_DELAY_S = 0.2
RETRY_MAX_DELAY_S = 1.0
DOOMED_ERROR = "DoomedJobError"

# The limited jobs share one key: at most one execution per 120 ms across every worker.
LIMITED_RATE_KEY = "chaos-limited"
LIMITED_MIN_INTERVAL_MS = 120
# Every other job passes a limiter that never closes, as every tweet passes the X limiter: the
# gate (a Redis round trip between claim and execution) is on every job's path, faults included.
METERED_RATE_KEY = "chaos-metered"
METERED_MAX_PER_DAY = 1_000_000_000
RATE_KEYS = (LIMITED_RATE_KEY, METERED_RATE_KEY)
