"""Shared fixtures: a real throwaway redis-server per session (or per test), and fakeredis."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from uuid import uuid4

import fakeredis
import hypothesis  # noqa: F401  (see below)
import pytest
from fakeredis.aioredis import FakeRedis

from tests.redis_server import RedisServer

# hypothesis is imported before anything imports trio (selenium does): imported after it, as
# pytest's summary does at the session's end, trio's random hook makes hypothesis warn, and
# filterwarnings=error fails a run of only those tests.


@pytest.fixture(autouse=True)
def _qworker_logger_as_found() -> Iterator[None]:
    """A command run in-process (``qworker work`` through Typer's runner) points qworker's
    logger at that run's stderr, which is closed once it returns: every test leaves the logger
    as it found it, or a later test's worker would log into a closed stream."""
    logger = logging.getLogger("qworker")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    handlers, level, propagate = saved
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the whole session; tests isolate themselves by namespace."""
    with RedisServer(tmp_path_factory.mktemp("redis-session")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def namespace() -> str:
    """A key prefix no other test uses, so nothing ever needs flushing."""
    return f"t{uuid4().hex[:12]}"


@pytest.fixture
def fresh_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server with AOF (fsync always), for tests that kill or restart Redis."""
    with RedisServer(tmp_path_factory.mktemp("redis-fresh"), appendonly=True) as server:
        yield server


@pytest.fixture
def fake_redis() -> FakeRedis:
    """In-memory async Redis with Lua; its own FakeServer so no state leaks between tests."""
    return FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
