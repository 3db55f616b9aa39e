"""Whether Redis may evict qworker's keys, read from ``INFO memory``.

A job lives in Redis only: a Redis that deletes keys when it is full (any ``maxmemory-policy``
but ``noeviction``) loses acknowledged jobs without a trace, or leaves ids whose hash is gone.
``INFO`` is read rather than ``CONFIG GET`` because managed services and least-privilege ACL
users allow the one and not the other.
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from qworker.connection import is_cluster
from qworker.keys import QueueKeys
from qworker.models import RedisMemory

ACCEPT = "or accept the risk with QWORKER_ALLOW_EVICTION=true or --allow-eviction"
SET_NOEVICTION = (
    "run CONFIG SET maxmemory-policy noeviction and set maxmemory-policy noeviction in "
    f"redis.conf ({ACCEPT})"
)
ALLOW_INFO = f"add +info to the user's ACL rule ({ACCEPT})"


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


def memory_from_info(info: dict[str, Any]) -> RedisMemory | None:
    """The reply of ``INFO memory`` as parsed by redis-py, or None when it names no policy
    (a server or proxy that does not report one)."""
    policy = info.get("maxmemory_policy")
    if not policy:
        return None
    return RedisMemory(
        used_bytes=int(info.get("used_memory") or 0),
        max_bytes=int(info.get("maxmemory") or 0),
        policy=str(policy),
    )


def eviction_problem(memory: RedisMemory) -> str | None:
    """What is wrong with ``memory`` for a queue, as the middle of one line; None if nothing."""
    if not memory.evicts:
        return None
    limit = (
        f"maxmemory {format_bytes(memory.max_bytes)}" if memory.max_bytes else "no maxmemory yet"
    )
    return (
        f"may evict keys when it is full (maxmemory-policy {memory.policy}, {limit}), "
        "and an evicted job is lost without a trace"
    )


def format_bytes(count: int) -> str:
    """``512 B``, ``1.5 MB``, ``2.0 GB`` (powers of 1024, as redis.conf reads ``mb``/``gb``)."""
    if count < 1024:
        return f"{count} B"
    size = count / 1024
    for unit in ("KB", "MB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
