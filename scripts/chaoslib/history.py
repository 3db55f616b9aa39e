"""The history of a run: what was enqueued, every execution, every fault, and where Redis left
each job at the end. The checks read only this, so they can be tested on made-up histories."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from chaoslib.contract import RECORD_FILE_GLOB, JobKind


@dataclass(frozen=True)
class JobMeta:
    id: str
    seq: int
    priority: int
    kind: JobKind
    fail_first: int = 0


@dataclass
class Execution:
    """One run of a job's ``execute()``; ``end_ms`` and ``ok`` stay None if it never ended."""

    job_id: str
    proc: str
    pid: int
    number: int
    attempt: int
    start_ms: int
    end_ms: int | None = None
    ok: bool | None = None


@dataclass(frozen=True)
class FaultEvent:
    kind: str
    at_s: float
    duration_s: float
    slot: int | None = None
    pid: int | None = None
    # Ids in the in-flight set around the fault (before and after it).
    inflight: frozenset[str] = frozenset()
    # Of those, the ones the targeted worker owned.
    held: frozenset[str] = frozenset()
    detail: str = ""
    problems: tuple[str, ...] = ()
    # For a pause: how many of its jobs other workers took over while it was stopped.
    taken_over: int = 0

    @property
    def touched(self) -> frozenset[str]:
        return self.inflight | self.held


@dataclass(frozen=True)
class DeadEntry:
    id: str
    attempts: int
    error_type: str | None
    error_message: str


@dataclass
class FinalState:
    """Where Redis keeps each job once the run is over."""

    # Structure name (p1..p4, retry, scheduled, parked, inflight) -> ids, duplicates included.
    places: dict[str, list[str]] = field(default_factory=dict)
    dead: dict[str, DeadEntry] = field(default_factory=dict)
    job_hashes: set[str] = field(default_factory=set)
    counters: dict[str, int] = field(default_factory=dict)
    # The limiters' own logs, by rate key: (member, reserved_at_ms); members are "ms:job id".
    reservations: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


@dataclass
class History:
    jobs: dict[str, JobMeta]
    executions: list[Execution]
    faults: list[FaultEvent]
    final: FinalState
    workers: int
    concurrency: int
    max_retries: int
    min_interval_ms: int
    # Claims each worker holds beyond its running jobs (qworker work's default: concurrency).
    prefetch: int = 0

    @property
    def touched(self) -> frozenset[str]:
        """Every job in flight at some fault."""
        return frozenset().union(*(event.touched for event in self.faults))

    def runs_by_job(self) -> dict[str, list[Execution]]:
        runs: dict[str, list[Execution]] = defaultdict(list)
        for run in self.executions:
            runs[run.job_id].append(run)
        for job_runs in runs.values():
            job_runs.sort(key=lambda run: (run.start_ms, run.proc, run.number))
        return runs


def read_executions(directory: Path) -> list[Execution]:
    """Pair the start and end records every worker process appended."""
    runs: dict[tuple[str, int], Execution] = {}
    for path in sorted(directory.glob(RECORD_FILE_GLOB)):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            key = (record["proc"], record["n"])
            if record["ev"] == "start":
                runs[key] = Execution(
                    job_id=record["id"],
                    proc=record["proc"],
                    pid=record["pid"],
                    number=record["n"],
                    attempt=record["attempt"],
                    start_ms=record["t_ms"],
                )
            elif key in runs:
                runs[key].end_ms = record["t_ms"]
                runs[key].ok = bool(record["ok"])
    return list(runs.values())


@dataclass
class RunFacts:
    """What the driver saw, beside the history: how the run itself went."""

    elapsed_s: float | None  # workers' start to every job final; None if that never came
    fault_kinds: tuple[str, ...]
    skipped_faults: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    stop_codes: dict[int, int | None] = field(default_factory=dict)
    worker_starts: int = 0
    # Counted in the workers' logs.
    rate_limited: int = 0
    lease_lost_warnings: int = 0
    lease_lost_by_pid: dict[int, int] = field(default_factory=dict)
    unexpected_errors: int = 0
    error_summaries: list[str] = field(default_factory=list)
