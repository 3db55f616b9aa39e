"""A Redis that evicts keys when full loses jobs without a trace: QueueService refuses one
before its first enqueue (once per service), unless the operator accepts the risk, and reports
memory use. On real redis-servers started with ``--maxmemory-policy allkeys-lru``."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from qworker.config import Settings
from qworker.connection import async_client
from qworker.errors import ConfigurationError
from qworker.models import RedisMemory
from qworker.service import QueueService
from tests.redis_server import RedisServer
from tests.service.jobtypes import EchoParams

README = Path(__file__).resolve().parents[2] / "README.md"
MAXMEMORY = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def evicting_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    args = ["--maxmemory", str(MAXMEMORY), "--maxmemory-policy", "allkeys-lru"]
    with RedisServer(tmp_path_factory.mktemp("redis-lru"), extra_args=args) as server:
        yield server


@pytest.fixture
async def evicting_admin(evicting_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = async_client(evicting_server.url)
    yield client
    await client.aclose()


def settings_for(url: str, namespace: str, **values: object) -> Settings:
    return Settings(redis_url=url, namespace=namespace, _env_file=None, **values)  # type: ignore[call-arg]


async def info_calls(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_info", {}).get("calls", 0))


async def test_an_evicting_redis_is_refused_before_anything_is_queued(
    evicting_server: RedisServer, evicting_admin: aioredis.Redis, namespace: str
) -> None:
    async with QueueService(settings=settings_for(evicting_server.url, namespace)) as service:
        with pytest.raises(ConfigurationError) as one:
            await service.add_job(EchoParams(text="hi"))
        with pytest.raises(ConfigurationError):
            await service.add_jobs([EchoParams(text="a"), EchoParams(text="b")])
        with pytest.raises(ConfigurationError):
            await service.check_memory_policy()
    message = str(one.value)
    assert "\n" not in message
    assert message.startswith(f"Redis at {evicting_server.url} may evict keys when it is full")
    assert "(maxmemory-policy allkeys-lru, maxmemory 64.0 MB)" in message
    assert "CONFIG SET maxmemory-policy noeviction" in message
    assert "maxmemory-policy noeviction in redis.conf" in message
    assert "QWORKER_ALLOW_EVICTION=true" in message
    assert await evicting_admin.keys(f"{namespace}:*") == []


async def test_allowing_eviction_warns_once_and_checks_once(
    evicting_server: RedisServer,
    evicting_admin: aioredis.Redis,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_for(evicting_server.url, namespace, allow_eviction=True)
    before = await info_calls(evicting_admin)
    with caplog.at_level(logging.WARNING, logger="qworker"):
        async with QueueService(settings=settings) as service:
            for n in range(5):
                await service.add_job(EchoParams(text=str(n)))
            await service.add_jobs([EchoParams(text="a"), EchoParams(text="b")])
            await service.check_memory_policy()
            assert (await service.get_queue_stats()).total_jobs == 7
    # One INFO for the service, one for the count just taken: not one per job.
    assert await info_calls(evicting_admin) - before == 2
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "maxmemory-policy allkeys-lru" in warnings[0]
    assert "going on as QWORKER_ALLOW_EVICTION allows" in warnings[0]


async def test_noeviction_passes_quietly(
    settings: Settings, caplog: pytest.LogCaptureFixture, redis_server: RedisServer
) -> None:
    with caplog.at_level(logging.WARNING, logger="qworker"):
        async with QueueService(settings=settings) as service:
            await service.add_job(EchoParams(text="hi"))
            memory = await service.get_memory()
    assert caplog.records == []
    assert memory is not None and memory.policy == "noeviction" and not memory.evicts
    assert memory.max_bytes == 0 and memory.used_bytes > 0


async def test_memory_is_reported_against_maxmemory(
    evicting_server: RedisServer, namespace: str
) -> None:
    async with QueueService(settings=settings_for(evicting_server.url, namespace)) as service:
        memory = await service.get_memory()
    assert isinstance(memory, RedisMemory)
    assert (memory.policy, memory.max_bytes, memory.evicts) == ("allkeys-lru", MAXMEMORY, True)
    assert 0 < memory.used_bytes < MAXMEMORY


def readme_acl_rule() -> list[str]:
    """The rules of the README's ``ACL SETUSER qworker on >CHANGE-ME ...`` line."""
    match = re.search(r"^ACL SETUSER qworker on >CHANGE-ME (.+)$", README.read_text(), re.M)
    assert match, "the README's least-privilege ACL line is missing"
    return match.group(1).split()


@pytest.fixture
def acl_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path) as server:
        yield server


async def test_the_readme_acl_user_may_check_and_one_without_info_is_told(
    acl_server: RedisServer,
) -> None:
    rule = readme_acl_rule()
    admin = async_client(acl_server.url)
    await admin.execute_command("ACL", "SETUSER", "qworker", "on", ">pw", *rule)
    without_info = [part for part in rule if part != "+info"]
    await admin.execute_command("ACL", "SETUSER", "blind", "on", ">pw", *without_info)
    url = f"redis://{{user}}:pw@127.0.0.1:{acl_server.port}/0"
    try:
        readme_user = settings_for(url.format(user="qworker"), "{qw}")
        async with QueueService(settings=readme_user) as service:
            await service.add_job(EchoParams(text="allowed"))
            assert (await service.get_memory()) is not None
        blind_user = settings_for(url.format(user="blind"), "{qw}")
        async with QueueService(settings=blind_user) as service:
            with pytest.raises(ConfigurationError, match=r"add \+info to the user's ACL rule"):
                await service.add_job(EchoParams(text="refused"))
            assert await service.get_memory() is None  # stats say "unknown", not fail
        assert await admin.llen("{qw}:jobs_priority_3") == 1
    finally:
        await admin.aclose()
