"""SyncQueueService: QueueService for producers that are not asyncio (Django and Flask views,
scripts, cron jobs), on redis-py's synchronous client.

There is no second copy of the logic: each method runs QueueService's own coroutine (the same
validation, packing, Lua scripts and models) over a synchronous client wrapped so that every
``await`` on Redis is already complete when it is reached. Such a coroutine never suspends, so
one ``send`` runs it to its end, without an event loop: the cost of a call is the round trip
and redis-py's synchronous client, not an event loop's scheduling.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from typing import Any, Concatenate, ParamSpec, TypeVar

import redis

from qworker.clock import SYSTEM_CLOCK, Clock
from qworker.config import Settings
from qworker.connection import ScriptRunner, sync_client
from qworker.script_lane import POOL_SIZE_FOR_A_KEPT_CONNECTION
from qworker.service import QueueService

_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _pack
except ImportError:  # redis-py without hiredis: every command takes redis-py's own path
    _pack = None

P = ParamSpec("P")
R = TypeVar("R")


class Ready:
    """An awaitable whose value is already there: awaiting it never suspends."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, Any]:
        return self.value
        yield  # a generator that returns at once


def run_ready(coroutine: Coroutine[Any, Any, R]) -> R:
    """Run a coroutine that awaits only Ready values (and coroutines that do), to its end."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a synchronous call awaited something that was not ready")


async def _ready_iter(items: Iterator[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


def _stale(conn: Any) -> bool:
    """Whether Redis closed the kept connection while it was idle (its ``timeout`` for idle
    clients, a restart), or left something unread on it: then it is replaced before the call,
    as redis-py's pool replaces a connection before handing it out (one poll of the socket)."""
    try:
        return bool(conn.can_read(timeout=0))
    except (redis.ConnectionError, OSError):
        return True


class ReadyPipeline:
    """A synchronous pipeline that answers like an asyncio one: ``await pipe.execute()``."""

    def __init__(self, pipe: Any) -> None:
        self._pipe = pipe

    def execute(self, *args: Any, **kwargs: Any) -> Ready:
        return Ready(self._pipe.execute(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        # Queuing a command returns the pipeline itself, in both flavours of redis-py.
        return getattr(self._pipe, name)


class ReadyClient:
    """A synchronous client that answers like an asyncio one: each command runs when called
    and returns a Ready value; pipelines and scans follow the asyncio client's shapes.

    A script call (EVALSHA, what every enqueue is) goes the short way: packed by hiredis and
    sent on a connection this client keeps, which saves a pool checkout, redis-py's argument
    encoding and its retry wrapper on every call (about half of a call's client time)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        pool = getattr(client, "connection_pool", None)
        # Not on a cluster client (its commands go to the slot's node), a custom pool, or a pool
        # its owner capped for its own commands (see script_lane.py).
        usable = (
            isinstance(pool, redis.ConnectionPool)
            and pool.max_connections >= POOL_SIZE_FOR_A_KEPT_CONNECTION
            and _pack is not None
        )
        self._pool = pool if usable else None
        self._conn: Any = None

    def execute_command(self, *args: Any, **options: Any) -> Ready:
        pack = _pack
        if self._pool is None or pack is None or options or args[0] != "EVALSHA":
            return Ready(self.client.execute_command(*args, **options))  # type: ignore[no-untyped-call]
        conn = self._conn
        if conn is not None and _stale(conn):
            self.release()
            conn.disconnect()
            conn = None
        if conn is None:
            conn = self._conn = self._pool.get_connection()
        try:
            conn.send_packed_command([pack(args)], check_health=False)
            return Ready(conn.read_response())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            # As redis-py does: a connection in doubt is dropped; the next call gets another.
            self.release()
            conn.disconnect()
            raise

    def release(self) -> None:
        """Give the kept connection back to the pool."""
        conn, self._conn = self._conn, None
        if conn is not None and self._pool is not None:
            self._pool.release(conn)

    def pipeline(self, *args: Any, **kwargs: Any) -> ReadyPipeline:
        return ReadyPipeline(self.client.pipeline(*args, **kwargs))

    def scan_iter(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        return _ready_iter(self.client.scan_iter(*args, **kwargs))

    def aclose(self) -> Ready:
        self.release()
        self.client.close()
        return Ready(None)

    def __getattr__(self, name: str) -> Any:
        command = getattr(self.client, name)
        if not callable(command):
            return command

        def call(*args: Any, **kwargs: Any) -> Ready:
            return Ready(command(*args, **kwargs))

        return call


def _sync(
    method: Callable[Concatenate[QueueService, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[SyncQueueService, P], R]:
    """QueueService's method, run to its end on the synchronous client."""

    def call(self: SyncQueueService, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return run_ready(method(self.service, *args, **kwargs))

    call.__name__ = method.__name__
    call.__qualname__ = f"SyncQueueService.{method.__name__}"
    call.__doc__ = method.__doc__
    return call


class SyncQueueService:
    """Synchronous access to one qworker namespace: the methods of QueueService for producing
    and inspecting, with the same arguments, results and errors, without ``await``.

    ``SyncQueueService("redis://host:6379/0")`` or ``SyncQueueService(settings=Settings())``;
    pass an existing ``redis.Redis`` (made with ``decode_responses=True``) to share a client.
    One instance may be used from one thread at a time (make one per thread, as with a
    database connection)."""

    def __init__(
        self,
        redis_url_or_client: str | redis.Redis | None = None,
        *,
        settings: Settings | None = None,
        namespace: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        given = redis_url_or_client if isinstance(redis_url_or_client, redis.Redis) else None
        url = redis_url_or_client if isinstance(redis_url_or_client, str) else None
        # QueueService makes an asyncio client that never connects; it is replaced here.
        service = QueueService(url, settings=settings, namespace=namespace, clock=clock)
        if given is not None:
            client = given
            service.redis_url = "<client>"
        else:
            client = sync_client(service.connection_settings, namespace=service.keys.namespace)
        self._ready = ReadyClient(client)
        ready: Any = self._ready
        service.redis = ready
        service.runner = ScriptRunner(ready)
        self.service = service
        self.redis = client
        self.settings = service.settings
        self.keys = service.keys
        self.scripts = service.scripts

    def close(self) -> None:
        self._ready.release()
        self.redis.close()

    def __enter__(self) -> SyncQueueService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Producing.
    add_job = _sync(QueueService.add_job)
    enqueue_job = _sync(QueueService.enqueue_job)
    add_jobs = _sync(QueueService.add_jobs)
    # Inspecting.
    get_queue_stats = _sync(QueueService.get_queue_stats)
    get_job = _sync(QueueService.get_job)
    resolve_job_id = _sync(QueueService.resolve_job_id)
    find_job = _sync(QueueService.find_job)
    list_jobs = _sync(QueueService.list_jobs)
    list_dead = _sync(QueueService.list_dead)
    get_dead = _sync(QueueService.get_dead)
    list_workers = _sync(QueueService.list_workers)
    list_pauses = _sync(QueueService.list_pauses)
    get_rate_limit_stats = _sync(QueueService.get_rate_limit_stats)
    get_memory = _sync(QueueService.get_memory)
    wait_for_job = _sync(QueueService.wait_for_job)
    ping = _sync(QueueService.ping)
    check_memory_policy = _sync(QueueService.check_memory_policy)
    # Operating.
    cancel_job = _sync(QueueService.cancel_job)
    run_job_now = _sync(QueueService.run_job_now)
    requeue_dead = _sync(QueueService.requeue_dead)
    delete_dead = _sync(QueueService.delete_dead)
    retry_drain = _sync(QueueService.retry_drain)
    clear_queue = _sync(QueueService.clear_queue)
    trim_dead_letter = _sync(QueueService.trim_dead_letter)
    pause = _sync(QueueService.pause)
    resume = _sync(QueueService.resume)
