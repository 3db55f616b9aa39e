"""Moving the namespace's slot between cluster nodes (CLUSTER SETSLOT ... IMPORTING/MIGRATING,
then MIGRATE key by key) while qworker works: no script runs on a half-moved namespace, so no
job is lost, none runs twice, and work resumes on the new owner."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from qworker.service import QueueService
from qworker.worker import Worker
from tests.distributed.conftest import settings_for
from tests.distributed.servers import HOST, Cluster, admin
from tests.jobtypes import probe, read_events

PRODUCED = 400
MIGRATE_BATCH = 5


class SlotMove:
    """One slot's move from its owner to another master, one step at a time."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        ports = [node.port for node in cluster.nodes]
        with admin(ports[0]) as client:
            self.slot = int(client.cluster("keyslot", namespace))
        self.all_ports = ports
        with admin(ports[0]) as client:
            self.source_port, self.source_id = next(
                (int(owner[1]), str(owner[2]))
                for start, end, owner, *_replicas in client.execute_command("CLUSTER", "SLOTS")
                if int(start) <= self.slot <= int(end)
            )
        self.target_port = next(port for port in ports if port != self.source_port)
        self.target_id = self._node_id(self.target_port)

    @staticmethod
    def _node_id(port: int) -> str:
        with admin(port) as client:
            return str(client.execute_command("CLUSTER", "MYID"))

    def begin(self) -> None:
        with admin(self.target_port) as target:
            target.execute_command("CLUSTER", "SETSLOT", self.slot, "IMPORTING", self.source_id)
        with admin(self.source_port) as source:
            source.execute_command("CLUSTER", "SETSLOT", self.slot, "MIGRATING", self.target_id)

    def move_some(self, count: int = MIGRATE_BATCH, *, pattern: str = "") -> int:
        """MIGRATE up to ``count`` keys of the slot (those containing ``pattern``)."""
        with admin(self.source_port) as source:
            keys = [
                key
                for key in source.execute_command("CLUSTER", "GETKEYSINSLOT", self.slot, 1000)
                if pattern in key
            ][:count]
            if keys:
                source.execute_command(
                    "MIGRATE", HOST, self.target_port, "", 0, 5000, "KEYS", *keys
                )
        return len(keys)

    def finish(self) -> None:
        while self.move_some(1000):
            pass
        for port in (self.target_port, self.source_port, *self.all_ports):
            with admin(port) as client:
                client.execute_command("CLUSTER", "SETSLOT", self.slot, "NODE", self.target_id)


@pytest.fixture
async def service(cluster: Cluster, tagged_namespace: str) -> AsyncIterator[QueueService]:
    settings = settings_for(redis_url=cluster.url, namespace=tagged_namespace, redis_cluster=True)
    async with QueueService(settings=settings) as queue_service:
        yield queue_service


async def test_no_script_runs_on_a_half_moved_namespace(
    cluster: Cluster, service: QueueService, tmp_path: Path
) -> None:
    """The job hashes have moved, every list not yet: a claim on the old owner must not pop an
    id and then fail on its hash (which lost the job: in no list, not in flight)."""
    log = tmp_path / "probe.log"
    job_ids = [
        await service.add_job(probe(log, tag=f"{priority}.{i}"), priority=priority)
        for priority in (1, 2, 3, 4)
        for i in range(2)
    ]
    await service.runner.load_all()
    # Every key the claim declares exists (a missing one alone would make Redis refuse it),
    # one job is in flight under a lease that will have lapsed when the worker below runs.
    await service.run(service.scripts.claim("gone", None, 1, 1, "base"))
    move = SlotMove(cluster, service.keys.namespace)
    move.begin()
    try:
        while move.move_some(pattern="jobs_data:"):
            pass
        claim = service.scripts.claim("w", None, 60_000, 8, "base")
        with admin(move.source_port) as source:
            for call in (claim, service.scripts.recover(None, 10, 3, "{}", 0)):
                with pytest.raises(redis.ResponseError, match=r"TRYAGAIN|rehashing"):
                    source.execute_command(*call.command())
    finally:
        move.finish()
    stats = await service.get_queue_stats()
    assert (stats.total_jobs, stats.in_flight) == (7, 1)

    worker = Worker(
        service,
        settings=service.settings,
        burst=True,
        job_modules=["tests.jobtypes"],
        recovery_grace_s=0,  # recovers the lapsed lease at once, as a long-running worker would
    )
    await asyncio.wait_for(worker.run(), 60)
    assert Counter(event.job_id for event in read_events(log, "done")) == dict.fromkeys(job_ids, 1)


async def test_a_slot_moves_under_a_running_worker_and_producer(
    cluster: Cluster, service: QueueService, tmp_path: Path
) -> None:
    log = tmp_path / "probe.log"
    acknowledged: list[str] = []

    async def produce() -> None:
        for i in range(PRODUCED):
            while True:
                try:
                    acknowledged.append(await service.add_job(probe(log, tag=str(i))))
                    break
                except redis.RedisError:  # refused while the slot moves: it did not run
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.002)

    worker = Worker(
        service, settings=service.settings, concurrency=8, job_modules=["tests.jobtypes"]
    )
    running = asyncio.ensure_future(worker.run())
    producing = asyncio.ensure_future(produce())
    try:
        while len(acknowledged) < PRODUCED // 4:
            await asyncio.sleep(0.01)
        move = SlotMove(cluster, service.keys.namespace)
        move.begin()
        try:
            while await asyncio.to_thread(move.move_some):
                await asyncio.sleep(0.02)  # let the worker and the producer hit the split
        finally:
            await asyncio.to_thread(move.finish)
        await asyncio.wait_for(producing, 120)

        async def drained() -> bool:
            stats = await service.get_queue_stats()
            return stats.total_processed >= PRODUCED and stats.total_jobs + stats.in_flight == 0

        for _ in range(1200):
            with contextlib.suppress(redis.RedisError):
                if await drained():
                    break
            await asyncio.sleep(0.05)
    finally:
        producing.cancel()
        worker.request_stop()
        await asyncio.wait_for(running, 60)

    stats = await service.get_queue_stats()
    done = Counter(event.job_id for event in read_events(log, "done"))
    assert len(acknowledged) == PRODUCED
    assert done == dict.fromkeys(acknowledged, 1), "a job was lost or ran twice"
    assert (stats.dead_letter, stats.retry, stats.parked, stats.in_flight) == (0, 0, 0, 0)
    await service.clear_queue(everything=True)
