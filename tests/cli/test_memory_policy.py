"""The CLI on a Redis that evicts keys when full (``--maxmemory-policy allkeys-lru``): enqueue
and work refuse it with one line and exit 2 unless told to accept the risk, and stats shows the
memory against maxmemory and the policy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from tests.cli.conftest import Cli, one_error_line
from tests.redis_server import RedisServer

MAXMEMORY = 32 * 1024 * 1024
FIX = "CONFIG SET maxmemory-policy noeviction"


@pytest.fixture(scope="module")
def evicting_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    args = ["--maxmemory", str(MAXMEMORY), "--maxmemory-policy", "allkeys-lru"]
    with RedisServer(tmp_path_factory.mktemp("redis-lru"), extra_args=args) as server:
        yield server


@pytest.fixture
def lru(evicting_server: RedisServer, namespace: str) -> Cli:
    return Cli(CliRunner(), evicting_server.url, namespace)


def test_enqueue_refuses_an_evicting_redis(lru: Cli) -> None:
    line = one_error_line(lru("enqueue", "tweet", "hi"), 2, "maxmemory-policy allkeys-lru", FIX)
    assert "--allow-eviction" in line and "QWORKER_ALLOW_EVICTION=true" in line
    assert lru.json("stats")["total_jobs"] == 0


@pytest.mark.parametrize(
    ("flag", "env"), [(["--allow-eviction"], {}), ([], {"QWORKER_ALLOW_EVICTION": "true"})]
)
def test_enqueue_goes_on_with_one_warning_when_allowed(
    lru: Cli, flag: list[str], env: dict[str, str]
) -> None:
    result = lru(*flag, "enqueue", "tweet", "hi", env=env)
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.strip()) == 32
    [warning] = result.stderr.strip().splitlines()
    assert warning.startswith("warning: Redis at ") and "allkeys-lru" in warning
    assert lru.json("stats")["total_jobs"] == 1


def test_work_refuses_an_evicting_redis_before_taking_a_job(lru: Cli) -> None:
    assert lru("--allow-eviction", "enqueue", "tweet", "waits").exit_code == 0
    result = lru("work", "--burst", "--dry-run")
    assert result.exit_code == 2, result.stderr
    assert f"error: Redis at {lru.redis_url} may evict keys" in result.stderr
    assert lru.json("stats")["total_jobs"] == 1  # still waiting
    allowed = lru("--allow-eviction", "work", "--burst", "--dry-run")
    assert allowed.exit_code == 0, allowed.stderr
    assert "allkeys-lru" in allowed.stderr and "QWORKER_ALLOW_EVICTION allows" in allowed.stderr
    assert lru.json("stats")["total_processed"] == 1


def test_stats_shows_memory_against_maxmemory_and_the_policy(lru: Cli, cli: Cli) -> None:
    memory = lru.json("stats")["redis_memory"]
    assert (memory["policy"], memory["max_bytes"]) == ("allkeys-lru", MAXMEMORY)
    assert 0 < memory["used_bytes"] < MAXMEMORY
    table = lru("stats", env={"COLUMNS": "150"})
    assert table.exit_code == 0, table.stderr
    assert "Redis memory" in table.stdout and "of 32.0 MB" in table.stdout
    assert "allkeys-lru  evicts keys when full: jobs can be lost" in table.stdout

    default = cli.json("stats")["redis_memory"]  # the session's server: as Redis ships
    assert (default["policy"], default["max_bytes"]) == ("noeviction", 0)
    assert "noeviction" in cli("stats", env={"COLUMNS": "150"}).stdout
