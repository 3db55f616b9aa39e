"""Whether Redis may evict qworker's keys, read from ``INFO memory``.

A job lives in Redis only: a Redis that deletes keys when it is full (any ``maxmemory-policy``
but ``noeviction``) loses acknowledged jobs without a trace, or leaves ids whose hash is gone.
``INFO`` is read rather than ``CONFIG GET`` because managed services and least-privilege ACL
users allow the one and not the other.
"""

from __future__ import annotations

from typing import NamedTuple, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from qworker.connection import is_cluster
from qworker.eviction import eviction_problem, format_bytes, memory_from_info
from qworker.keys import QueueKeys
from qworker.models import RedisMemory

ACCEPT = "or accept the risk with QWORKER_ALLOW_EVICTION=true or --allow-eviction"
SET_NOEVICTION = (
    "run CONFIG SET maxmemory-policy noeviction and set maxmemory-policy noeviction in "
    f"redis.conf ({ACCEPT})"
)
ALLOW_INFO = f"add +info to the user's ACL rule ({ACCEPT})"


# The pure part lives in eviction.py (the fast enqueue path decides there without redis-py);
# its names stay importable from here.
__all__ = [
    "ACCEPT",
    "ALLOW_INFO",
    "SET_NOEVICTION",
    "Risk",
    "eviction_problem",
    "eviction_risk",
    "format_bytes",
    "memory_from_info",
    "read_memory",
]


class Risk(NamedTuple):
    """Why jobs could be evicted (the middle of one line) and how to fix it."""

    problem: str
    fix: str


async def read_memory(client: aioredis.Redis, keys: QueueKeys) -> RedisMemory | None:
    """``INFO memory`` of the server holding ``keys``; None when it reports no policy."""
    if is_cluster(client):
        # The node that holds the namespace's slot (every key of a namespace is in one).
        cluster = cast(aioredis.RedisCluster, client)
        await cluster.initialize()
        node = cluster.get_node_from_key(keys.stats)
        info = await cluster.info("memory", target_nodes=node)
    else:
        info = await client.info("memory")
    return memory_from_info(info)


async def eviction_risk(client: aioredis.Redis, keys: QueueKeys) -> Risk | None:
    """Why jobs could be evicted, and the fix; None if they cannot be."""
    try:
        memory = await read_memory(client, keys)
    except ResponseError as exc:
        if "unknown command" in str(exc).lower():
            return None  # no INFO at all: an embedded server, which never evicts
        problem = (
            f"does not let this user run INFO ({exc}), so qworker cannot check that it never "
            "evicts jobs"
        )
        return Risk(problem, ALLOW_INFO)
    evicts = None if memory is None else eviction_problem(memory)
    return None if evicts is None else Risk(evicts, SET_NOEVICTION)
