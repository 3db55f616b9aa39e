"""The other measurements of ``scripts/bench``: enqueue-to-start latency on an idle worker, the
CLI's cold start, and Redis commands per job split by MONITOR into those a client sent and those
the Lua scripts called.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import redis
from bench_jobs import LATENCY, LATENCY_FILE_ENV
from bench_measure import (
    BENCH_COMMANDS,
    WORKER_TIMEOUT_S,
    BenchError,
    Env,
    check_drained,
    enqueue_in_batches,
    enqueue_one_by_one,
    flush,
    poll_until,
    spawn_worker,
)

from qworker.service import QueueService

# -- latency (an idle worker) ----------------------------------------------------------------


@dataclass(frozen=True)
class LatencyRun:
    latencies_ms: list[float]

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _blocked_clients(client: redis.Redis) -> int:
    return sum(1 for entry in client.client_list() if "b" in entry.get("flags", ""))


def latency(env: Env, jobs: int, interval_s: float, concurrency: int) -> LatencyRun:
    """Start a worker, wait until it blocks for work, then enqueue ``jobs`` jobs ``interval_s``
    apart; each job records when it started."""
    flush(env)
    record = env.workdir / "latency.txt"
    record.unlink(missing_ok=True)
    child = spawn_worker(
        env, concurrency, burst=False, tag="latency", **{LATENCY_FILE_ENV: str(record)}
    )
    try:
        with env.sync_client() as client:
            poll_until(lambda: _blocked_clients(client) > 0, 0.01, [child])
        asyncio.run(_send_spaced(env, jobs, interval_s))
        deadline = time.monotonic() + 30
        while _count_lines(record) < jobs:
            if time.monotonic() > deadline or child.proc.poll() is not None:
                raise BenchError(f"only {_count_lines(record)} of {jobs} latency jobs started")
            time.sleep(0.01)
    finally:
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
        child.reap(30)
    child.check()
    pairs = [line.split() for line in record.read_text().splitlines()]
    return LatencyRun([(float(started) - float(sent)) * 1000 for sent, started in pairs])


async def _send_spaced(env: Env, jobs: int, interval_s: float) -> None:
    async with QueueService(env.redis_url, settings=env.settings()) as service:
        await service.runner.load_all()
        t0 = time.perf_counter()
        for n in range(jobs):
            await asyncio.sleep(max(0.0, t0 + n * interval_s - time.perf_counter()))
            await service.add_job({"job_type": LATENCY, "sent_at": time.time()})


def chain_latency(env: Env, steps: int, concurrency: int) -> LatencyRun:
    """A chain of ``steps`` no-op jobs (qworker.flows.chain) on an idle worker: the time from
    one step's start to the next one's, that is the step's (nearly nil) work, its completion,
    the release of the next step in that same script, the wakeup and the claim."""
    from qworker.flows import chain

    flush(env)
    record = env.workdir / "chain.txt"
    record.unlink(missing_ok=True)
    child = spawn_worker(
        env, concurrency, burst=False, tag="chain", **{LATENCY_FILE_ENV: str(record)}
    )
    try:
        with env.sync_client() as client:
            poll_until(lambda: _blocked_clients(client) > 0, 0.01, [child])

        async def send() -> None:
            async with QueueService(env.redis_url, settings=env.settings()) as service:
                await service.runner.load_all()
                flow = chain(*({"job_type": LATENCY, "sent_at": 0.0} for _ in range(steps)))
                await service.add_flow(flow)

        asyncio.run(send())
        deadline = time.monotonic() + 30
        while _count_lines(record) < steps:
            if time.monotonic() > deadline or child.proc.poll() is not None:
                raise BenchError(f"only {_count_lines(record)} of {steps} chain steps started")
            time.sleep(0.01)
    finally:
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
        child.reap(30)
    child.check()
    started = [float(line.split()[1]) for line in record.read_text().splitlines()]
    return LatencyRun([(later - earlier) * 1000 for earlier, later in itertools.pairwise(started)])


def _count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


# -- CLI cold start --------------------------------------------------------------------------


@dataclass(frozen=True)
class ColdStart:
    wall_ms: list[float]
    cpu_ms: list[float]  # user + system: what the wall time would be on an idle machine


def cold_start(args: list[str], env: dict[str, str], cwd: Path, runs: int) -> ColdStart:
    """``args`` as a fresh process, ``runs`` times after one warm-up run (which writes the
    bytecode caches); it must exit 0."""
    wall_ms, cpu_ms = [], []
    for run in range(runs + 1):
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        assert proc.stderr is not None
        errors = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stderr.close()
        if run:
            wall_ms.append((time.perf_counter() - t0) * 1000)
            cpu_ms.append((usage.ru_utime + usage.ru_stime) * 1000)
        if proc.returncode != 0:
            raise BenchError(
                f"{' '.join(args)} exited {proc.returncode}: {errors.decode().strip()}"
            )
    return ColdStart(wall_ms, cpu_ms)


# -- command counts by MONITOR ---------------------------------------------------------------


@dataclass
class CommandCounts:
    """Commands seen by MONITOR in one phase: sent by a client, or called by a Lua script."""

    top: Counter[str] = field(default_factory=Counter)
    lua: Counter[str] = field(default_factory=Counter)


class Monitor:
    """Counts every command Redis runs, phase by phase; ``ECHO bench-phase:NAME`` starts a
    phase, so the boundaries are exact whatever the timing."""

    PHASE = "bench-phase:"

    def __init__(self, env: Env) -> None:
        self.env = env
        self.phases: dict[str, CommandCounts] = {}
        self._client = env.sync_client()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="bench-monitor", daemon=True)

    def __enter__(self) -> Monitor:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.phase("end")
        self._thread.join(10)
        self._client.close()

    def phase(self, name: str) -> None:
        self._client.echo(self.PHASE + name)

    def _listen(self) -> None:
        current: CommandCounts | None = None
        with self.env.sync_client() as listener, listener.monitor() as monitor:
            self._ready.set()
            for entry in monitor.listen():
                words = entry["command"].split()
                name = words[0].lower() if words else ""
                if name == "echo" and words[1].startswith(self.PHASE):
                    phase = words[1].removeprefix(self.PHASE)
                    if phase == "end":
                        return
                    current = self.phases.setdefault(phase, CommandCounts())
                elif current is not None and name not in BENCH_COMMANDS:
                    side = current.lua if entry.get("client_type") == "lua" else current.top
                    side[_command_name(words)] += 1


def _command_name(words: list[str]) -> str:
    name = words[0].lower()
    if name in {"client", "script", "config"} and len(words) > 1:
        return f"{name}|{words[1].lower()}"
    return name


def monitor_pass(env: Env, jobs: int, batch: int, concurrency: int) -> dict[str, CommandCounts]:
    """Top-level and script-inner commands of each operation, from ``jobs`` jobs under MONITOR
    (which slows Redis, so this pass is never timed). The drain takes the two enqueue phases'
    ``2 * jobs`` jobs."""
    flush(env)
    with Monitor(env) as monitor:

        async def produce() -> None:
            async with QueueService(env.redis_url, settings=env.settings()) as service:
                await service.runner.load_all()
                monitor.phase("enqueue_single")
                await enqueue_one_by_one(service, jobs)
                monitor.phase("enqueue_bulk")
                await enqueue_in_batches(service, jobs, batch)
                monitor.phase("idle")

        asyncio.run(produce())
        monitor.phase("drain")
        child = spawn_worker(env, concurrency, burst=True, tag="monitor")
        child.reap(WORKER_TIMEOUT_S)
        child.check()
    with env.sync_client() as client:
        check_drained(client, env.keys, 2 * jobs)
    return monitor.phases
