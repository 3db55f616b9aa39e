"""The throughput measurements of ``scripts/bench``: each runs once and returns plain numbers.

Enqueue figures are taken in this process through ``QueueService``; drain and scale figures
from real ``qworker work`` processes; all against the bench's own redis-server, flushed before
each run. Redis CPU comes from ``INFO cpu`` and command counts from ``INFO commandstats``, which
counts the commands a Lua script calls as well as the script itself (``bench_probes`` splits
them with MONITOR).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from bench_jobs import NOOP

from qworker.config import Settings
from qworker.keys import STAT_PROCESSED, QueueKeys
from qworker.service import QueueService

FILL_BATCH = 1000
POLL_START_S = 0.001
POLL_END_S = 0.005
WORKER_TIMEOUT_S = 300.0
# Commands the bench itself sends while measuring, never counted as the queue's.
BENCH_COMMANDS = frozenset({"info", "config|resetstat", "flushall", "echo", "client|list"})


class BenchError(RuntimeError):
    """A run did not do what it must (a worker failed, a job went missing)."""


@dataclass(frozen=True)
class Env:
    """Where the bench runs: its Redis, namespace, worker command and scratch directory."""

    redis_url: str
    namespace: str
    qworker: tuple[str, ...]
    python: str
    scripts_dir: Path
    workdir: Path

    @property
    def keys(self) -> QueueKeys:
        return QueueKeys(self.namespace)

    def settings(self) -> Settings:
        return Settings(_env_file=None, redis_url=self.redis_url, namespace=self.namespace)  # type: ignore[call-arg]

    def sync_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    def child_env(self, **extra: str) -> dict[str, str]:
        """The environment of a qworker process: this one without any QWORKER_ setting, plus
        the bench's Redis, namespace and job module path."""
        # Bytecode caches as an installed package has them: PYTHONDONTWRITEBYTECODE would make
        # every start compile qworker from source.
        dropped = {"REDIS_URL", "PYTHONDONTWRITEBYTECODE"}
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("QWORKER_") and k not in dropped
        }
        env |= {
            "QWORKER_REDIS_URL": self.redis_url,
            "QWORKER_NAMESPACE": self.namespace,
            "PYTHONPATH": str(self.scripts_dir),
            # The built-in tweet type is always known; without X keys a worker needs a dry run.
            "QWORKER_DRY_RUN": "true",
        }
        return env | extra


# -- Redis counters -------------------------------------------------------------------------


@dataclass
class Counters:
    """``INFO commandstats`` calls and Redis CPU seconds, taken after ``CONFIG RESETSTAT``."""

    client: redis.Redis
    cpu_s: float = 0.0
    own: Counter[str] = field(default_factory=Counter)
    usec: dict[str, int] = field(default_factory=dict)  # time Redis spent per command, by stop()

    def start(self) -> None:
        self.client.config_resetstat()
        self.cpu_s = _redis_cpu_s(self.client)
        self.own.clear()

    def stop(self) -> tuple[dict[str, int], float]:
        """Calls per command since start (the bench's own left out), and Redis CPU seconds."""
        cpu_s = _redis_cpu_s(self.client) - self.cpu_s
        calls: dict[str, int] = {}
        self.usec = {}
        for name, stat in self.client.info("commandstats").items():
            command = name.removeprefix("cmdstat_")
            count = int(stat["calls"]) - self.own[command]
            if command not in BENCH_COMMANDS and count > 0:
                calls[command] = count
                self.usec[command] = int(stat["usec"])
        return calls, cpu_s


def _redis_cpu_s(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def flush(env: Env) -> None:
    with env.sync_client() as client:
        client.flushall()


# -- enqueue (in process) --------------------------------------------------------------------


@dataclass(frozen=True)
class EnqueueRun:
    jobs: int
    seconds: float
    client_cpu_s: float
    redis_cpu_s: float
    calls: dict[str, int]

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds


def _noop(n: int) -> dict[str, Any]:
    return {"job_type": NOOP, "n": n}


async def enqueue_one_by_one(service: QueueService, jobs: int) -> None:
    for n in range(jobs):
        await service.add_job(_noop(n))


async def enqueue_in_batches(service: QueueService, jobs: int, batch: int) -> None:
    for start in range(0, jobs, batch):
        await service.add_jobs(_noop(n) for n in range(start, min(start + batch, jobs)))


def enqueue(env: Env, jobs: int, batch: int | None) -> EnqueueRun:
    """``add_job`` one call at a time (``batch`` None), or ``add_jobs`` ``batch`` at a time."""
    flush(env)

    async def timed() -> EnqueueRun:
        async with QueueService(env.redis_url, settings=env.settings()) as service:
            await service.ping()
            await service.runner.load_all()
            with env.sync_client() as client:
                counters = Counters(client)
                counters.start()
                cpu0, t0 = time.process_time(), time.perf_counter()
                if batch is None:
                    await enqueue_one_by_one(service, jobs)
                else:
                    await enqueue_in_batches(service, jobs, batch)
                seconds, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
                calls, redis_cpu_s = counters.stop()
                stored = sum(int(client.llen(key)) for key in env.keys.priorities)
        if stored != jobs:
            raise BenchError(f"enqueued {jobs} jobs but {stored} are ready")
        return EnqueueRun(jobs, seconds, cpu_s, redis_cpu_s, calls)

    return asyncio.run(timed())


def fill(env: Env, jobs: int) -> None:
    """Flush, then queue ``jobs`` no-op jobs (untimed), ready for a drain."""
    flush(env)

    async def run() -> None:
        async with QueueService(env.redis_url, settings=env.settings()) as service:
            await enqueue_in_batches(service, jobs, FILL_BATCH)

    asyncio.run(run())


# -- drain (worker processes) ----------------------------------------------------------------


@dataclass(frozen=True)
class DrainRun:
    jobs: int
    workers: int
    concurrency: int
    seconds: float  # first claim to the last job acknowledged
    wall_s: float  # first process started to the last one exited
    peak_rss_mb: float  # the largest of the worker processes
    worker_cpu_s: float  # all worker processes, user + system, first claim to done
    redis_cpu_s: float  # the same window
    calls: dict[str, int]
    usec: dict[str, int]  # INFO commandstats: time spent in each command (a script's includes
    # the commands it calls, which are also counted under their own names)

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds


@dataclass
class Child:
    proc: subprocess.Popen[bytes]
    log_path: Path
    rusage: resource.struct_rusage | None = None

    def reap(self, timeout_s: float) -> None:
        """Wait for the exit with ``wait4``, which also returns the child's peak RSS."""
        deadline = time.monotonic() + timeout_s
        while self.rusage is None:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.rusage = usage
            elif time.monotonic() > deadline:
                self.proc.kill()
                raise BenchError(f"worker {self.proc.pid} did not exit within {timeout_s:.0f}s")
            else:
                time.sleep(0.002)

    def check(self) -> None:
        if self.proc.returncode != 0:
            raise BenchError(
                f"worker exited with {self.proc.returncode}; log {self.log_path}:\n"
                + _tail(self.log_path)
            )


def _tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "<no log>"


def spawn_worker(
    env: Env, concurrency: int, *, burst: bool, tag: str, metrics: bool = False, **extra: str
) -> Child:
    args = [*env.qworker, "work", "-c", str(concurrency), "--import", "bench_jobs"]
    if burst:
        args.append("--burst")
    if metrics:
        args += ["--metrics-port", "0"]  # any free port: the cost is the counting, not a scrape
    log_path = env.workdir / f"worker-{tag}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            args,
            cwd=env.workdir,  # no stray .env file from the caller's directory
            env=env.child_env(**extra),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    return Child(proc, log_path)


def poll_until(check: Callable[[], bool], interval_s: float, children: list[Child]) -> float:
    """Call ``check`` every ``interval_s`` until it is true; returns when, by perf_counter."""
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    while not check():
        if all(child.proc.poll() is not None for child in children):
            for child in children:
                child.check()
            raise BenchError("every worker exited before the queue was drained")
        if time.monotonic() > deadline:
            raise BenchError(f"the drain took longer than {WORKER_TIMEOUT_S:.0f}s")
        time.sleep(interval_s)
    return time.perf_counter()


def drain(
    env: Env, jobs: int, workers: int, concurrency: int, *, metrics: bool = False
) -> DrainRun:
    """Queue ``jobs`` no-op jobs, start ``workers`` burst workers, time them to an empty queue.

    The clock starts at the first claim (the ready list shrinks), so interpreter start-up is
    left out of jobs/s; ``wall_s`` keeps it."""
    fill(env, jobs)
    keys = env.keys
    ready_key = keys.priority(3)
    with env.sync_client() as client:
        client.ping()
        counters = Counters(client)
        counters.start()

        def claimed() -> bool:
            counters.own["llen"] += 1
            return int(client.llen(ready_key)) < jobs

        def acknowledged() -> bool:
            counters.own["hget"] += 1
            return int(client.hget(keys.stats, STAT_PROCESSED) or 0) >= jobs

        t_spawn = time.perf_counter()
        children = [
            spawn_worker(env, concurrency, burst=True, tag=f"drain-{i}", metrics=metrics)
            for i in range(workers)
        ]
        try:
            t_first = poll_until(claimed, POLL_START_S, children)
            cpu_first = _cpu_s(client, children)
            t_done = poll_until(acknowledged, POLL_END_S, children)
            cpu_done = _cpu_s(client, children)
            for child in children:
                child.reap(WORKER_TIMEOUT_S)
        finally:
            for child in children:
                if child.proc.poll() is None:
                    child.proc.kill()
        t_exit = time.perf_counter()
        for child in children:
            child.check()
        calls, _ = counters.stop()
        check_drained(client, keys, jobs)
    usages = [child.rusage for child in children if child.rusage is not None]
    return DrainRun(
        jobs=jobs,
        workers=workers,
        concurrency=concurrency,
        seconds=t_done - t_first,
        wall_s=t_exit - t_spawn,
        peak_rss_mb=max(u.ru_maxrss for u in usages) / 1024,  # Linux: KiB
        worker_cpu_s=cpu_done[0] - cpu_first[0],
        redis_cpu_s=cpu_done[1] - cpu_first[1],
        calls=calls,
        usec=dict(counters.usec),
    )


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(client: redis.Redis, children: list[Child]) -> tuple[float, float]:
    """CPU seconds used so far by the workers (all their threads) and by Redis."""
    workers_s = 0.0
    for child in children:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{child.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            workers_s += (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime
    return workers_s, _redis_cpu_s(client)


def check_drained(client: redis.Redis, keys: QueueKeys, jobs: int) -> None:
    left = sum(int(client.llen(key)) for key in keys.priorities)
    in_flight = int(client.zcard(keys.inflight))
    dead = int(client.zcard(keys.dead_letter)) + int(client.zcard(keys.retry))
    processed = int(client.hget(keys.stats, STAT_PROCESSED) or 0)
    if (left, in_flight, dead, processed) != (0, 0, 0, jobs):
        raise BenchError(
            f"after the drain: {left} ready, {in_flight} in flight, {dead} failed, "
            f"{processed} processed of {jobs}"
        )
