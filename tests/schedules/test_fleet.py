"""Four worker processes and one ``--every 1s`` schedule, in real time: every due time fires
exactly once, none twice and none missing, while workers are SIGKILLed and replaced.

Real time is the point here (processes, sockets, kills), so the test waits with a deadline; it
asserts no latency, only the account of due times. ``-s`` prints the account.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from qworker.config import Settings
from qworker.schedule_store import ScheduleStore, build_schedule
from qworker.service import QueueService

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4
DUE_TIMES = 20


class Fleet:
    def __init__(self, redis_url: str, namespace: str, tmp_path: Path) -> None:
        self.args = [sys.executable, "-m", "tests.worker_main", "--redis-url", redis_url]
        self.args += ["--namespace", namespace, "--import", "tests.schedules.jobtypes"]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("QWORKER_")}
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self) -> subprocess.Popen[bytes]:
        log = (self.tmp_path / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            self.args, cwd=REPO_ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        log.close()  # the child holds its own descriptor
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


@pytest.fixture
def fleet(redis_url: str, namespace: str, tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(redis_url, namespace, tmp_path)
    yield fleet
    fleet.close()


async def fired(service: QueueService, name: str) -> list[dict[str, str]]:
    jobs = []
    async for key in service.redis.scan_iter(match=service.keys.job("*"), count=1000):
        fields = await service.redis.hgetall(key)  # type: ignore[misc]
        if fields.get("schedule") == name:
            jobs.append(fields)
    return jobs


async def test_four_workers_fire_each_due_time_exactly_once_through_kills(
    fleet: Fleet, redis_url: str, namespace: str
) -> None:
    settings = Settings(redis_url=redis_url, namespace=namespace, _env_file=None)  # type: ignore[call-arg]
    async with QueueService(settings=settings) as service:
        workers = [fleet.spawn() for _ in range(WORKERS)]
        start_ms = (time.time_ns() // 1_000_000 // 1000 + 6) * 1000  # workers start meanwhile
        expected = [start_ms + 1000 * k for k in range(DUE_TIMES)]
        schedule = build_schedule(
            settings,
            "tick",
            {"job_type": "origin"},
            every="1s",
            start_ms=start_ms,
            end_ms=expected[-1],
            missed="all",  # a due time found late is still fired on its own: countable
            max_catchup=DUE_TIMES,
        )
        await ScheduleStore(service).upsert(schedule)

        async def at(offset_s: float) -> None:
            await asyncio.sleep(max(start_ms / 1000 + offset_s - time.time(), 0))

        await at(4.5)
        fleet.kill(workers[0])  # SIGKILL, mid-run
        workers.append(fleet.spawn())
        await at(11.3)
        fleet.kill(workers[1])
        fleet.kill(workers[2])
        workers.append(fleet.spawn())
        await at(DUE_TIMES + 2)
        deadline = time.monotonic() + 30
        while len(await fired(service, "tick")) < DUE_TIMES and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        jobs = await fired(service, "tick")
        stored = await ScheduleStore(service).get("tick")

    due = Counter(int(job["scheduled_for_ms"]) for job in jobs)
    twice = sorted(d for d, n in due.items() if n > 1)
    missing = sorted(set(expected) - set(due))
    late_ms = sorted(int(job["enqueued_at_ms"]) - int(job["scheduled_for_ms"]) for job in jobs)
    print(
        f"\nfleet: {DUE_TIMES} due times, {len(jobs)} fired, twice {len(twice)}, "
        f"missing {len(missing)}, extra {len(set(due) - set(expected))}; "
        f"enqueued after the due time: median {late_ms[len(late_ms) // 2]} ms, "
        f"max {late_ms[-1]} ms; 3 workers SIGKILLed"
    )
    assert twice == [] and missing == []
    assert sorted(due) == expected
    assert stored.fired == DUE_TIMES and stored.next_due_ms is None
