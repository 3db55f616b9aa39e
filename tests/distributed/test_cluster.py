"""qworker on a 3-master Redis Cluster: the whole lifecycle, several worker processes sharing a
queue, the hash-tag requirement, and a durable enqueue's WAIT sent to the slot's owner."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import redis

from qworker.errors import ConfigurationError, ReplicationUnconfirmed
from qworker.service import QueueService
from qworker.worker import Worker
from tests.distributed.acl import create_user, denials
from tests.distributed.conftest import SpawnWorker, clean_env, settings_for, wait_until
from tests.distributed.lifecycle import run_lifecycle
from tests.distributed.servers import Cluster, admin
from tests.jobtypes import probe, read_events

JOBS = 300
WORKERS = 3


async def test_lifecycle_on_a_cluster(
    cluster: Cluster, tagged_namespace: str, tmp_path: Path
) -> None:
    settings = settings_for(redis_url=cluster.url, namespace=tagged_namespace, redis_cluster=True)
    await run_lifecycle(settings, tmp_path / "probe.log")
    # The final clear found every key of the namespace (SCAN over the cluster) and deleted it.
    assert keys_in_slot_by_node(cluster, tagged_namespace) == [0] * len(cluster.nodes)


async def test_lifecycle_on_a_cluster_as_a_restricted_user(
    cluster: Cluster, tagged_namespace: str, tmp_path: Path
) -> None:
    """ACL users are per node: the same rule on each, plus what a cluster client reads."""
    for node in cluster.nodes:
        with admin(node.port) as client:
            client.execute_command("ACL", "LOG", "RESET")
            create_user(client, "qworker", "pw", tagged_namespace, cluster=True)
    url = cluster.url.replace("redis://", "redis://qworker:pw@")
    settings = settings_for(redis_url=url, namespace=tagged_namespace, redis_cluster=True)
    try:
        await run_lifecycle(settings, tmp_path / "probe.log")
    finally:
        refused = []
        for node in cluster.nodes:
            with admin(node.port) as client:
                refused += denials(client)
                client.execute_command("ACL", "DELUSER", "qworker")
    assert refused == []


async def test_a_tweet_with_media_on_a_cluster(cluster: Cluster, tagged_namespace: str) -> None:
    """The media's scripts are loaded on every primary (SCRIPT LOAD outside a pipeline, which a
    cluster client refuses), then run in one MULTI/EXEC on the namespace's slot."""
    from qworker.jobs.tweet import TweetJobParams
    from qworker.jobs.tweet_media import MediaRef, enqueue_with_media, load_media, sniff_type

    png = b"\x89PNG\r\n\x1a\n" + b"png-body" * 10
    ref = MediaRef(mime=sniff_type(png), size=len(png), sha256=hashlib.sha256(png).hexdigest())
    settings = settings_for(redis_url=cluster.url, namespace=tagged_namespace, redis_cluster=True)
    async with QueueService(settings=settings) as service:
        await service.redis.script_flush()
        result = await enqueue_with_media(
            service,
            TweetJobParams(content="on a cluster", media=[ref]),
            [png],
            priority=3,
            delay_s=None,
            run_at_ms=None,
            job_id=None,
            unique_key=None,
            unique_for_s=None,
            unique_until="finished",
        )
        assert result.created
        assert await load_media(service.redis, service.keys.media(result.job_id)) == [png]
        await service.clear_queue(everything=True)


def keys_in_slot_by_node(cluster: Cluster, namespace: str) -> list[int]:
    """How many keys of the namespace's slot each node holds."""
    counts = []
    for node in cluster.nodes:
        with admin(node.port) as client:
            slot = client.cluster("keyslot", namespace)
            counts.append(int(client.cluster("countkeysinslot", slot)))
    return counts


async def test_worker_processes_share_one_queue_on_the_cluster(
    cluster: Cluster, tagged_namespace: str, tmp_path: Path, spawn_worker: SpawnWorker
) -> None:
    """Worker processes stand in for worker hosts: all take part, each job runs once."""
    log = tmp_path / "probe.log"
    settings = settings_for(redis_url=cluster.url, namespace=tagged_namespace, redis_cluster=True)
    env = {"QWORKER_REDIS_CLUSTER": "true"}
    workers = [
        spawn_worker(cluster.url, tagged_namespace, env=env, concurrency=2) for _ in range(WORKERS)
    ]
    async with QueueService(settings=settings) as service:

        async def all_listed() -> bool:
            return len(await service.list_workers()) == WORKERS

        await wait_until(all_listed, "every worker registered", workers)
        # 2.5 s of work for six slots: a worker the machine holds up for a second after it
        # registered still finds jobs left to take part in.
        job_ids = await service.add_jobs(
            [probe(log, sleep_s=0.05, tag=str(i)) for i in range(JOBS)]
        )
        # Every key of the namespace is on one node: the owner of its hash tag's slot.
        counts = keys_in_slot_by_node(cluster, tagged_namespace)
        assert sorted(counts)[:-1] == [0] * (len(cluster.nodes) - 1) and max(counts) > 0

        async def drained() -> bool:
            stats = await service.get_queue_stats()
            return (stats.total_processed, stats.total_jobs, stats.in_flight) == (JOBS, 0, 0)

        await wait_until(drained, "every job done", workers)
        for worker in workers:
            assert worker.stop(signal.SIGTERM) == 0, worker.output()
        done = Counter(event.job_id for event in read_events(log, "done"))
        assert set(done) == set(job_ids) and set(done.values()) == {1}
        assert all("stopped after 0 job(s)" not in worker.output() for worker in workers)
        await service.clear_queue(everything=True)


async def test_a_namespace_without_hash_tag_is_refused(cluster: Cluster) -> None:
    settings = settings_for(redis_url=cluster.url, namespace="app", redis_cluster=True)
    with pytest.raises(ConfigurationError, match=r"no hash tag.*QWORKER_NAMESPACE='\{qw\}'"):
        QueueService(settings=settings)
    with pytest.raises(ConfigurationError, match="no hash tag"):
        Worker(settings=settings)


def test_the_cli_says_how_to_set_the_namespace(cluster: Cluster, tmp_path: Path) -> None:
    env = clean_env(QWORKER_REDIS_URL=cluster.url, QWORKER_REDIS_CLUSTER="true")
    result = subprocess.run(
        [sys.executable, "-m", "qworker", "--namespace", "app", "stats", "--json"],
        cwd=tmp_path,  # no .env here
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "hash tag" in line and "--namespace '{qw}'" in line


async def test_durable_enqueue_waits_on_the_node_that_owns_the_slot(
    cluster: Cluster, tagged_namespace: str, tmp_path: Path
) -> None:
    settings = settings_for(
        redis_url=cluster.url,
        namespace=tagged_namespace,
        redis_cluster=True,
        durable_replicas=1,
        durable_timeout_ms=50,
    )

    def waits() -> list[int]:
        calls = []
        for node in cluster.nodes:
            with admin(node.port) as client:
                calls.append(client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))
        return calls

    before = waits()
    async with QueueService(settings=settings) as service:
        await service.runner.load_all()
        # This cluster has no replicas: the WAIT times out and says so; the job is queued.
        with pytest.raises(ReplicationUnconfirmed, match="0 of 1 replica") as caught:
            await service.add_job(probe(tmp_path / "probe.log"))
        assert await service.get_job(caught.value.job_ids[0]) is not None
        await service.clear_queue(everything=True)
    after = waits()
    owner = max(range(len(after)), key=lambda i: after[i] - before[i])
    assert [a - b for a, b in zip(after, before, strict=True)] == [
        1 if i == owner else 0 for i in range(len(after))
    ]
    with admin(cluster.nodes[owner].port) as client:
        assert client.cluster("keyslot", tagged_namespace) in slots_served_by(client)


def slots_served_by(client: redis.Redis) -> set[int]:
    """The slots of the node ``client`` talks to."""
    myself = client.execute_command("CLUSTER", "MYID")  # type: ignore[no-untyped-call]
    slots: set[int] = set()
    for start, end, *nodes in client.execute_command("CLUSTER", "SLOTS"):  # type: ignore[no-untyped-call]
        if any(node[2] == myself for node in nodes):
            slots.update(range(int(start), int(end) + 1))
    return slots
