"""What the chaos job (``scripts/chaos_jobs.py``) and the audit agree on.

The job module registers a job type when imported; the audit must not, so the shared names live
here and the checks can run anywhere (in a test process, on a copied run directory).
"""

from __future__ import annotations

from typing import Literal

JOB_TYPE = "chaos"
# Jobs that block their worker's event loop need a short timeout of their own: a second type.
BLOCKER_JOB_TYPE = "chaos-blocker"
JobKind = Literal[
    "ok", "flaky", "doomed", "limited", "hook-limit", "hook-retry", "hook-reset", "blocker", "long"
]
# Kinds whose job code raises outside ``execute()`` (or raises a RateLimitedJobError whose
# reset_at is no time at all) on its first ``fail_first`` attempts. Such a raise must count as
# a failed attempt like any other failure.
HOOK_KINDS: frozenset[str] = frozenset({"hook-limit", "hook-retry", "hook-reset"})

# Where each worker process appends its execution records: one file per process.
RECORD_DIR_ENV = "CHAOS_RECORD_DIR"
RECORD_FILE_GLOB = "exec-*.jsonl"
# While this file exists in the record directory, every chaos job that has done its work waits
# (asynchronously) before it returns: the injector holds jobs in flight across a fault.
HOLD_FILE = "hold"
# A held job gives up waiting after this long, whatever happens to the injector.
HOLD_MAX_S = 60.0
# While this file exists, the next blocker job to run takes it (one process wins the unlink)
# and blocks its worker's event loop: the injector decides when a loop blocks.
BLOCK_REQUEST_FILE = "block-request"

# A long job works this long (longer than the lease, so its heartbeat renews it): running when
# a cancel comes, its worker must stop it. The driver cancels a few of them as they run.
LONG_WORK_MS = 3000

# Short retries, so that failing jobs reach their final state within seconds. The same
# max_retries as qworker's default, which lease recovery applies to every job.
MAX_RETRIES = 3
RETRY_BASE_DELAY_S = 0.2
RETRY_MAX_DELAY_S = 1.0
DOOMED_ERROR = "DoomedJobError"
# What a hook raises; ``fail_first`` at least this large means "on every attempt".
HOOK_ERROR = "HookFailedError"
ALWAYS = MAX_RETRIES + 1

# A blocker that takes a block request sleeps synchronously for longer than this timeout, the
# margin past it during which qworker's heartbeat still renews a job
# (qworker.heartbeat.OVERDUE_MARGIN_S), and the lease.
BLOCKER_TIMEOUT_S = 0.5
RENEWAL_MARGIN_S = 5.0

# The limited jobs share one key: at most one execution per 120 ms across every worker.
LIMITED_RATE_KEY = "chaos-limited"
LIMITED_MIN_INTERVAL_MS = 120
# Every other job passes a limiter that never closes, as every tweet passes the X limiter: the
# gate (a Redis round trip between claim and execution) is on every job's path, faults included.
METERED_RATE_KEY = "chaos-metered"
METERED_MAX_PER_DAY = 1_000_000_000
RATE_KEYS = (LIMITED_RATE_KEY, METERED_RATE_KEY)
