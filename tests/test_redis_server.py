"""Tests of the RedisServer test helper itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests.redis_server import RedisServer


def _client(server: RedisServer, timeout: float = 2.0) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_timeout=timeout, decode_responses=True)


def test_session_server_answers_ping(redis_server: RedisServer, redis_url: str) -> None:
    assert redis_server.is_running
    assert redis_server.port != 6379
    assert redis_url == f"redis://127.0.0.1:{redis_server.port}/0"
    with _client(redis_server) as client:
        assert client.ping() is True
        # No persistence by default: neither RDB snapshots nor AOF.
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}


def test_stop_then_start_again(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    with server:
        port = server.port
        assert server.is_running
    assert not server.is_running
    server.stop()  # stopping twice is harmless
    with server:
        assert server.port == port
        with _client(server) as client:
            assert client.ping() is True
    assert not server.is_running


def test_kill_then_restart_keeps_aof_data(fresh_redis_server: RedisServer, namespace: str) -> None:
    key = f"{namespace}:k"
    with _client(fresh_redis_server) as client:
        client.set(key, "v")
    fresh_redis_server.kill()
    assert not fresh_redis_server.is_running
    fresh_redis_server.restart()
    assert fresh_redis_server.is_running
    with _client(fresh_redis_server) as client:
        assert client.get(key) == "v"


def test_without_aof_restart_loses_data(tmp_path: Path, namespace: str) -> None:
    with RedisServer(tmp_path) as server:
        with _client(server) as client:
            client.set(f"{namespace}:k", "v")
        server.restart()
        with _client(server) as client:
            assert client.get(f"{namespace}:k") is None


def test_pause_and_resume(redis_server: RedisServer) -> None:
    redis_server.pause()
    try:
        assert redis_server.is_running  # stopped, not dead
        with _client(redis_server, timeout=0.3) as client, pytest.raises(redis.TimeoutError):
            client.ping()
    finally:
        redis_server.resume()
    with _client(redis_server) as client:
        assert client.ping() is True


def test_start_failure_reports_log_tail(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, extra_args=["--no-such-option", "x"])
    with pytest.raises(RuntimeError, match="did not answer PING") as excinfo:
        server.start()
    assert "no-such-option" in str(excinfo.value)
    assert not server.is_running
