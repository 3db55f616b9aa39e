"""ScriptLane: one connection a producer keeps for its one-at-a-time script calls.

An enqueue is one EVALSHA, and through redis-py's asyncio client each call also pays a pool
checkout and release, a task for the write timeout, a timeout context for the read, the retry
wrapper and the pure-Python packing of every argument: more than the round trip and Redis's own
work together. A lane writes the command packed by hiredis straight to a connection it keeps and
reads the reply with that connection's own parser, under one timeout: the same bytes on the wire
and the same replies and errors, for about half the client's time.

A lane serves one call at a time. While it is busy (a second coroutine enqueues concurrently),
or where it does not apply (a cluster, Sentinel, a custom pool or connection class, redis-py
without hiredis or with other internals), the call goes the ordinary way through the client, so
nothing depends on the lane being there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection

_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _pack
except ImportError:  # redis-py without hiredis: no lane
    _pack = None

# Connection classes whose reads and writes the lane may take over: redis-py's own plain ones
# (a Sentinel-managed connection turns READONLY into a reconnect inside its read_response).
_PLAIN_CONNECTIONS = (Connection, UnixDomainSocketConnection)
# The lane keeps one of the pool's connections for good (as SyncQueueService does): only in a
# pool of redis-py's default size or more. A pool capped lower (a client made with
# ``max_connections=1``, say) is sized by its owner for its own commands, which would fail with
# "Too many connections" while the idle lane held one.
POOL_SIZE_FOR_A_KEPT_CONNECTION = 100


def _usable(conn: Any) -> bool:
    """Whether the kept connection can take a command: still open, and not closed by Redis
    while the lane was idle (a restart, or its ``timeout`` for idle clients). redis-py's pool
    makes the same check before it hands out a connection, and connects again."""
    writer, reader = conn._writer, conn._reader
    if writer is None or reader is None or writer.is_closing():
        return False
    return not reader.at_eof() and reader.exception() is None


class ScriptLane:
    """Runs script commands (``EVALSHA ...``) on a kept connection of ``client``'s pool, or
    through ``client`` when the lane is busy or does not apply."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        pool = getattr(client, "connection_pool", None)
        usable = (
            _pack is not None
            and type(pool) is aioredis.ConnectionPool
            and pool.connection_class in _PLAIN_CONNECTIONS
            and pool.max_connections >= POOL_SIZE_FOR_A_KEPT_CONNECTION
        )
        self._pool: aioredis.ConnectionPool | None = pool if usable else None
        self._conn: Any = None
        self._busy = False
        # The read timeout, without a timer per call: the call in flight (its task, its
        # deadline) and one timer that looks at it, re-armed while calls keep coming and left
        # to lapse when they stop.
        self._waiter: asyncio.Task[Any] | None = None
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timed_out = False

    async def execute(self, command: tuple[Any, ...]) -> Any:
        """Send ``command`` and return its reply, or raise its error reply, as the client's
        ``execute_command`` would."""
        if self._pool is None or self._busy:
            return await self._client.execute_command(*command)  # type: ignore[no-untyped-call]
        self._busy = True
        try:
            conn = self._conn
            if conn is None or not _usable(conn):
                conn = await self._connect()
                if conn is None:
                    return await self._client.execute_command(*command)  # type: ignore[no-untyped-call]
            try:
                conn._writer.write(_pack(command))  # type: ignore[misc]
                self._watch(conn.socket_timeout)
                reply = await conn._parser.read_response()
            except BaseException as exc:
                timed_out = self._took_timeout(exc)
                self._waiter = None  # nothing of this call is in flight any more
                # A reply may still be on its way: the connection's state is unknown.
                await self._drop()
                if timed_out:
                    raise redis.TimeoutError("Timeout reading from socket") from None
                if isinstance(exc, OSError):
                    raise redis.ConnectionError(f"Error while reading from Redis: {exc}") from exc
                raise
        finally:
            self._busy = False
            self._waiter = None
        if isinstance(reply, redis.ResponseError):
            raise reply
        return reply

    def _watch(self, timeout_s: float | None) -> None:
        """Give the call in flight until ``timeout_s`` from now to be answered."""
        if timeout_s is None:
            return
        task = asyncio.current_task()
        assert task is not None
        loop = task.get_loop()
        self._waiter, self._deadline = task, loop.time() + timeout_s
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._expire)

    def _expire(self) -> None:
        """The timer: cancel the call in flight if its deadline has passed, else look again at
        its deadline; with no call in flight, stop."""
        self._timer = None
        waiter = self._waiter
        if waiter is None:
            return
        loop = waiter.get_loop()
        if loop.time() >= self._deadline:
            self._timed_out = True
            waiter.cancel()
        else:
            self._timer = loop.call_at(self._deadline, self._expire)

    def _took_timeout(self, exc: BaseException) -> bool:
        """Whether ``exc`` is this lane's timeout (the cancel _expire sent), and no other cancel
        is pending on the task (then it stays a cancel, as asyncio.timeout does)."""
        if not self._timed_out:
            return False
        self._timed_out = False
        task = self._waiter
        return isinstance(exc, asyncio.CancelledError) and task is not None and task.uncancel() == 0

    async def _connect(self) -> Any:
        """A connection of the pool, connected by redis-py (AUTH, SELECT and the rest), or None
        when its internals are not those the lane knows (then the lane is off for good)."""
        assert self._pool is not None
        await self._drop()
        conn = await self._pool.get_connection()  # type: ignore[no-untyped-call]
        if getattr(conn, "_writer", None) is None or getattr(conn, "_parser", None) is None:
            await self._pool.release(conn)
            self._pool = None
            return None
        self._conn = conn
        return conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self._pool is not None:
            await conn.disconnect(nowait=True)
            await self._pool.release(conn)

    async def close(self) -> None:
        """Give the kept connection back to the pool."""
        conn, self._conn = self._conn, None
        if conn is not None and self._pool is not None:
            if self._busy:  # a call still waits for its reply there: no other command may
                await conn.disconnect(nowait=True)  # read it (that call gets a lost connection)
            await self._pool.release(conn)
