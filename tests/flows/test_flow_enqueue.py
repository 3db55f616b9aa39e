"""A flow is stored whole or not at all: 10,000 jobs in one script call, and nothing of it
when the connection to Redis dies while the call is on its way."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qworker.config import Settings
from qworker.errors import QworkerError
from qworker.flows import Step, chain, group
from qworker.service import QueueService
from tests.flows.jobtypes import step
from tests.redis_server import RedisServer

FLOW_SIZE = 10_000


async def evalsha_calls(service: QueueService) -> int:
    stats = await service.redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_ten_thousand_jobs_are_enqueued_in_one_script_call(
    service: QueueService, log: Path
) -> None:
    members = [step(log, f"m{i}") for i in range(FLOW_SIZE - 1)]
    flow = group(*members).then(step(log, "last"))
    await service.add_job(step(log, "warm"))  # loads the scripts: not part of what is counted
    before = await evalsha_calls(service)

    ids = await service.add_flow(flow)

    assert await evalsha_calls(service) - before == 1
    assert len(ids) == FLOW_SIZE == len(set(ids))
    assert (await service.get_queue_stats()).total_jobs == FLOW_SIZE  # + warm - last
    last = await service.get_job(ids[-1])
    assert last is not None and last.state == "waiting"
    assert await service.redis.hget(service.keys.job(ids[-1]), "deps_left") == str(FLOW_SIZE - 1)


def test_composition_has_no_cycle_and_keeps_order(log: Path) -> None:
    a, b, c, d = (Step(step(log, name)) for name in "abcd")
    flow = chain(a, group(b, c), d)
    assert [node.after for node in flow.nodes] == [(), (0,), (0,), (1, 2)]
    assert flow.sinks == (3,)
    assert all(i < n for n, node in enumerate(flow.nodes) for i in node.after)


class CuttingProxy:
    """A TCP proxy that forwards each client's first ``cut_after`` bytes to Redis, then drops
    both sides: Redis dying while a command is half on its way."""

    def __init__(self, target_port: int, cut_after: int) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        redis_r, redis_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        back = asyncio.ensure_future(self._pipe(redis_r, client_w, None))
        await self._pipe(client_r, redis_w, self.cut_after)
        back.cancel()
        for writer in (client_w, redis_w):
            writer.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, budget: int | None
    ) -> None:
        sent = 0
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if budget is not None and sent + len(data) > budget:
                    writer.write(data[: budget - sent])
                    await writer.drain()
                    return
                sent += len(data)
                writer.write(data)
                await writer.drain()


@pytest.fixture
async def proxy(redis_server: RedisServer) -> AsyncIterator[int]:
    cutter = CuttingProxy(redis_server.port, cut_after=400_000)
    port = await cutter.start()
    yield port
    assert cutter.server is not None
    cutter.server.close()


async def test_nothing_of_a_flow_is_queued_when_the_connection_dies_midway(
    proxy: int, redis_server: RedisServer, namespace: str, log: Path
) -> None:
    through_proxy = Settings(  # type: ignore[call-arg]
        redis_url=f"redis://127.0.0.1:{proxy}/0", namespace=namespace, _env_file=None
    )
    flow = chain(*(step(log, f"s{i}") for i in range(FLOW_SIZE)))
    async with QueueService(settings=through_proxy) as service:
        small = await service.add_flow(chain(step(log, "a"), step(log, "b")))  # the proxy works
        with pytest.raises((QworkerError, ConnectionError, OSError)):
            await service.add_flow(flow)
    direct = Settings(redis_url=redis_server.url, namespace=namespace, _env_file=None)  # type: ignore[call-arg]
    async with QueueService(settings=direct) as service:
        assert (await service.get_queue_stats()).total_jobs == 1
        jobs = [key async for key in service.redis.scan_iter(match=f"{namespace}:jobs_data:*")]
        assert sorted(jobs) == sorted(service.keys.job(job_id) for job_id in small)
