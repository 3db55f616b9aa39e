"""Four worker processes share one limit: no more run than it allows, and nobody spins."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import redis

from qworker.config import Settings
from qworker.service import QueueService
from tests.ratelimit import limited_jobs
from tests.redis_server import RedisServer

REPO_ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "limits"
assert limited_jobs.LimitedJob  # the producer validates against the registered type


def start_worker(url: str, log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "tests.worker_main", "--redis-url", url,
            "--namespace", NAMESPACE, "--concurrency", "4",
            "--import", "tests.ratelimit.limited_jobs",
        ],
        cwd=REPO_ROOT,
        stderr=log,
    )  # fmt: skip


def wait_for(condition: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def total_commands(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(entry["calls"]) for entry in stats.values())


def test_four_workers_respect_a_shared_hourly_limit(
    fresh_redis_server: RedisServer, tmp_path: Path
) -> None:
    url = fresh_redis_server.url
    client = redis.Redis.from_url(url, decode_responses=True)
    settings = Settings(redis_url=url, namespace=NAMESPACE, _env_file=None)  # type: ignore[call-arg]

    async def enqueue() -> list[str]:
        async with QueueService(settings=settings) as service:
            job = {"job_type": "limited", "record_key": "executed", "per_hour": 5}
            return await service.add_jobs([job] * 50, priority=2)

    job_ids = asyncio.run(enqueue())
    log = (tmp_path / "workers.log").open("wb")
    workers = [start_worker(url, log) for _ in range(4)]
    try:
        parked_key = f"{NAMESPACE}:jobs_parked"
        wait_for(lambda: client.zcard(parked_key) + client.llen("executed") == 50)
        # Waiting, they leave Redis alone: a few commands a second each, not a busy loop.
        before, started = total_commands(client), time.monotonic()
        time.sleep(3)
        rate_per_worker = (total_commands(client) - before) / (time.monotonic() - started) / 4
        assert rate_per_worker < 40, f"{rate_per_worker:.0f} commands/s per idle worker"
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        exit_codes = [worker.wait(timeout=30) for worker in workers]
        log.close()
    assert exit_codes == [0, 0, 0, 0]

    executed = client.lrange("executed", 0, -1)
    assert len(executed) == 5
    parked = client.zrange(parked_key, 0, -1)
    queued = client.lrange(f"{NAMESPACE}:jobs_priority_2", 0, -1)
    assert sorted(executed + parked + queued) == sorted(job_ids)  # none lost, none twice
    assert client.zcard(f"{NAMESPACE}:jobs_dead_letter") == 0
    assert client.zcard(f"{NAMESPACE}:jobs_inflight") == 0
    client.close()
