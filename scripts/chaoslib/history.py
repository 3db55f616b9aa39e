"""The history of a run: what was enqueued, every execution, every fault, and where Redis left
each job at the end. The checks read only this, so they can be tested on made-up histories."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    # None: its process died during it. With ``end_ms`` set, ``ok`` None: it was cancelled.
    end_ms: int | None = None
    ok: bool | None = None
    # How long it blocked its worker's event loop on purpose (a blocker job), ms.
    block_ms: int = 0

    @property
    def cut(self) -> bool:
        """It never finished its work: killed with its process, or cancelled."""
        return self.ok is None


@dataclass(frozen=True)
class HookRaise:
    """A hook of the job (``get_rate_limit``, ``get_retry_config``) raised."""

    job_id: str
    proc: str
    pid: int
    attempt: int
    hook: str
    t_ms: int


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
    # For a blocked event loop: the blocking execution (process token, number) and the jobs
    # its worker held but had not begun to execute (they wait behind the blocked loop).
    run: tuple[str, int] | None = None
    behind: frozenset[str] = frozenset()

    @property
    def touched(self) -> frozenset[str]:
        return self.inflight | self.held


@dataclass(frozen=True)
class DeadEntry:
    id: str
    attempts: int
    error_type: str | None
    error_message: str


@dataclass(frozen=True)
class JobFinal:
    """A job's record (its hash) as the run leaves it: the fields the audit reads."""

    state: str
    attempts: int = 0
    error_type: str | None = None
    # Set when the job was canceled while waiting: the state it left.
    canceled_from: str | None = None
    # Set when a cancel was asked for while it ran.
    cancel_requested_at_ms: int | None = None


@dataclass(frozen=True)
class CancelRequest:
    """One ``QueueService.cancel_job`` call of the driver, with its reply."""

    job_id: str
    # What the plan aimed at (queued, waiting, running, long), and the run's clock then.
    target: str
    at_s: float
    # Wall-clock ms (the execution records' clock) when the call was first sent and answered.
    sent_ms: int
    replied_ms: int
    # canceled | requested | finished | missing | unanswered
    outcome: str
    previous_state: str
    # Calls it took (a call Redis did not answer is sent again: cancel is idempotent).
    calls: int = 1


@dataclass
class FinalState:
    """Where Redis keeps each job once the run is over."""

    # Structure name (p1..p4, retry, scheduled, parked, inflight) -> ids, duplicates included.
    places: dict[str, list[str]] = field(default_factory=dict)
    dead: dict[str, DeadEntry] = field(default_factory=dict)
    # Every job's record, by id (enqueued ones, and any other id found in a structure);
    # a job without a record is absent.
    records: dict[str, JobFinal] = field(default_factory=dict)
    # The lists of recently finished ids (done, canceled) that the finishing scripts keep,
    # capped (keys.RECENT_FINISHED_MAX): Redis's own log of which jobs it acknowledged.
    recent: dict[str, list[str]] = field(default_factory=dict)
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
    hook_raises: list[HookRaise] = field(default_factory=list)
    lease_s: float = 0.0
    # The run was stopped before every job was final (a job looped): jobs still queued then
    # are not judged, only the ones that got somewhere.
    stopped: bool = False
    cancels: list[CancelRequest] = field(default_factory=list)
    # How long done and canceled records are kept (0: deleted at once, so a done job has none).
    keep_finished_s: float = 3600.0

    def final_state(self, job_id: str) -> str | None:
        """The state its record names; None without a record."""
        record = self.final.records.get(job_id)
        return record.state if record is not None else None

    @property
    def cancel_asked(self) -> dict[str, CancelRequest]:
        """The driver's cancel request of each job it asked to cancel (one per job)."""
        return {request.job_id: request for request in self.cancels}

    @property
    def canceled(self) -> frozenset[str]:
        """Jobs whose record says canceled: the cancels that took effect. Without kept records
        (keep_finished_s 0) every job the driver asked to cancel may have been."""
        if self.keep_finished_s <= 0:
            return frozenset(self.cancel_asked)
        return frozenset(
            i for i, record in self.final.records.items() if record.state == "canceled"
        )

    @property
    def unsettled(self) -> frozenset[str]:
        """Jobs still queued or in flight when a stopped run ended (none if it finished)."""
        if not self.stopped:
            return frozenset()
        return frozenset(job_id for ids in self.final.places.values() for job_id in ids)

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

    def tries_by_job(self) -> dict[str, list[Try]]:
        """Every attempt each job was given, in time order: its executions, and the raises of
        ``get_rate_limit()``, which come before any execution (the gate asks it)."""
        tries: dict[str, list[Try]] = defaultdict(list)
        for run in self.executions:
            tries[run.job_id].append(Try(run.start_ms, run.attempt, run.ok, run.proc))
        for hook in self.hook_raises:
            if hook.hook == GATE_HOOK:
                tries[hook.job_id].append(Try(hook.t_ms, hook.attempt, False, hook.proc))
        for job_tries in tries.values():
            job_tries.sort(key=lambda one: one.at_ms)
        return tries


GATE_HOOK = "get_rate_limit"


@dataclass(frozen=True)
class Try:
    at_ms: int
    attempt: int
    ok: bool | None
    proc: str


def read_records(directory: Path) -> tuple[list[Execution], list[HookRaise]]:
    """Pair the start and end records every worker process appended; collect hook raises."""
    runs: dict[tuple[str, int], Execution] = {}
    hooks: list[HookRaise] = []
    for path in sorted(directory.glob(RECORD_FILE_GLOB)):
        for line in path.read_text().splitlines():
            if line.strip():
                add_record(json.loads(line), runs, hooks)
    return list(runs.values()), hooks


def add_record(
    record: dict[str, Any], runs: dict[tuple[str, int], Execution], hooks: list[HookRaise]
) -> Execution | None:
    """Fold one record in; returns the execution it started or ended, if any."""
    if record["ev"] == "hook":
        fields = ("id", "proc", "pid", "attempt", "hook", "t_ms")
        hooks.append(HookRaise(*(record[name] for name in fields)))
        return None
    key = (record["proc"], record["n"])
    if record["ev"] == "start":
        runs[key] = Execution(
            job_id=record["id"],
            proc=record["proc"],
            pid=record["pid"],
            number=record["n"],
            attempt=record["attempt"],
            start_ms=record["t_ms"],
            block_ms=record.get("block_ms", 0),
        )
        return runs[key]
    run = runs.get(key)
    if run is not None:
        run.end_ms = record["t_ms"]
        run.ok = None if record["ok"] is None else bool(record["ok"])
    return run


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
    # Why the run was stopped before every job was final (a job looping), if it was.
    stopped_early: str = ""
    # Planned cancels not made: every job was final already, or no candidate was there.
    skipped_cancels: int = 0
    # The every-second schedule's run (chaoslib.schedules.ScheduleRun), None without one.
    schedule: Any = None
    # The flows' run (chaoslib.flows.FlowRun), None without them.
    flows: Any = None
