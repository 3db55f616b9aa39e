"""Figure 7b of ``scripts/bench``: the scale drain on a 3-master Redis Cluster.

The bench starts the cluster itself (``tests/distributed/servers.Cluster``: loopback, free
ports, no persistence). Every key of a namespace carries its hash tag, so the whole queue lives
in one slot on one master: the figure shows what a cluster does for one queue, not for many.
Jobs are enqueued through a cluster ``QueueService``, and the drain is timed by polling
``QueueService.get_queue_stats()``; the workers are real ``qworker work --burst`` processes
with ``QWORKER_REDIS_CLUSTER=true`` and the URL of one node.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass

import bench_measure as m

from qworker.config import Settings
from qworker.models import QueueStats
from qworker.service import QueueService
from tests.distributed.servers import Cluster, admin

MASTERS = 3
NAMESPACE = "{bench}"  # a cluster needs the hash tag: all of a queue's keys in one slot
CLUSTER_ENV = {"QWORKER_REDIS_CLUSTER": "true"}


@dataclass(frozen=True)
class ClusterEnv:
    """The bench's ``Env`` pointed at one node of the cluster, with the tagged namespace."""

    env: m.Env
    cluster: Cluster

    @property
    def masters(self) -> int:
        return len(self.cluster.nodes)

    def settings(self) -> Settings:
        return Settings(  # type: ignore[call-arg]
            _env_file=None,
            redis_url=self.env.redis_url,
            namespace=self.env.namespace,
            redis_cluster=True,
        )

    def flush(self) -> None:
        for node in self.cluster.nodes:
            with admin(node.port) as client:
                client.flushall()


@contextlib.contextmanager
def running_cluster(env: m.Env) -> Iterator[ClusterEnv]:
    """A fresh cluster of ``MASTERS`` masters under the bench's scratch directory."""
    cluster = Cluster(env.workdir / "cluster", masters=MASTERS)
    try:
        cluster.start()
        yield ClusterEnv(
            dataclasses.replace(env, redis_url=cluster.url, namespace=NAMESPACE), cluster
        )
    finally:
        cluster.stop()


@dataclass(frozen=True)
class ClusterDrainRun:
    jobs: int
    workers: int
    concurrency: int
    seconds: float  # first claim to every job processed
    wall_s: float  # first process started to the last one exited
    peak_rss_mb: float  # the largest of the worker processes

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds


async def _open(settings: Settings) -> QueueService:
    return QueueService(settings=settings)


def drain(cenv: ClusterEnv, jobs: int, workers: int, concurrency: int) -> ClusterDrainRun:
    """Queue ``jobs`` no-op jobs, start ``workers`` burst workers, time them to an empty queue
    (from the first claim, as ``bench_measure.drain`` does)."""
    cenv.flush()
    with asyncio.Runner() as runner:
        service = runner.run(_open(cenv.settings()))
        try:

            def stats() -> QueueStats:
                return runner.run(service.get_queue_stats())

            runner.run(m.enqueue_in_batches(service, jobs, m.FILL_BATCH))
            if (ready := stats().total_jobs) != jobs:
                raise m.BenchError(f"enqueued {jobs} jobs on the cluster but {ready} are ready")
            t_spawn = time.perf_counter()
            children = [
                m.spawn_worker(cenv.env, concurrency, burst=True, tag=f"cluster-{i}", **CLUSTER_ENV)
                for i in range(workers)
            ]
            try:
                t_first = m.poll_until(lambda: stats().total_jobs < jobs, m.POLL_START_S, children)
                t_done = m.poll_until(
                    lambda: stats().total_processed >= jobs, m.POLL_END_S, children
                )
                for child in children:
                    child.reap(m.WORKER_TIMEOUT_S)
            finally:
                for child in children:
                    if child.proc.poll() is None:
                        child.proc.kill()
            t_exit = time.perf_counter()
            for child in children:
                child.check()
            _check_drained(stats(), jobs)
        finally:
            runner.run(service.close())
    usages = [child.rusage for child in children if child.rusage is not None]
    return ClusterDrainRun(
        jobs=jobs,
        workers=workers,
        concurrency=concurrency,
        seconds=t_done - t_first,
        wall_s=t_exit - t_spawn,
        peak_rss_mb=max(u.ru_maxrss for u in usages) / 1024,  # Linux: KiB
    )


def _check_drained(stats: QueueStats, jobs: int) -> None:
    left, in_flight = stats.total_jobs, stats.in_flight
    failed = stats.dead_letter + stats.retry
    if (left, in_flight, failed, stats.total_processed) != (0, 0, 0, jobs):
        raise m.BenchError(
            f"after the cluster drain: {left} ready, {in_flight} in flight, {failed} failed, "
            f"{stats.total_processed} processed of {jobs}"
        )
