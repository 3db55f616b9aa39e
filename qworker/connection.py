"""Redis clients from settings, and the runner that executes script calls.

Clients are made with redis-py's own retries turned off: a command that may have run must not
be sent twice behind our back (a retried claim or enqueue would double a job). The worker and the
CLI decide what to retry, knowing which steps are safe to repeat.

One factory for every kind of deployment, chosen by :class:`Settings`:

* one server by URL: ``redis://``, ``rediss://`` (TLS) or ``unix://``;
* Sentinel (``redis_sentinels`` + ``redis_sentinel_master``): every new connection asks the
  sentinels where the master is, so after a failover the next connection reaches the new one.
  A connection still open to a demoted master turns its READONLY reply into a ConnectionError;
  either way the caller sees a connection error, and retrying later finds the new master;
* Redis Cluster (``redis_cluster``): every script touches several keys, so every key of a
  namespace must hash to one slot: the namespace must carry a hash tag such as ``{qw}``.

What the settings describe, and which combinations are refused, is ``deployment.py``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoScriptError
from redis.retry import Retry

from qworker.config import Settings, mask_url
from qworker.deployment import ConnectionSpec, url_db
from qworker.errors import ConfigurationError, RedisUnavailable
from qworker.script_lane import ScriptLane
from qworker.scripts import SCRIPT_NAMES, ScriptCall, load_script

if TYPE_CHECKING:
    from redis.asyncio.client import Pipeline as AsyncPipeline

T = TypeVar("T")

SOCKET_CONNECT_TIMEOUT_S = 5.0
# Longer than any blocking wait the worker issues, so a blocked BLPOP is never cut short.
SOCKET_TIMEOUT_S = 15.0

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    ConnectionError,
    OSError,
)


def _options(spec: ConnectionSpec, *, for_asyncio: bool) -> dict[str, Any]:
    """What every client gets: text replies, timeouts, no retries, and TLS files if any."""
    options: dict[str, Any] = {
        "decode_responses": True,
        # Another program may push bytes that are not UTF-8: they must reach the worker (and
        # the dead-letter queue) as a bad payload, not crash it while decoding the reply.
        "encoding_errors": "replace",
        "socket_connect_timeout": SOCKET_CONNECT_TIMEOUT_S,
        "socket_timeout": SOCKET_TIMEOUT_S,
        # Each client kind takes its own Retry class (redis-py 8 warns at a sync one in asyncio).
        "retry": AsyncRetry(NoBackoff(), 0) if for_asyncio else Retry(NoBackoff(), 0),
    }
    return options | _tls_options(spec)


def _tls_options(spec: ConnectionSpec) -> dict[str, Any]:
    if spec.scheme != "rediss":
        return {}
    options: dict[str, Any] = {}
    for name, path in (
        ("ssl_ca_certs", spec.tls_ca),
        ("ssl_certfile", spec.tls_cert),
        ("ssl_keyfile", spec.tls_key),
    ):
        if path:
            options[name] = path
    return options


def _sentinel_options(
    spec: ConnectionSpec, *, for_asyncio: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(options of the master's connections, options of the sentinels' connections). The URL
    gives only the credentials and the db; with rediss:// the sentinels are reached over TLS
    too, with the same files."""
    parts = urlsplit(spec.url)
    if parts.scheme not in ("redis", "rediss"):
        raise ConfigurationError(
            "with Sentinel the Redis URL must be redis:// or rediss:// (it gives the "
            "credentials and the db; the sentinels give the master's address)"
        )
    tls = parts.scheme == "rediss"
    master = _options(spec, for_asyncio=for_asyncio) | {"db": url_db(spec.url), "ssl": tls}
    if parts.username:
        master["username"] = unquote(parts.username)
    if parts.password:
        master["password"] = unquote(parts.password)
    sentinel = {
        "socket_connect_timeout": SOCKET_CONNECT_TIMEOUT_S,
        "socket_timeout": SOCKET_CONNECT_TIMEOUT_S,
        "ssl": tls,
        **_tls_options(spec),
    }
    if spec.sentinel_password:  # the sentinels' own requirepass (QWORKER_REDIS_SENTINEL_PASSWORD)
        sentinel["password"] = spec.sentinel_password
    return master, sentinel


class _AsyncSentinelMaster(aioredis.Redis):
    """The master of a Sentinel group; closing it closes the connections to the sentinels."""

    sentinel_client: aiosentinel.Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            if self.sentinel_client is not None:
                await self.sentinel_client.aclose()


class _SyncSentinelMaster(redis.Redis):
    sentinel_client: redis.sentinel.Sentinel | None = None

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.sentinel_client is not None:
                self.sentinel_client.close()


def async_client(source: str | Settings, *, namespace: str | None = None) -> aioredis.Redis:
    """A client for the event loop. A bare URL connects to that one server; Settings bring
    Sentinel, Cluster and TLS files. ``namespace`` (default: the settings' own) is checked for
    the hash tag a cluster needs.

    A cluster client is returned typed as ``Redis``: it has the same commands, pipelines and
    ``aclose``, which is all qworker uses, and routes each one by its key's slot."""
    spec = ConnectionSpec.of(source)
    spec.check(_namespace_of(source, namespace))
    if spec.cluster:
        cluster = aioredis.RedisCluster.from_url(spec.url, **_options(spec, for_asyncio=True))
        return cast(aioredis.Redis, cluster)
    if spec.is_sentinel:
        master_options, sentinel_options = _sentinel_options(spec, for_asyncio=True)
        sentinel = aiosentinel.Sentinel(  # type: ignore[no-untyped-call,unused-ignore]
            list(spec.sentinels), sentinel_kwargs=sentinel_options
        )
        client = sentinel.master_for(
            spec.sentinel_master, redis_class=_AsyncSentinelMaster, **master_options
        )
        assert isinstance(client, _AsyncSentinelMaster)
        client.sentinel_client = sentinel
        return client
    return aioredis.Redis.from_url(spec.url, **_options(spec, for_asyncio=True))


def sync_client(source: str | Settings, *, namespace: str | None = None) -> redis.Redis:
    """The same for threads (the heartbeat)."""
    spec = ConnectionSpec.of(source)
    spec.check(_namespace_of(source, namespace))
    if spec.cluster:
        cluster = redis.RedisCluster.from_url(spec.url, **_options(spec, for_asyncio=False))
        return cast(redis.Redis, cluster)
    if spec.is_sentinel:
        master_options, sentinel_options = _sentinel_options(spec, for_asyncio=False)
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call,unused-ignore]
            list(spec.sentinels), sentinel_kwargs=sentinel_options
        )
        client = sentinel.master_for(  # type: ignore[no-untyped-call,unused-ignore]
            spec.sentinel_master, redis_class=_SyncSentinelMaster, **master_options
        )
        assert isinstance(client, _SyncSentinelMaster)
        client.sentinel_client = sentinel
        return client
    return redis.Redis.from_url(spec.url, **_options(spec, for_asyncio=False))


def _namespace_of(source: str | Settings, namespace: str | None) -> str:
    if namespace is not None:
        return namespace
    return "" if isinstance(source, str) else source.namespace


def is_cluster(client: object) -> bool:
    return isinstance(client, aioredis.RedisCluster | redis.RedisCluster)


def unavailable(url: str, exc: BaseException) -> RedisUnavailable:
    reason = str(exc).strip() or type(exc).__name__
    refused = re.match(r"Error (-?\d+) connecting to \S+?\.(?: (.+?)\.?)?$", reason)
    if refused:
        # redis-py says "Error 111 connecting to host:port. Connect call failed (...)": the
        # operator wants the reason in words. The number is an errno only for socket errors;
        # a TLS failure ("Error 1 ... [SSL: CERTIFICATE_VERIFY_FAILED] ...") or a name lookup
        # ("Error -2 ... Name or service not known") says it in the detail.
        number, detail = int(refused.group(1)), refused.group(2) or ""
        if detail and not detail.startswith("Connect call failed"):
            reason = detail
        elif number > 0:
            reason = os.strerror(number)
    if isinstance(exc, aiosentinel.MasterNotFoundError | redis.sentinel.MasterNotFoundError):
        # redis-py appends the repr of every sentinel client it could not reach: too long.
        reason = reason.split(" : ", 1)[0] + (
            " (the sentinels are unreachable, do not know that master, or see it down)"
        )
    if isinstance(exc, AuthenticationError):
        return RedisUnavailable(
            f"Redis at {mask_url(url)} refused the login: {reason} "
            "(check the user name and password in the Redis URL)"
        )
    return RedisUnavailable(f"cannot reach Redis at {mask_url(url)}: {reason}")


class ScriptRunner:
    """Runs ScriptCalls by EVALSHA, loading the scripts once when Redis does not know them
    (first use, or after a restart emptied its script cache)."""

    def __init__(self, client: aioredis.Redis, *, lane: ScriptLane | None = None) -> None:
        self.client = client
        # One call at a time (``run``) may take a lane (script_lane.py); pipelines always go
        # through the client.
        self._execute = lane.execute if lane is not None else self._execute_command

    async def _execute_command(self, command: tuple[Any, ...]) -> Any:
        return await self.client.execute_command(*command)  # type: ignore[no-untyped-call]

    async def load_all(self) -> None:
        # One at a time (a few milliseconds, once per start or Redis restart): all of them in
        # one pipeline would be 300 KB of commands buffered at once, a lasting part of a
        # worker's peak memory. (A cluster client also needs it so: SCRIPT LOAD goes to every
        # primary, a cluster pipeline's commands to one node each.)
        for name in SCRIPT_NAMES:
            await self.client.script_load(load_script(name).source)

    async def run(self, call: ScriptCall[T]) -> T:
        try:
            reply = await self._execute(call.command())
        except NoScriptError:
            await self.load_all()
            reply = await self._execute(call.command())
        return call.parse(reply)

    async def run_many(self, calls: Sequence[ScriptCall[Any]]) -> list[Any]:
        """Run calls in one pipeline (one round trip); the first error is raised."""
        replies = await self.run_each(calls)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def run_each(self, calls: Sequence[ScriptCall[Any]]) -> list[Any]:
        """Run calls in one pipeline; each result is the parsed reply or the error of that call.

        A call refused with NOSCRIPT did not run, so only those are sent again once the scripts
        are loaded. A lost connection raises: then nobody knows which calls ran."""
        replies, _acked = await self._run_each(calls, None)
        return replies

    async def run_durable(
        self, calls: Sequence[ScriptCall[Any]], replicas: int, timeout_ms: int
    ) -> tuple[list[Any], int]:
        """Run calls in one pipeline followed by ``WAIT replicas timeout_ms`` on the same
        connection (WAIT counts the writes of its own connection only). Returns the parsed
        replies (the first error is raised) and how many replicas confirmed every write."""
        if not calls:
            return [], replicas  # nothing written, nothing to confirm
        replies, acked = await self._run_each(calls, ("WAIT", replicas, timeout_ms))
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        assert acked is not None
        return replies, acked

    async def _run_each(
        self, calls: Sequence[ScriptCall[Any]], wait: tuple[str, int, int] | None
    ) -> tuple[list[Any], int | None]:
        if not calls:
            return [], None
        replies, acked = await self._pipeline(calls, wait)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await self.load_all()
            again, acked_again = await self._pipeline([calls[i] for i in missing], wait)
            for index, reply in zip(missing, again, strict=True):
                replies[index] = reply
            if acked is not None and acked_again is not None:
                acked = min(acked, acked_again)
        parsed = [
            reply if isinstance(reply, Exception) else call.parse(reply)
            for call, reply in zip(calls, replies, strict=True)
        ]
        return parsed, acked

    async def block_then_run(self, blocking: tuple[Any, ...], call: ScriptCall[T]) -> T:
        """Send a blocking command and ``call`` in one pipeline: Redis runs the call the moment
        the blocking command returns. The blocking command's own reply is not needed."""
        pipe: AsyncPipeline = self.client.pipeline(transaction=False)
        pipe.execute_command(*blocking)
        pipe.execute_command(*call.command())
        _blocked, reply = await pipe.execute(raise_on_error=False)
        if isinstance(reply, NoScriptError):  # it did not run: load the scripts, run it now
            await self.load_all()
            return await self.run(call)
        if isinstance(reply, Exception):
            raise reply
        # The call ran: its result counts even if the blocking command failed.
        return call.parse(reply)

    async def _pipeline(
        self, calls: Sequence[ScriptCall[Any]], wait: tuple[str, int, int] | None = None
    ) -> tuple[list[Any], int | None]:
        pipe: AsyncPipeline = self.client.pipeline(transaction=False)
        for call in calls:
            pipe.execute_command(*call.command())
        if wait is not None:
            pipe.execute_command(*wait, **await self._node_of(calls[0]))
        replies = list(await pipe.execute(raise_on_error=False))
        if wait is None:
            return replies, None
        acked = replies.pop()
        if isinstance(acked, Exception):
            raise acked
        return replies, int(acked)

    async def _node_of(self, call: ScriptCall[Any]) -> dict[str, Any]:
        """In a cluster, WAIT must go to the node that ran the writes: the owner of the slot
        of the call's keys (every key of a namespace is in one slot)."""
        if not is_cluster(self.client) or not call.keys:
            return {}
        cluster = cast(aioredis.RedisCluster, self.client)
        await cluster.initialize()
        return {"target_nodes": cluster.get_node_from_key(call.keys[0])}


class SyncScriptRunner:
    """The same for the heartbeat thread, which must keep working while the event loop is busy."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def run(self, call: ScriptCall[T]) -> T:
        try:
            reply = self.client.execute_command(*call.command())  # type: ignore[no-untyped-call]
        except NoScriptError:
            self.client.script_load(call.script.source)
            reply = self.client.execute_command(*call.command())  # type: ignore[no-untyped-call]
        return call.parse(reply)
