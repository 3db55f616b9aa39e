"""Sentinel failover under a running worker: a master, a replica, three sentinels; the master is
SIGKILLed mid-run. The worker, the producer's QueueService and the CLI find the new master by
themselves, and an account of the jobs says what ran, what ran twice, and what was lost.

What replication can lose: a write the master acknowledged but had not yet sent to the replica.
Enqueues here are durable (WAIT for one replica), so none of them can be lost; a claim or an
acknowledgement that did not reach the replica makes the job run once more (at least once).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from qworker.errors import RedisUnavailable, ReplicationUnconfirmed
from qworker.service import QueueService
from tests.distributed.conftest import SpawnWorker, clean_env, settings_for, wait_until
from tests.distributed.servers import MASTER_NAME, SentinelGroup
from tests.jobtypes import probe, read_events

FIRST_BATCH = 150
SECOND_BATCH = 50
LEASE_S = 3.0
DEADLINE_S = 30.0
NAMESPACE = "failover"
# The URL gives only what the sentinels cannot: credentials (none here) and the db.
URL = "redis:///0"


async def test_worker_and_producer_carry_on_after_a_failover(
    sentinel_group: SentinelGroup, tmp_path: Path, spawn_worker: SpawnWorker
) -> None:
    group, log = sentinel_group, tmp_path / "probe.log"
    sentinel_env = {
        "QWORKER_REDIS_SENTINELS": group.addresses,
        "QWORKER_REDIS_SENTINEL_MASTER": MASTER_NAME,
    }
    settings = settings_for(
        redis_url=URL,
        namespace=NAMESPACE,
        redis_sentinels=group.addresses,
        redis_sentinel_master=MASTER_NAME,
        durable_replicas=1,
        durable_timeout_ms=2000,  # time enough for the replica to acknowledge on a loaded machine
    )
    async with QueueService(settings=settings) as service:
        # Durable: each enqueue returns once the replica has the jobs too.
        enqueued = await service.add_jobs(
            [probe(log, sleep_s=0.02, tag=f"a{i}") for i in range(FIRST_BATCH)]
        )
        worker = spawn_worker(URL, NAMESPACE, env=sentinel_env, concurrency=4, lease_s=LEASE_S)

        async def a_third_done() -> bool:
            return len(read_events(log, "done")) >= FIRST_BATCH // 3

        await wait_until(a_third_done, "a third of the jobs done", [worker])
        group.master.kill()  # SIGKILL
        killed_at = time.monotonic()
        promoted_port = await asyncio.to_thread(wait_for_promotion, group)
        failover_s = time.monotonic() - killed_at
        assert promoted_port == group.replica.port

        # The same service, the producer, reaches the new master on its next connection. It has
        # no replica left, so a durable enqueue says so; the jobs are queued all the same.
        with pytest.raises(ReplicationUnconfirmed, match="0 of 1 replica") as unconfirmed:
            await enqueue_when_back(service, log)
        enqueued += unconfirmed.value.job_ids

        async def drained() -> bool:
            stats = await service.get_queue_stats()
            done = {event.job_id for event in read_events(log, "done")}
            return set(enqueued) <= done and (stats.total_jobs, stats.in_flight) == (0, 0)

        await wait_until(drained, "every job done and nothing in flight", [worker])
        processed = (await service.get_queue_stats()).total_processed

    assert worker.stop(signal.SIGTERM) == 0, worker.output()
    output = worker.output()
    assert "Redis unavailable" in output and "Redis is back" in output
    account = job_account(enqueued, log, processed, failover_s)
    print(f"\nfailover account: {json.dumps(account)}")
    assert account["enqueued"] == FIRST_BATCH + SECOND_BATCH
    assert account["lost"] == 0, account
    assert cli_stats(group, tmp_path)["total_jobs"] == 0  # a new CLI process finds it too


def wait_for_promotion(group: SentinelGroup) -> int:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        port = group.sentinels[0].master_port_now()
        if port != group.master.port:
            return port
        time.sleep(0.05)
    raise AssertionError(f"no failover within {DEADLINE_S}s")


async def enqueue_when_back(service: QueueService, log: Path) -> None:
    """Enqueue the second batch, retrying while the pool still holds dead connections."""
    batch = [probe(log, sleep_s=0.02, tag=f"b{i}") for i in range(SECOND_BATCH)]
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            await service.add_jobs(batch)
            return
        except RedisUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def job_account(
    enqueued: list[str], log: Path, processed: int, failover_s: float
) -> dict[str, float]:
    """What happened to every job: done once, done more than once (at least once), lost."""
    runs = Counter(event.job_id for event in read_events(log, "done"))
    return {
        "enqueued": len(enqueued),
        "done_once": sum(1 for job_id in enqueued if runs[job_id] == 1),
        "done_again": sum(1 for job_id in enqueued if runs[job_id] > 1),
        "lost": sum(1 for job_id in enqueued if runs[job_id] == 0),
        "processed_counter": processed,
        "failover_s": round(failover_s, 2),
    }


def cli_stats(group: SentinelGroup, cwd: Path) -> dict[str, object]:
    env = clean_env(
        QWORKER_REDIS_URL=URL,
        QWORKER_REDIS_SENTINELS=group.addresses,
        QWORKER_REDIS_SENTINEL_MASTER=MASTER_NAME,
        QWORKER_NAMESPACE=NAMESPACE,
    )
    result = subprocess.run(
        [sys.executable, "-m", "qworker", "stats", "--json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    stats: dict[str, object] = json.loads(result.stdout)
    return stats
