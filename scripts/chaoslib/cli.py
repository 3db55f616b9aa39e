"""Command line of ``scripts/chaos``."""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys
from pathlib import Path

from chaoslib.plan import (
    CANCELS,
    OPTIONAL_PARTS,
    Config,
    default_cancels,
    default_faults,
    default_timeout_s,
)


def parse_args(argv: list[str] | None) -> Config:
    parser = argparse.ArgumentParser(
        prog="scripts/chaos",
        description="Run qworker workers on a real redis-server (AOF, fsync always) while "
        "killing, stopping and pausing workers and Redis, starting a worker during a Redis "
        "outage, with jobs whose hooks raise and jobs that block their worker's event loop, "
        "while canceling jobs as they wait and as they run; then audit every job and its "
        "state. Exits 1 if an invariant breaks.",
    )
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs to enqueue (20000)")
    parser.add_argument("--workers", type=int, default=4, help="worker processes (4)")
    parser.add_argument("--concurrency", type=int, default=8, help="jobs per worker (8)")
    parser.add_argument("--seed", type=int, help="seed of the job mix and fault plan (random)")
    parser.add_argument("--faults", type=int, help="faults to inject (jobs/250, 5 to 24)")
    parser.add_argument(
        "--cancels", type=int, help="jobs to cancel during the run (jobs/50, at least 8)"
    )
    parser.add_argument(
        "--keep-finished",
        type=float,
        default=3600.0,
        help="QWORKER_KEEP_FINISHED_S: seconds done and canceled jobs keep their records "
        "(3600; 0 deletes them at once)",
    )
    parser.add_argument("--lease", type=float, default=2.0, help="worker lease, seconds (2)")
    parser.add_argument("--work-ms", type=int, default=100, help="mean job duration, ms (100)")
    parser.add_argument("--grace", type=float, default=5.0, help="shutdown grace, seconds (5)")
    parser.add_argument("--timeout", type=float, help="give up after this many seconds")
    parser.add_argument("--dir", type=Path, help="keep records and logs here (an empty dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary run directory")
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=OPTIONAL_PARTS,
        help="leave out jobs whose hooks raise, blocker jobs, the new-worker-in-outage "
        "fault, the cancels (and the long jobs they aim at) or the every-second schedule, "
        "to look at the others alone "
        "(repeatable)",
    )
    args = parser.parse_args(argv)
    if args.jobs < 100:
        parser.error("--jobs must be at least 100")
    if args.workers < 2:
        parser.error("--workers must be at least 2: a paused worker's jobs need a taker")
    if args.concurrency < 2:
        parser.error("--concurrency must be at least 2")
    without = frozenset(args.without)
    kinds = len(Config(without=without).fault_kinds)
    faults = default_faults(args.jobs) if args.faults is None else args.faults
    if faults < kinds:
        parser.error(f"--faults must be at least {kinds}: one of each kind")
    cancels = default_cancels(args.jobs) if args.cancels is None else args.cancels
    if CANCELS in without:
        cancels = 0
    if cancels < 0 or args.keep_finished < 0:
        parser.error("--cancels and --keep-finished must not be negative")
    return Config(
        jobs=args.jobs,
        workers=args.workers,
        concurrency=args.concurrency,
        seed=random.randrange(1_000_000) if args.seed is None else args.seed,
        faults=faults,
        lease_s=args.lease,
        work_ms=args.work_ms,
        grace_s=args.grace,
        timeout_s=args.timeout
        or default_timeout_s(args.jobs, args.workers * args.concurrency, args.work_ms),
        directory=args.dir,
        keep=args.keep,
        without=without,
        keep_finished_s=args.keep_finished,
        cancels=cancels,
    )


def main(argv: list[str] | None = None) -> int:
    from chaoslib.run import run

    # SIGTERM ends the run like Ctrl-C: the run's clean-up kills its workers and Redis.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return asyncio.run(run(parse_args(argv)))
    except KeyboardInterrupt:
        print("chaos: interrupted; workers and Redis stopped", file=sys.stderr)
        return 130
