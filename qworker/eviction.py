"""Whether a Redis may evict jobs, decided from what ``INFO memory`` says: pure, no client.

The service (``memory.py``, through redis-py) and the command line's fast enqueue (through
``resp.py``) read ``INFO memory`` their own way and decide here, so they refuse the same servers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qworker.models import RedisMemory

# The one maxmemory-policy that keeps every key: a full Redis then refuses writes instead.
NO_EVICTION = "noeviction"


def memory_from_info(info: dict[str, Any]) -> RedisMemory | None:
    """The reply of ``INFO memory`` as parsed by redis-py, or None when it names no policy
    (a server or proxy that does not report one)."""
    from qworker.models import RedisMemory  # pydantic models: only for those who show them

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
    return policy_problem(memory.policy, memory.max_bytes)


def info_problem(info: dict[str, Any]) -> str | None:
    """:func:`eviction_problem` straight from ``INFO memory`` (as :func:`parse_info` reads it),
    for a caller that has no use for the model; None also when it names no policy."""
    policy = info.get("maxmemory_policy")
    if not policy:
        return None
    return policy_problem(str(policy), int(info.get("maxmemory") or 0))


def policy_problem(policy: str, max_bytes: int) -> str | None:
    """The decision both of the above share."""
    if policy == NO_EVICTION:
        return None
    limit = f"maxmemory {format_bytes(max_bytes)}" if max_bytes else "no maxmemory yet"
    return (
        f"may evict keys when it is full (maxmemory-policy {policy}, {limit}), "
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


def parse_info(text: str) -> dict[str, str]:
    """The ``name:value`` lines of an ``INFO`` reply, values as text (``info_problem``
    converts the numbers it needs); section headers and blank lines skipped."""
    info: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(":")
            info[name] = value.strip()
    return info
