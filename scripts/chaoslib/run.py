"""One chaos run: start Redis, enqueue the planned jobs, run workers under the fault schedule
until every job is final, then collect the history, check it and print the account."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import chaos_jobs

from chaoslib import contract
from chaoslib.cancels import Canceller
from chaoslib.checks import CheckResult, run_checks
from chaoslib.faults import FaultInjector
from chaoslib.flows import (
    FlowRun,
    check_flows,
    read_flow_records,
    read_flow_states,
    set_flows_aside,
    start_flows,
)
from chaoslib.history import FaultEvent, History, JobMeta, RunFacts, read_records
from chaoslib.plan import (
    FLOWS,
    SCHEDULES,
    WORKER_CRASH,
    Config,
    PlannedCancel,
    PlannedFault,
    PlannedJob,
    plan_cancels,
    plan_faults,
    plan_jobs,
)
from chaoslib.redis_proc import RedisProcess
from chaoslib.report import render
from chaoslib.schedules import check_schedule, read_ticks, start_schedule, stop_schedule
from chaoslib.view import RedisView
from chaoslib.watch import RecordWatch
from chaoslib.workers import WorkerPool, worker_command
from qworker.config import Settings
from qworker.service import QueueService

NAMESPACE = "chaos"
SCRIPTS_DIR = Path(__file__).resolve().parents[1]
POLL_S = 0.2
# Beyond this many crashes per worker slot the run stops: something is broken, not flaky.
MAX_CRASHES_PER_SLOT = 2
# The queues must read empty this many polls in a row: one empty read could fall between two
# steps of a job's life only if a step were not atomic, and that would be a finding too.
CALM_POLLS = 3
# A job tried this many times is looping (its attempts allow max_retries + 1, plus one per fault
# that touched it): it will never be final, so the run stops and reports it.
RUNAWAY_TRIES = 6 * (contract.MAX_RETRIES + 1)


def worker_env(cfg: Config, redis_url: str, run_dir: Path) -> dict[str, str]:
    python_path = [str(SCRIPTS_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    modules = "chaos_jobs" if SCHEDULES in cfg.without else "chaos_jobs,chaoslib.tick_job"
    if FLOWS not in cfg.without:
        modules += ",chaoslib.flow_job"
    return dict(os.environ) | {
        "QWORKER_REDIS_URL": redis_url,
        "QWORKER_NAMESPACE": NAMESPACE,
        "QWORKER_LEASE_SECONDS": str(cfg.lease_s),
        "QWORKER_JOB_MODULES": modules,
        "QWORKER_SHUTDOWN_GRACE_SECONDS": str(cfg.grace_s),
        "QWORKER_KEEP_FINISHED_S": str(cfg.keep_finished_s),
        "QWORKER_LOG_FORMAT": "json",
        # No tweet is ever posted here; without it ``qworker work`` wants X credentials.
        "QWORKER_DRY_RUN": "true",
        "PYTHONPATH": os.pathsep.join(python_path),
        contract.RECORD_DIR_ENV: str(run_dir),
    }


def job_params(job: PlannedJob) -> chaos_jobs.ChaosFields:
    kind = chaos_jobs.BlockerParams if job.kind == "blocker" else chaos_jobs.ChaosParams
    return kind(kind=job.kind, seq=job.seq, fail_first=job.fail_first, work_ms=job.work_ms)


async def enqueue(service: QueueService, planned: list[PlannedJob]) -> dict[str, JobMeta]:
    """All jobs, in seq order within each priority, before any worker starts."""
    jobs: dict[str, JobMeta] = {}
    for priority in (1, 2, 3, 4):
        batch = [job for job in planned if job.priority == priority]
        params = [job_params(job) for job in batch]
        ids = await service.add_jobs(params, priority=priority)
        for job_id, job in zip(ids, batch, strict=True):
            jobs[job_id] = JobMeta(job_id, job.seq, priority, job.kind, job.fail_first)
    return jobs


class WorkersKeepCrashing(RuntimeError):
    pass


class Driver:
    """Runs the workers and the injector until every job is final (or the time is up)."""

    def __init__(
        self,
        cfg: Config,
        pool: WorkerPool,
        redis: RedisProcess,
        view: RedisView,
        on_faults_over: Callable[[], Awaitable[None]] | None = None,
    ):
        self.cfg = cfg
        # Called once when the faults and cancels are over (the schedule stops firing then).
        self.on_faults_over = on_faults_over
        self.pool = pool
        self.view = view
        self.started = time.monotonic()
        self.injector = FaultInjector(cfg, pool, redis, view, self.elapsed_s)
        self.crashes: list[str] = []
        self.watch = RecordWatch(pool.run_dir)
        self.stopped_early = ""

    @property
    def started_wall_ms(self) -> int:
        """The wall-clock time (ms) the fault times (seconds since the start) count from."""
        return time.time_ns() // 1_000_000 - int(self.elapsed_s() * 1000)

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def executing(self) -> set[str]:
        """Jobs whose execution has started and not ended, as the records show so far, but
        for one blocking its worker's loop: canceled, it would not run elsewhere, and the
        blocked-loop check wants to see that it does."""
        return set().union(*self.watch.open_runs.values()) - self.watch.blocking_now

    async def drive(
        self, plan: list[PlannedFault], canceller: Canceller, cancels: list[PlannedCancel]
    ) -> RunFacts:
        self.started = time.monotonic()
        for index in range(self.cfg.workers):
            self.pool.start(index)
        inject = asyncio.create_task(self.injector.run(plan))
        cancel = asyncio.create_task(canceller.run(cancels))
        try:
            final_s = await self._until_final(inject, cancel)
        finally:
            for task in (inject, cancel):
                if not task.done():
                    task.cancel()
            await asyncio.gather(inject, cancel, return_exceptions=True)
            await self.injector.close()
        stop_codes = await self.pool.stop_all(self.cfg.grace_s + 10)
        return RunFacts(
            elapsed_s=final_s,
            fault_kinds=self.cfg.fault_kinds,
            skipped_faults=[fault.kind for fault in self.injector.skipped],
            crashes=self.crashes,
            stop_codes=stop_codes,
            worker_starts=self.pool.started,
            stopped_early=self.stopped_early,
            skipped_cancels=len(canceller.skipped),
        )

    async def _until_final(
        self, inject: asyncio.Task[None], cancel: asyncio.Task[None]
    ) -> float | None:
        deadline = self.started + self.cfg.timeout_s
        calm = 0
        while time.monotonic() < deadline:
            await self._restart_crashed()
            if await self._runaway():
                return None
            if inject.done() and cancel.done():
                inject.result()  # a failure of the injector itself ends the run here
                cancel.result()  # and of the canceller
                if self.on_faults_over is not None:
                    await self.on_faults_over()
                    self.on_faults_over = None
                stats = await self.view.stats()
                busy = (stats.total_jobs, stats.retry, stats.scheduled, stats.parked)
                calm = calm + 1 if not any(busy) and not stats.in_flight else 0
                if calm >= CALM_POLLS:
                    return self.elapsed_s() - POLL_S * (CALM_POLLS - 1)
            await asyncio.sleep(POLL_S)
        return None

    async def _runaway(self) -> bool:
        """Pass blocked loops that began to the injector; True (and why) if a job is looping."""
        for run in self.watch.poll():
            running_there = set(self.watch.open_runs.get(run.proc, set()))
            self.injector.blocking.put_nowait((run, running_there))
        job_id, tries = self.watch.most_tried()
        if tries <= RUNAWAY_TRIES:
            return False
        self.stopped_early = (
            f"run stopped at t+{self.elapsed_s():.1f}s: job {job_id} was tried {tries} times "
            f"(more than {RUNAWAY_TRIES}); it is looping and would never be final"
        )
        return True

    async def _restart_crashed(self) -> None:
        """A worker that exits on its own is a finding; its jobs count as touched by it."""
        for slot, pid, code in self.pool.crashed():
            inflight = frozenset(await self.view.inflight())
            at_s = self.elapsed_s()
            log_tail = self.pool.log_tail(slot)
            self.crashes.append(
                f"worker pid {pid} (slot {slot}) exited by itself, code {code}: {log_tail}"
            )
            if len(self.crashes) > MAX_CRASHES_PER_SLOT * self.cfg.workers:
                raise WorkersKeepCrashing("\n".join(self.crashes))
            self.injector.events.append(
                FaultEvent(WORKER_CRASH, at_s, 0.0, slot, pid, inflight, detail=f"exit {code}")
            )
            self.pool.start(slot)


def scan_logs(log_by_pid: dict[int, Path], facts: RunFacts) -> None:
    """Count rate-limit deferrals and lease-lost refusals in the workers' logs, and summarise
    every error logged with a traceback (where in qworker it came from)."""
    errors: Counter[str] = Counter()
    for pid, path in log_by_pid.items():
        refused = 0
        for line in path.read_text(errors="replace").splitlines():
            facts.rate_limited += '"outcome": "rate-limited"' in line
            refused += "lease lost" in line
            if '"exc": ' in line:
                errors[summarise_error(line)] += 1
        facts.lease_lost_by_pid[pid] = refused
    facts.lease_lost_warnings = sum(facts.lease_lost_by_pid.values())
    facts.unexpected_errors = sum(errors.values())
    facts.error_summaries = [f"{n} x {text}" for text, n in errors.most_common()]


def summarise_error(line: str) -> str:
    """'message: exception (file:line in function)' for one JSON log line, ids blanked out."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line[:200]
    message = re.sub(r"\b[0-9a-f]{32}\b", "<id>", str(entry.get("msg", "")))
    trace = str(entry.get("exc", "")).strip().splitlines()
    frames = re.findall(r'File ".*?/(qworker/[^"]+)", line (\d+), in (\w+)', "\n".join(trace))
    where = f" ({frames[-1][0]}:{frames[-1][1]} in {frames[-1][2]})" if frames else ""
    last = trace[-1] if trace else "?"
    return f"{message}: {last[:160] + '...' if len(last) > 160 else last}{where}"


def run_directory(cfg: Config) -> Path:
    if cfg.directory is None:
        return Path(tempfile.mkdtemp(prefix="qworker-chaos-"))
    cfg.directory.mkdir(parents=True, exist_ok=True)
    if any(cfg.directory.iterdir()):
        raise SystemExit(f"chaos: {cfg.directory} is not empty; give a fresh directory")
    return cfg.directory


async def run(cfg: Config) -> int:
    hermetic_environment()
    run_dir = run_directory(cfg)
    redis = RedisProcess(run_dir / "redis")
    try:
        history, facts = await collect_history(cfg, redis, run_dir)
    except WorkersKeepCrashing as exc:
        print(f"chaos: workers keep crashing, run stopped; see {run_dir}\n{exc}", file=sys.stderr)
        return 1
    finally:
        redis.kill()
    results = run_checks(history, facts)
    if facts.schedule is not None:
        results.append(check_schedule(facts.schedule, history.faults))
    if facts.flows is not None:
        results.append(check_flows(facts.flows, history.faults))
    setup = describe_setup(cfg, redis, run_dir)
    print(render(cfg, history, facts, results, setup), flush=True)
    save_summary(run_dir, history, results)
    passed = all(result.ok for result in results)
    if passed and cfg.directory is None and not cfg.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0 if passed else 1


async def collect_history(
    cfg: Config, redis: RedisProcess, run_dir: Path
) -> tuple[History, RunFacts]:
    """Run the plan; returns the history and what the driver saw."""
    rng = random.Random(cfg.seed)
    planned_jobs, planned_faults = plan_jobs(cfg, rng), plan_faults(cfg, rng)
    planned_cancels = plan_cancels(cfg, planned_jobs, rng)
    redis.start()
    settings = Settings(
        redis_url=redis.url,
        namespace=NAMESPACE,
        keep_finished_s=cfg.keep_finished_s,
        _env_file=None,  # type: ignore[call-arg]
    )
    command = worker_command(cfg.concurrency)
    # One slot more than the workers: the new-worker-in-outage fault starts a worker there.
    pool = WorkerPool(command, worker_env(cfg, redis.url, run_dir), run_dir, cfg.workers + 1)
    try:
        async with QueueService(settings=settings) as service:
            view = RedisView(service)
            jobs = await enqueue(service, planned_jobs)
            schedule = None if SCHEDULES in cfg.without else await start_schedule(service)
            flows: FlowRun | None = None
            if FLOWS not in cfg.without:
                flows = await start_flows(service, random.Random(cfg.seed))

            async def stop() -> None:
                if schedule is not None and not schedule.end_ms:
                    await stop_schedule(service, schedule)

            driver = Driver(cfg, pool, redis, view, stop)
            blocking = driver.watch.blocking_now.copy
            canceller = Canceller(
                service, view, jobs, driver.executing, blocking, driver.elapsed_s, cfg.jobs
            )
            if flows is not None:
                canceller.left_alone.update(flows.members)
            facts = await driver.drive(planned_faults, canceller, planned_cancels)
            await stop()  # if the run timed out before the faults were over
            final = await view.final_state(list(jobs))
            if schedule is not None:
                # The schedule's jobs are accounted for on their own (chaoslib/schedules.py):
                # each was acknowledged once, as its 'processed' count.
                final.counters["processed"] = final.counters.get("processed", 0) - schedule.fired
            if flows is not None:
                await read_flow_states(service, flows)
                set_flows_aside(final, flows)
    finally:
        pool.kill_all()
    redis.shutdown()
    scan_logs(pool.log_by_pid, facts)
    executions, hook_raises = read_records(run_dir)
    if schedule is not None:
        schedule.driver_start_ms = driver.started_wall_ms
        read_ticks(run_dir, schedule)
        facts.schedule = schedule
    if flows is not None:
        flows.driver_start_ms = driver.started_wall_ms
        read_flow_records(run_dir, flows)
        facts.flows = flows
    history = History(
        jobs=jobs,
        executions=executions,
        hook_raises=hook_raises,
        faults=driver.injector.events,
        final=final,
        workers=sum(1 for slot in pool.slots if slot.generation),
        concurrency=cfg.concurrency,
        prefetch=cfg.concurrency,  # the workers run with qworker work's default prefetch
        max_retries=contract.MAX_RETRIES,
        min_interval_ms=contract.LIMITED_MIN_INTERVAL_MS,
        lease_s=cfg.lease_s,
        stopped=bool(facts.stopped_early),
        cancels=canceller.requests,
        keep_finished_s=cfg.keep_finished_s,
    )
    return history, facts


def hermetic_environment() -> None:
    """The developer's own qworker settings must not leak into the run: drop them from this
    process (the driver's Settings ignore .env files), and the workers inherit the rest."""
    for name in [n for n in os.environ if n.startswith("QWORKER_") or n == "REDIS_URL"]:
        del os.environ[name]


def describe_setup(cfg: Config, redis: RedisProcess, run_dir: Path) -> list[str]:
    return [
        f"redis-server {redis.version()} on port {redis.port}: appendonly yes, appendfsync always",
        f"{cfg.workers} workers x concurrency {cfg.concurrency}, lease {cfg.lease_s:g}s, "
        f"shutdown grace {cfg.grace_s:g}s; each worker is `python -m qworker work`",
        f"records and logs in {run_dir}"
        + ("" if cfg.keep or cfg.directory else " (kept on failure)"),
    ]


def save_summary(run_dir: Path, history: History, results: list[CheckResult]) -> None:
    """The faults and verdicts as JSON beside the raw records, for a closer look later."""
    summary = {
        "faults": [
            {
                "kind": event.kind,
                "at_s": round(event.at_s, 3),
                "duration_s": round(event.duration_s, 3),
                "detail": event.detail,
                "inflight": sorted(event.inflight),
                "held": sorted(event.held),
                "problems": list(event.problems),
                "behind": sorted(event.behind),
            }
            for event in history.faults
        ],
        "cancels": [dataclasses.asdict(request) for request in history.cancels],
        "checks": [
            {"name": r.name, "ok": r.ok, "lines": r.lines, "violations": r.violations}
            for r in results
        ],
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
