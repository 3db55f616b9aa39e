"""On a Redis Cluster the eviction check reads the node that holds the namespace's slot: the one
whose policy decides whether that namespace's jobs can be evicted."""

from __future__ import annotations

import pytest

from qworker.errors import ConfigurationError
from qworker.service import QueueService
from tests.distributed.conftest import settings_for
from tests.distributed.servers import Cluster, admin


def owner_index(cluster: Cluster, namespace: str) -> int:
    with admin(cluster.nodes[0].port) as client:
        slot = int(client.cluster("keyslot", namespace))
        for start, end, (_host, port, *_rest) in client.cluster("slots"):
            if int(start) <= slot <= int(end):
                return next(i for i, node in enumerate(cluster.nodes) if node.port == int(port))
    raise AssertionError(f"no node serves slot {slot}")


async def test_the_check_reads_the_node_that_owns_the_namespace(
    cluster: Cluster, tagged_namespace: str
) -> None:
    owner = owner_index(cluster, tagged_namespace)
    settings = settings_for(redis_url=cluster.url, namespace=tagged_namespace, redis_cluster=True)
    try:
        for i, node in enumerate(cluster.nodes):  # only the owner evicts
            with admin(node.port) as client:
                client.config_set("maxmemory-policy", "allkeys-lru" if i == owner else "noeviction")
        async with QueueService(settings=settings) as service:
            memory = await service.get_memory()
            assert memory is not None and memory.policy == "allkeys-lru"
            with pytest.raises(ConfigurationError, match="maxmemory-policy allkeys-lru"):
                await service.check_memory_policy()

        for i, node in enumerate(cluster.nodes):  # every node evicts but the owner
            with admin(node.port) as client:
                client.config_set("maxmemory-policy", "noeviction" if i == owner else "allkeys-lru")
        async with QueueService(settings=settings) as service:
            await service.check_memory_policy()
            memory = await service.get_memory()
            assert memory is not None and memory.policy == "noeviction"
    finally:
        for node in cluster.nodes:
            with admin(node.port) as client:
                client.config_set("maxmemory-policy", "noeviction")
