"""Worker processes against a real redis-server: SIGKILL, SIGTERM and a Redis outage.

Workers run as ``python -m tests.worker_main`` (the core's Worker, without the CLI). These tests
are about real processes and real time, so they poll with a deadline; jobs record what they ran
in a file, which survives both a killed worker and a stopped Redis.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from qworker.connection import CONNECTION_ERRORS
from qworker.errors import RedisUnavailable
from qworker.models import QueueStats
from qworker.service import QueueService
from tests.jobtypes import probe, read_events
from tests.redis.conftest import make_test_settings
from tests.redis_server import RedisServer

REPO_ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 30.0
# What polling Redis may raise while it restarts (or on a pooled connection it closed).
RETRYABLE: tuple[type[BaseException], ...] = (RedisUnavailable, *CONNECTION_ERRORS)


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, signum: signal.Signals, timeout_s: float = 15.0) -> int:
        """Send ``signum`` and wait for the exit code."""
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker did not exit {timeout_s}s after {signum.name}:\n{self.output()}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self.log.close()


SpawnWorker = Callable[..., WorkerProcess]


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[SpawnWorker]:
    """``spawn_worker(url, namespace, concurrency=4, lease_s=1.5, grace_s=None)``; every
    process still alive at the end of the test is killed."""
    workers: list[WorkerProcess] = []
    # The developer's QWORKER_* variables must not reach the worker.
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWORKER_")}
    env.pop("REDIS_URL", None)

    def spawn(
        redis_url: str,
        namespace: str,
        *,
        concurrency: int = 1,
        lease_s: float = 60.0,
        grace_s: float | None = None,
    ) -> WorkerProcess:
        args = [sys.executable, "-m", "tests.worker_main", "--redis-url", redis_url]
        args += ["--namespace", namespace, "--concurrency", str(concurrency)]
        args += ["--lease-seconds", str(lease_s), "--import", "tests.jobtypes"]
        if grace_s is not None:
            args += ["--grace", str(grace_s)]
        log_path = tmp_path / f"worker-{len(workers)}.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(
            args, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        worker = WorkerProcess(proc, log_path, log)
        workers.append(worker)
        return worker

    yield spawn
    for worker in workers:
        worker.close()


async def wait_until(
    condition: Callable[[], Awaitable[bool]],
    what: str,
    worker: WorkerProcess | None = None,
    timeout_s: float = DEADLINE_S,
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if await condition():
                return
        except RETRYABLE:
            pass  # Redis restarting (or a pooled connection it closed): ask again
        if worker is not None and worker.proc.poll() is not None:
            pytest.fail(
                f"worker exited ({worker.proc.returncode}) before {what}:\n{worker.output()}"
            )
        if time.monotonic() > deadline:
            detail = worker.output() if worker is not None else ""
            pytest.fail(f"not within {timeout_s}s: {what}\n{detail}")
        await asyncio.sleep(0.05)


def events_at_least(path: Path, kind: str, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(read_events(path, kind)) >= count

    return check


def make_service(redis_url: str, namespace: str) -> QueueService:
    return QueueService(settings=make_test_settings(redis_url, namespace))


def assert_drained(stats: QueueStats) -> None:
    assert (stats.total_jobs, stats.in_flight, stats.dead_letter) == (0, 0, 0), stats
    assert (stats.retry, stats.scheduled, stats.parked) == (0, 0, 0), stats


async def test_sigkill_mid_jobs_loses_none(
    redis_url: str, namespace: str, spawn_worker: SpawnWorker, probe_log: Path
) -> None:
    # 5 s of work at concurrency 4: the kill after 8 jobs lands mid-jobs with seconds to spare,
    # even on a slow machine.
    jobs = [probe(probe_log, sleep_s=0.5, tag=f"j{n}") for n in range(40)]
    async with make_service(redis_url, namespace) as service:
        job_ids = await service.add_jobs(jobs)
        first = spawn_worker(redis_url, namespace, concurrency=4, lease_s=1.5)
        await wait_until(events_at_least(probe_log, "done", 8), "8 jobs done", first)

        first.proc.kill()  # SIGKILL: no handler, no hand-back, no acknowledgement
        assert first.proc.wait(5) == -signal.SIGKILL
        in_flight_at_kill = set(await service.redis.zrange(service.keys.inflight, 0, -1))
        started_before_kill = {e.job_id for e in read_events(probe_log, "start")}
        assert in_flight_at_kill, "the worker was not killed in the middle of jobs"

        second = spawn_worker(redis_url, namespace, concurrency=4, lease_s=1.5)

        async def all_done() -> bool:
            stats = await service.get_queue_stats()
            return stats.total_processed == len(jobs) and stats.in_flight == 0

        await wait_until(all_done, "every job acknowledged", second)
        assert second.stop(signal.SIGTERM) == 0, second.output()
        stats = await service.get_queue_stats()

    starts = Counter(e.job_id for e in read_events(probe_log, "start"))
    assert {e.job_id for e in read_events(probe_log, "done")} == set(job_ids)
    ran_twice = {job_id for job_id, n in starts.items() if n > 1}
    # Exactly the jobs that were running, unacknowledged, when the worker died ran again.
    assert ran_twice == in_flight_at_kill & started_before_kill
    assert max(starts.values()) == 2
    for job_id in ran_twice:
        attempts = [e.attempt for e in read_events(probe_log, "start") if e.job_id == job_id]
        assert attempts == [1, 2]  # the lost run counted as an attempt
    assert_drained(stats)
    assert stats.total_processed == len(jobs)
    assert stats.recovered == len(in_flight_at_kill)


async def test_sigterm_lets_a_running_job_finish_within_grace(
    redis_url: str, namespace: str, spawn_worker: SpawnWorker, probe_log: Path
) -> None:
    async with make_service(redis_url, namespace) as service:
        job_id = await service.add_job(probe(probe_log, sleep_s=1.0))
        worker = spawn_worker(redis_url, namespace, lease_s=60, grace_s=20)
        await wait_until(events_at_least(probe_log, "start", 1), "the job started", worker)

        signalled = time.monotonic()
        assert worker.stop(signal.SIGTERM) == 0, worker.output()
        assert time.monotonic() - signalled < 10  # the job's remaining second, not the grace
        stats = await service.get_queue_stats()

    assert [(e.kind, e.job_id) for e in read_events(probe_log)] == [
        ("start", job_id),
        ("done", job_id),
    ]
    assert_drained(stats)
    assert stats.total_processed == 1


async def test_sigterm_hands_a_long_job_back_to_the_front_of_its_list(
    redis_url: str, namespace: str, spawn_worker: SpawnWorker, probe_log: Path
) -> None:
    """Grace shorter than the job: the job goes back at once, ahead of the jobs that were
    waiting at its priority, without an attempt counted; nobody waits for the 60 s lease."""
    async with make_service(redis_url, namespace) as service:
        long_id = await service.add_job(probe(probe_log, sleep_s=30, tag="long"), priority=2)
        worker = spawn_worker(redis_url, namespace, lease_s=60, grace_s=0.5)
        await wait_until(events_at_least(probe_log, "start", 1), "the long job started", worker)
        waiting = await service.add_jobs([probe(probe_log, tag="b"), probe(probe_log, tag="c")], 2)

        signalled = time.monotonic()
        assert worker.stop(signal.SIGTERM) == 0, worker.output()
        assert time.monotonic() - signalled < 10

        # Workers take from the right: the handed-back job is next.
        ready = await service.redis.lrange(service.keys.priority(2), 0, -1)
        assert ready == [*reversed(waiting), long_id]
        job = await service.get_job(long_id)
        stats = await service.get_queue_stats()

    assert job is not None
    assert job.attempts == 0
    assert [(e.kind, e.tag) for e in read_events(probe_log)] == [
        ("start", "long"),
        ("cancelled", "long"),
    ]
    assert (stats.in_flight, stats.recovered, stats.total_failed, stats.total_jobs) == (0, 0, 0, 3)


async def test_worker_survives_redis_restart(
    fresh_redis_server: RedisServer, namespace: str, spawn_worker: SpawnWorker, probe_log: Path
) -> None:
    url = fresh_redis_server.url
    # 5 s of work at concurrency 2: Redis stops with most of it left, with seconds to spare
    # even on a slow machine.
    jobs = [probe(probe_log, sleep_s=0.5, tag=f"j{n}") for n in range(20)]
    async with make_service(url, namespace) as service:
        job_ids = await service.add_jobs(jobs)
        worker = spawn_worker(url, namespace, concurrency=2, lease_s=5)
        await wait_until(events_at_least(probe_log, "done", 4), "4 jobs done", worker)

        fresh_redis_server.stop()  # SIGTERM: with AOF, everything acknowledged is on disk
        await asyncio.sleep(3)  # an outage of several seconds, in real time
        assert worker.proc.poll() is None, worker.output()
        done_during_outage = len(read_events(probe_log, "done"))
        assert done_during_outage < len(jobs)  # work was left for after the restart
        fresh_redis_server.start()

        async def all_done() -> bool:
            stats = await service.get_queue_stats()
            return stats.total_processed == len(jobs) and stats.in_flight == 0

        await wait_until(all_done, "every job acknowledged after the restart", worker)
        assert worker.stop(signal.SIGTERM) == 0, worker.output()
        stats = await service.get_queue_stats()

    assert {e.job_id for e in read_events(probe_log, "done")} == set(job_ids)
    assert_drained(stats)
    assert stats.total_processed == len(jobs)
