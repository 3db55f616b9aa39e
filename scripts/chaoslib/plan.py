"""What a run does, decided up front from the seed: the job mix and the fault schedule.

Everything random comes from one ``random.Random(seed)``, so a seed names one plan: the same
jobs (priorities, kinds, durations) and the same faults (kind, target, timing, progress point).
The operating system still schedules the processes, so two runs of a seed share their plan, not
every interleaving.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from chaoslib.contract import (
    ALWAYS,
    BLOCKER_TIMEOUT_S,
    HOOK_KINDS,
    LONG_WORK_MS,
    RENEWAL_MARGIN_S,
    JobKind,
)

WORKER_KILL = "worker-kill"
WORKER_TERM = "worker-term"
WORKER_PAUSE = "worker-pause"
REDIS_SHUTDOWN = "redis-shutdown"
REDIS_KILL = "redis-kill"
# Redis goes away for longer than the lease while every worker's jobs are held running; a new
# worker process starts meanwhile and connects the moment Redis is back.
NEW_WORKER_IN_OUTAGE = "new-worker-in-outage"
# The next blocker job to run blocks its worker's event loop (synchronous code) for longer than
# its timeout, qworker's renewal margin and the lease.
BLOCKED_LOOP = "blocked-loop"
FAULT_KINDS = (
    WORKER_KILL, WORKER_TERM, WORKER_PAUSE, REDIS_SHUTDOWN, REDIS_KILL, NEW_WORKER_IN_OUTAGE,
    BLOCKED_LOOP,
)  # fmt: skip
WORKER_FAULTS = frozenset({WORKER_KILL, WORKER_TERM, WORKER_PAUSE, BLOCKED_LOOP})
# Each of these takes many seconds: once per run is enough.
ONCE_PER_RUN = frozenset({NEW_WORKER_IN_OUTAGE, BLOCKED_LOOP})
# Not injected but observed: a worker process that exited by itself.
WORKER_CRASH = "worker-crash"

# What ``--without`` can leave out of a run (to look at one new fault at a time).
HOOK_RAISES = "hook-raises"
CANCELS = "cancels"
# A schedule firing every second through the run (chaoslib/schedules.py).
SCHEDULES = "schedules"
# Chains and fan-in groups of jobs waiting for each other (chaoslib/flows.py).
FLOWS = "flows"
OPTIONAL_PARTS = (HOOK_RAISES, BLOCKED_LOOP, NEW_WORKER_IN_OUTAGE, CANCELS, SCHEDULES, FLOWS)

# What a planned cancel aims at: a job still queued (picked from the plan, far enough behind the
# progress point), a job waiting in the retry or parked set, a job executing, or a long job
# executing (picked from what is there when the cancel is due).
CANCEL_QUEUED = "queued"
CANCEL_WAITING = "waiting"
CANCEL_RUNNING = "running"
CANCEL_LONG = "long"
CANCEL_TARGETS = (
    (CANCEL_QUEUED, 35),
    (CANCEL_WAITING, 15),
    (CANCEL_RUNNING, 30),
    (CANCEL_LONG, 20),
)
# Cancels come between these fractions of the jobs being final.
FIRST_CANCEL_AT = 0.02
LAST_CANCEL_AT = 0.9

# Faults strike between these fractions of the jobs being final, so that each one finds work
# in flight and the run still has jobs left to show the recovery.
FIRST_FAULT_AT = 0.04
LAST_FAULT_AT = 0.75


@dataclass(frozen=True)
class Config:
    jobs: int = 20_000
    workers: int = 4
    concurrency: int = 8
    seed: int = 0
    faults: int = 0
    lease_s: float = 2.0
    work_ms: int = 100
    grace_s: float = 5.0
    timeout_s: float = 0.0
    directory: Path | None = None
    keep: bool = False
    without: frozenset[str] = frozenset()
    # QWORKER_KEEP_FINISHED_S of the workers and the driver: how long done and canceled jobs
    # keep their records (0: deleted at once).
    keep_finished_s: float = 3600.0
    cancels: int = 0

    @property
    def slots(self) -> int:
        return self.workers * self.concurrency

    @property
    def fault_kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind in FAULT_KINDS if kind not in self.without)

    @property
    def block_ms(self) -> int:
        """How long a blocker blocks its loop: its timeout and the heartbeat's margin, then a
        heartbeat interval (lease/3) for the last renewal, the lease running out, a recovery
        pass (lease/4), and a moment for another worker to claim and start the job."""
        return int((BLOCKER_TIMEOUT_S + RENEWAL_MARGIN_S + 1.6 * self.lease_s + 1.5) * 1000)


def default_faults(jobs: int) -> int:
    """One fault per 250 jobs, at least one of each kind, at most 24."""
    return min(max(jobs // 250, len(FAULT_KINDS)), 24)


def hold_after_s(cfg: Config) -> float:
    """How long jobs stay held once Redis is back from a new-worker-in-outage fault: past the
    lease and a recovery pass, so a worker that recovers live jobs is seen doing it."""
    return cfg.lease_s + 0.5


def default_timeout_s(jobs: int, slots: int, work_ms: int) -> float:
    """Generous: ten times the fault-free duration, plus a minute for the faults."""
    return 60.0 + 10 * jobs * work_ms / 1000 / slots


@dataclass(frozen=True)
class PlannedJob:
    seq: int
    priority: int
    kind: JobKind
    fail_first: int
    work_ms: int


@dataclass(frozen=True)
class PlannedFault:
    kind: str
    at_fraction: float
    slot: int
    # Restart delay after a kill or stop, downtime of Redis, or length of a pause.
    hold_s: float
    # For a Redis outage with a new worker: SHUTDOWN (False) or SIGKILL (True).
    kill: bool = False


def job_mix(jobs: int, without: frozenset[str] = frozenset()) -> dict[JobKind, int]:
    """How many jobs of each special kind; the rest succeed at once."""
    mix: dict[JobKind, int] = {
        "doomed": max(3, jobs // 200),
        "flaky": max(10, jobs // 20),
        "limited": min(100, max(5, jobs // 200)),
    }
    if HOOK_RAISES not in without:
        mix |= {"hook-limit": max(3, jobs // 400), "hook-retry": max(3, jobs // 400)}
        mix["hook-reset"] = max(3, jobs // 400)
    if BLOCKED_LOOP not in without:
        # Run briefly unless the injector asks for a block: enough of them, spread over the
        # queue, that one comes soon after a request.
        mix["blocker"] = max(20, jobs // 100)
    if CANCELS not in without:
        # Few (each holds a slot for seconds), but some are always running to be canceled.
        mix["long"] = max(5, jobs // 400)
    return mix


def plan_jobs(cfg: Config, rng: random.Random) -> list[PlannedJob]:
    mix = job_mix(cfg.jobs, cfg.without)
    special = rng.sample(range(cfg.jobs), sum(mix.values()))
    kinds: dict[int, JobKind] = {}
    for kind, count in mix.items():
        for seq in special[:count]:
            kinds[seq] = kind
        special = special[count:]
    planned = []
    for seq in range(cfg.jobs):
        kind = kinds.get(seq, "ok")
        planned.append(
            PlannedJob(
                seq=seq,
                priority=rng.randint(1, 4),
                kind=kind,
                fail_first=_fail_first(kind, rng),
                work_ms=_work_ms(kind, cfg, rng),
            )
        )
    return planned


def _work_ms(kind: JobKind, cfg: Config, rng: random.Random) -> int:
    if kind == "blocker":
        return cfg.block_ms
    if kind == "long":
        return LONG_WORK_MS
    return rng.randint(0, 2 * cfg.work_ms)


def _fault_group(kind: str) -> int:
    if kind == BLOCKED_LOOP:
        return 0
    if kind in WORKER_FAULTS:
        return 1
    return 2 if kind == NEW_WORKER_IN_OUTAGE else 3


def _fail_first(kind: JobKind, rng: random.Random) -> int:
    if kind == "flaky":
        # Fewer failures than retries leave room for one lease recovery on top.
        return rng.randint(1, 2)
    if kind in HOOK_KINDS:
        # Raising on the first attempts (then done), or on every attempt (then dead).
        return rng.choice((1, 2, ALWAYS))
    return 0


def plan_faults(cfg: Config, rng: random.Random) -> list[PlannedFault]:
    """Every kind once, in a seeded order, then seeded extra ones, at rising progress points."""
    kinds = list(cfg.fault_kinds)
    rng.shuffle(kinds)
    # A blocked loop first, while blocker jobs are plenty; the worker faults next, which may
    # strike other workers during the block (Redis faults wait for it to end); then the rest.
    # So every kind fits in a short run.
    kinds.sort(key=_fault_group)
    extra = [kind for kind in cfg.fault_kinds if kind not in ONCE_PER_RUN]
    kinds += [rng.choice(extra) for _ in range(cfg.faults - len(kinds))]
    points = sorted(rng.uniform(FIRST_FAULT_AT, LAST_FAULT_AT) for _ in kinds)
    return [
        PlannedFault(
            kind, at, rng.randrange(cfg.workers), _hold_s(kind, cfg, rng), rng.random() < 0.5
        )
        for kind, at in zip(kinds, points, strict=True)
    ]


def _hold_s(kind: str, cfg: Config, rng: random.Random) -> float:
    if kind == WORKER_PAUSE:
        # Past the lease, plus time for a maintenance pass (1 s) to recover its jobs.
        return cfg.lease_s + rng.uniform(2.0, 3.0)
    if kind in (REDIS_SHUTDOWN, REDIS_KILL):
        # Sometimes shorter than a lease (workers renew in time), sometimes longer.
        return rng.uniform(0.2, 1.5 * cfg.lease_s)
    if kind == NEW_WORKER_IN_OUTAGE:
        # Always longer than the lease: every lease has expired when Redis is back.
        return rng.uniform(1.1 * cfg.lease_s, 1.4 * cfg.lease_s)
    return rng.uniform(0.1, 1.0)


@dataclass(frozen=True)
class PlannedCancel:
    at_fraction: float
    target: str
    # Which of the candidates found when the cancel is due (a fraction of their sorted list).
    pick: float
    # For a queued target: the planned job (its seq), chosen now.
    seq: int | None = None


def default_cancels(jobs: int) -> int:
    """About 2% of the jobs."""
    return max(8, jobs // 50)


def plan_cancels(cfg: Config, jobs: list[PlannedJob], rng: random.Random) -> list[PlannedCancel]:
    """Seeded cancels at rising progress points. A queued target is a job so far behind the
    progress point in claim order (priority, then enqueue order) that it is still waiting then,
    unless faults or retries reorder a lot; the others are picked from what is there."""
    if CANCELS in cfg.without:
        return []
    targets = [target for target, _weight in CANCEL_TARGETS]
    weights = [weight for _target, weight in CANCEL_TARGETS]
    points = sorted(rng.uniform(FIRST_CANCEL_AT, LAST_CANCEL_AT) for _ in range(cfg.cancels))
    in_claim_order = sorted(jobs, key=lambda job: (job.priority, job.seq))
    chosen: set[int] = set()
    plan = []
    for at in points:
        target = rng.choices(targets, weights)[0]
        seq = None
        if target == CANCEL_QUEUED:
            ahead = min(int((at + 0.05) * len(jobs)), len(jobs) - 1)
            seq = in_claim_order[rng.randrange(ahead, len(jobs))].seq
            if seq in chosen:
                continue
            chosen.add(seq)
        plan.append(PlannedCancel(at, target, rng.random(), seq))
    return plan
