"""One worker of a fleet maintains at a time, and its turn passes on promptly: when it stops
(it gives the turn up) and when it is killed (the turn expires), so that the leases of a killed
worker's jobs are still recovered as soon as they lapse."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from qworker.maintenance import turn_ttl_s
from qworker.service import QueueService
from qworker.worker import Worker
from tests.jobtypes import probe, read_events
from tests.redis.conftest import JOB_MODULES, make_test_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 4.0


async def wait_for(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float) -> float:
    """Seconds until ``check`` held."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < timeout_s, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture
def worker_process(
    redis_url: str, namespace: str, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    args = [sys.executable, "-m", "tests.worker_main", "--redis-url", redis_url]
    args += ["--namespace", namespace, "--lease-seconds", str(LEASE_S)]
    args += ["--import", "tests.jobtypes"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWORKER_")}
    with (tmp_path / "worker.log").open("wb") as log:
        proc = subprocess.Popen(
            args, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


async def test_a_killed_holders_turn_passes_on_and_its_job_is_recovered(
    redis_url: str,
    namespace: str,
    probe_log: Path,
    worker_process: subprocess.Popen[bytes],
) -> None:
    settings = make_test_settings(redis_url, namespace, lease_seconds=LEASE_S)
    async with QueueService(settings=settings) as service:
        job_id = await service.add_job(probe(probe_log, sleep_s=60))
        turn_key = service.keys.maintenance_turn

        async def started() -> bool:
            return bool(read_events(probe_log, "start"))

        async def turn_held() -> bool:
            return await service.redis.get(turn_key) is not None

        await wait_for("the worker process runs the job", started, 30)
        await wait_for("the worker process holds the turn", turn_held, 10)
        holder = await service.redis.get(turn_key)

        worker = Worker(service, settings=settings, job_modules=JOB_MODULES)
        task = asyncio.create_task(worker.run())
        try:
            # (That a live holder keeps its turn is the next test's: here the process could
            # stall past its 1 s turn on a busy machine and lose it, as it should.)
            await asyncio.sleep(0.5)
            worker_process.send_signal(signal.SIGKILL)
            worker_process.wait(10)

            async def taken_over() -> bool:
                return worker.turn.held

            async def recovered_and_run() -> bool:
                return any(e.attempt == 2 for e in read_events(probe_log, "start"))

            # The killed holder's turn expires (turn_ttl_s) and the worker takes it at its
            # next try (at most 5/8 of the turn's life later).
            ttl_s = turn_ttl_s(LEASE_S)
            took_s = await wait_for("the turn passes on", taken_over, ttl_s * 2 + 3)
            assert await service.redis.get(turn_key) == worker.worker_id != holder
            # The job's lease lapses LEASE_S after its last renewal; the new holder recovers
            # it (after its own grace of one lease) and runs it again.
            await wait_for("the killed worker's job runs again", recovered_and_run, 4 * LEASE_S + 5)
            assert took_s < ttl_s * 2 + 3
        finally:
            worker.request_stop(immediate=True)
            await asyncio.wait_for(task, 10)
    assert [e.job_id for e in read_events(probe_log, "start")] == [job_id, job_id]


async def test_a_stopping_holder_gives_the_turn_to_another_worker(
    redis_url: str, namespace: str
) -> None:
    settings = make_test_settings(redis_url, namespace)  # the default 60 s lease: a 12 s turn
    async with QueueService(settings=settings) as service:
        first = Worker(service, settings=settings, job_modules=JOB_MODULES)
        first_task = asyncio.create_task(first.run())

        async def first_holds() -> bool:
            return first.turn.held

        await wait_for("the first worker takes the turn", first_holds, 10)
        second = Worker(service, settings=settings, job_modules=JOB_MODULES)
        second_task = asyncio.create_task(second.run())
        try:
            await asyncio.sleep(0.5)
            assert not second.turn.held
            first.request_stop()
            # A graceful stop ends the idle wait at once (no 12 s BLPOP left to run out).
            await asyncio.wait_for(first_task, 5)
            assert await service.redis.get(service.keys.maintenance_turn) is None

            async def second_holds() -> bool:
                return second.turn.held

            # Given up, the turn is taken at the next try, well within its 12 s life.
            await wait_for("the second worker takes the turn", second_holds, 10)
        finally:
            second.request_stop()
            await asyncio.wait_for(second_task, 10)
