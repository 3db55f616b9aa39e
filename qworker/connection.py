"""Redis clients from settings, and the runner that executes script calls.

Clients are made with redis-py's own retries turned off: a command that may have run must not
be sent twice behind our back (a retried claim or enqueue would double a job). The worker and the
CLI decide what to retry, knowing which steps are safe to repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import redis
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError
from redis.retry import Retry

from qworker.config import mask_url
from qworker.errors import RedisUnavailable
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


def async_client(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=SOCKET_CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
    )


def sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=SOCKET_CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
    )


def unavailable(url: str, exc: BaseException) -> RedisUnavailable:
    reason = str(exc).strip() or type(exc).__name__
    return RedisUnavailable(f"cannot reach Redis at {mask_url(url)}: {reason}")


class ScriptRunner:
    """Runs ScriptCalls by EVALSHA, loading the scripts once when Redis does not know them
    (first use, or after a restart emptied its script cache)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def load_all(self) -> None:
        pipe = self.client.pipeline(transaction=False)
        for name in SCRIPT_NAMES:
            pipe.script_load(load_script(name).source)
        await pipe.execute()

    async def run(self, call: ScriptCall[T]) -> T:
        try:
            reply = await self.client.execute_command(*call.command())  # type: ignore[no-untyped-call]
        except NoScriptError:
            await self.load_all()
            reply = await self.client.execute_command(*call.command())  # type: ignore[no-untyped-call]
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
        if not calls:
            return []
        replies = await self._pipeline(calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await self.load_all()
            again = await self._pipeline([calls[i] for i in missing])
            for index, reply in zip(missing, again, strict=True):
                replies[index] = reply
        return [
            reply if isinstance(reply, Exception) else call.parse(reply)
            for call, reply in zip(calls, replies, strict=True)
        ]

    async def _pipeline(self, calls: Sequence[ScriptCall[Any]]) -> list[Any]:
        pipe: AsyncPipeline = self.client.pipeline(transaction=False)
        for call in calls:
            pipe.execute_command(*call.command())
        return list(await pipe.execute(raise_on_error=False))


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
