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

from chaoslib.contract import JobKind

WORKER_KILL = "worker-kill"
WORKER_TERM = "worker-term"
WORKER_PAUSE = "worker-pause"
REDIS_SHUTDOWN = "redis-shutdown"
REDIS_KILL = "redis-kill"
FAULT_KINDS = (WORKER_KILL, WORKER_TERM, WORKER_PAUSE, REDIS_SHUTDOWN, REDIS_KILL)
WORKER_FAULTS = frozenset({WORKER_KILL, WORKER_TERM, WORKER_PAUSE})

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

    @property
    def slots(self) -> int:
        return self.workers * self.concurrency


def default_faults(jobs: int) -> int:
    """One fault per 250 jobs, at least one of each kind, at most 24."""
    return min(max(jobs // 250, len(FAULT_KINDS)), 24)


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


def job_mix(jobs: int) -> dict[JobKind, int]:
    """How many jobs of each special kind; the rest succeed at once."""
    return {
        "doomed": max(3, jobs // 200),
        "flaky": max(10, jobs // 20),
        "limited": min(100, max(5, jobs // 200)),
    }


def plan_jobs(cfg: Config, rng: random.Random) -> list[PlannedJob]:
    mix = job_mix(cfg.jobs)
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
                # Fewer failures than retries leave room for one lease recovery on top.
                fail_first=rng.randint(1, 2) if kind == "flaky" else 0,
                work_ms=rng.randint(0, 2 * cfg.work_ms),
            )
        )
    return planned


def plan_faults(cfg: Config, rng: random.Random) -> list[PlannedFault]:
    """Every kind once, in a seeded order, then seeded extra ones, at rising progress points."""
    kinds = list(FAULT_KINDS)
    rng.shuffle(kinds)
    kinds += [rng.choice(FAULT_KINDS) for _ in range(cfg.faults - len(kinds))]
    points = sorted(rng.uniform(FIRST_FAULT_AT, LAST_FAULT_AT) for _ in kinds)
    return [
        PlannedFault(kind, at, rng.randrange(cfg.workers), _hold_s(kind, cfg, rng))
        for kind, at in zip(kinds, points, strict=True)
    ]


def _hold_s(kind: str, cfg: Config, rng: random.Random) -> float:
    if kind == WORKER_PAUSE:
        # Past the lease, plus time for a maintenance pass (1 s) to recover its jobs.
        return cfg.lease_s + rng.uniform(2.0, 3.0)
    if kind in (REDIS_SHUTDOWN, REDIS_KILL):
        # Sometimes shorter than a lease (workers renew in time), sometimes longer.
        return rng.uniform(0.2, 1.5 * cfg.lease_s)
    return rng.uniform(0.1, 1.0)
