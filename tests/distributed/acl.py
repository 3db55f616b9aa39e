"""The least-privilege ACL rule of a qworker user, as the README gives it.

Every command qworker sends, and every command its Lua scripts call (ACL checks those too), on
the keys of one namespace only. A cluster client also reads the slot map and the command table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis

from tests.distributed.servers import admin
from tests.redis_server import RedisServer

QWORKER_COMMANDS = (
    # connection, the eviction check, scripts, the heartbeat's transaction, a durable WAIT
    *("ping", "info", "evalsha", "script|load", "multi", "exec", "wait"),
    # the queue itself: lists, hashes, sorted sets, strings, keys
    *("blpop", "rpop", "lpush", "rpush", "llen", "lrange", "ltrim"),
    *("hget", "hmget", "hset", "hsetnx", "hdel", "hincrby", "hgetall", "hkeys", "hexists"),
    "incrby",
    *("zadd", "zrem", "zcard", "zcount", "zrange", "zrangebyscore", "zrevrange", "zscore"),
    *("zremrangebyscore", "zremrangebyrank"),
    # sets: a flow's dependents, the running jobs asked to cancel (and which of them a worker
    # holds); a queued job canceled, and its place in its list (job show)
    *("sadd", "srem", "smembers", "smismember", "lrem", "lpos"),
    *("get", "set", "del", "unlink", "exists", "type", "pexpire"),
    # a month's X spend expires at a set time; a flow keeps results its dependents still read
    *("pexpireat", "persist", "pttl"),
    "scan",
    # the scripts' clock: leases, rate limits and due times follow Redis's TIME
    "time",
)
CLUSTER_COMMANDS = ("cluster|slots", "command", "asking")


def acl_rule(namespace: str, *, cluster: bool = False) -> list[str]:
    """The rules of ``ACL SETUSER <name> on ><password> ...`` for a qworker user."""
    commands = [*QWORKER_COMMANDS, *(CLUSTER_COMMANDS if cluster else ())]
    return [
        "resetkeys",
        f"~{namespace}:jobs_*",
        "resetchannels",
        "-@all",
        *(f"+{command}" for command in commands),
    ]


def create_user(
    client: redis.Redis, name: str, password: str, namespace: str, *, cluster: bool = False
) -> None:
    client.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", name, "reset", "on", f">{password}", *acl_rule(namespace, cluster=cluster)
    )


def denials(client: redis.Redis) -> list[str]:
    """What ACL LOG recorded as refused (one line each), oldest first."""
    entries = client.execute_command("ACL", "LOG")  # type: ignore[no-untyped-call]
    lines = []
    for entry in reversed(entries):
        fields = (
            dict(zip(entry[::2], entry[1::2], strict=True)) if isinstance(entry, list) else entry
        )
        lines.append(f"{fields['username']}: {fields['reason']} {fields['object']}")
    return lines


@contextlib.contextmanager
def restricted_user_url(server: RedisServer, namespace: str, name: str) -> Iterator[str]:
    """The server's URL logging in as ``name``, a user with the README's least-privilege rule
    (ACL LOG emptied first, so ``denials`` shows only what this user was refused)."""
    with admin(server.port) as client:
        client.execute_command("ACL", "LOG", "RESET")  # type: ignore[no-untyped-call]
        create_user(client, name, "pw", namespace)
    yield server.url.replace("redis://", f"redis://{name}:pw@")
    with admin(server.port) as client:
        client.execute_command("ACL", "DELUSER", name)  # type: ignore[no-untyped-call]
