"""QueueService fixtures: a service on the session's real redis-server in a fresh namespace,
on a clock the test moves, and a plain client to look at what it wrote."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

import tests.service.jobtypes  # noqa: F401  (registers the job types)
from qworker.clock import ManualClock
from qworker.config import Settings
from qworker.connection import async_client
from qworker.service import QueueService


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(redis_url: str, namespace: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        redis_url=redis_url, namespace=namespace, max_payload_bytes=200, _env_file=None
    )


@pytest.fixture
async def service(settings: Settings, clock: ManualClock) -> AsyncIterator[QueueService]:
    async with QueueService(settings=settings, clock=clock) as service:
        yield service


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = async_client(redis_url)
    yield client
    await client.aclose()
