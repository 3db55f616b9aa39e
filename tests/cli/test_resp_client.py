"""``qworker.resp``, the fast enqueue path's Redis client, against a real redis-server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import redis

from qworker.cli.fast_enqueue import _call, _send
from qworker.clients import ClientContainer
from qworker.config import Settings
from qworker.jobs.base import JobFactory
from qworker.producing import prepare
from qworker.resp import (
    Address,
    RespConnection,
    RespConnectionError,
    RespReplyError,
    UnsupportedUrl,
    parse_url,
)
from tests.redis_server import RedisServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private server with a Unix socket, whose script cache the tests may empty."""
    directory = tmp_path_factory.mktemp("redis-resp")
    socket_path = directory / "redis.sock"
    with RedisServer(directory, extra_args=["--unixsocket", str(socket_path)]) as started:
        yield started


@pytest.fixture
def admin(server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server.url, decode_responses=True)
    yield client
    client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://localhost", Address()),
        ("redis://h:7000/3", Address(host="h", port=7000, db=3)),
        ("redis://:p%40ss@h/0", Address(host="h", password="p@ss")),
        ("redis://u:pw@h:1/2?db=5", Address(host="h", port=1, username="u", password="pw", db=5)),
        ("unix:///run/redis.sock?db=4", Address(unix_path="/run/redis.sock", db=4)),
        ("REDIS://H", Address(host="h")),
        # redis-py takes the first ?db= only, and a port given as 0 is port 0
        ("unix:///run/redis.sock?db=1&db=2", Address(unix_path="/run/redis.sock", db=1)),
        ("redis://h/1?db=2&db=3", Address(host="h", db=2)),
        ("redis://h:0", Address(host="h", port=0)),
    ],
)
def test_urls_are_read_as_redis_py_reads_them(url: str, address: Address) -> None:
    assert parse_url(url) == address


@pytest.mark.parametrize(
    "url",
    [
        "rediss://h:6380/0",
        "redis://h/0?socket_timeout=1",
        "redis://h/abc",
        "redis://h:notaport/0",
        "redis://user@h/0",
        "unix://",
        "http://h/0",
        # redis-py takes no URL without the "//" after its scheme
        "redis:/0",
        "unix:/run/redis.sock",
    ],
)
def test_urls_it_does_not_handle_are_refused(url: str) -> None:
    with pytest.raises(UnsupportedUrl):
        parse_url(url)


def test_replies_of_every_kind(server: RedisServer) -> None:
    key = f"resp:{uuid4().hex}"
    with RespConnection.from_url(server.url) as connection:
        assert connection.command("SET", key, "välue ✓") == "OK"
        assert connection.command("GET", key) == "välue ✓"
        assert connection.command("GET", key + ":none") is None
        assert connection.command("RPUSH", key + ":list", "a", b"b", 3, 1.5) == 4
        assert connection.command("LRANGE", key + ":list", 0, -1) == ["a", "b", "3", "1.5"]
        assert connection.command("EVAL", "return {1, 'two', {3}, false}", 0) == [
            1,
            "two",
            [3],
            None,
        ]
        assert connection.command("DEL", key, key + ":list") == 2


def test_a_server_error_reply_is_raised_and_the_connection_goes_on(server: RedisServer) -> None:
    key = f"resp:{uuid4().hex}"
    with RespConnection.from_url(server.url) as connection:
        connection.command("SET", key, "text")
        with pytest.raises(RespReplyError) as caught:
            connection.command("INCR", key)
        assert caught.value.code == "ERR"
        assert "not an integer" in str(caught.value)
        with pytest.raises(RespReplyError) as caught:
            connection.command("LPUSH", key, "x")
        assert caught.value.code == "WRONGTYPE"
        assert connection.command("DEL", key) == 1


def test_the_db_of_the_url_is_selected(server: RedisServer, admin: redis.Redis) -> None:
    key = f"resp:{uuid4().hex}"
    with RespConnection.from_url(f"redis://127.0.0.1:{server.port}/3") as connection:
        connection.command("SET", key, "in db 3")
    in_db_3 = redis.Redis(port=server.port, db=3, decode_responses=True)
    try:
        assert in_db_3.get(key) == "in db 3"
        assert admin.get(key) is None
    finally:
        in_db_3.delete(key)
        in_db_3.close()


def test_a_unix_socket(server: RedisServer, admin: redis.Redis) -> None:
    path = Path(str(admin.config_get("unixsocket")["unixsocket"]))
    with RespConnection.from_url(f"unix://{path}?db=2") as connection:
        assert connection.command("PING") == "PONG"
        assert connection.command("CLIENT", "INFO").split(" db=")[1].startswith("2 ")


def test_an_acl_user_logs_in_with_its_password(server: RedisServer, admin: redis.Redis) -> None:
    user = f"producer{uuid4().hex[:8]}"
    admin.acl_setuser(user, enabled=True, passwords=["+s3cr:t@"], keys=["*"], commands=["+@all"])
    try:
        url = f"redis://{user}:s3cr%3At%40@127.0.0.1:{server.port}/0"
        with RespConnection.from_url(url) as connection:
            assert connection.command("ACL", "WHOAMI") == user
        with pytest.raises(RespReplyError) as caught:
            RespConnection.from_url(f"redis://{user}:wrong@127.0.0.1:{server.port}/0")
        assert caught.value.code == "WRONGPASS"
    finally:
        admin.acl_deluser(user)


def test_a_refused_connection() -> None:
    with pytest.raises(RespConnectionError, match="refused"):
        RespConnection.from_url(f"redis://127.0.0.1:{free_port()}/0")


def test_a_server_that_closes_the_connection(server: RedisServer, admin: redis.Redis) -> None:
    with RespConnection.from_url(server.url) as connection:
        admin.execute_command("CLIENT", "KILL", "ID", connection.command("CLIENT", "ID"))
        with pytest.raises(RespConnectionError):
            connection.command("PING")


def test_the_enqueue_script_runs_by_eval_when_redis_lacks_it(
    server: RedisServer, admin: redis.Redis
) -> None:
    settings = Settings(_env_file=None, redis_url=server.url, namespace=f"t{uuid4().hex[:8]}")  # type: ignore[call-arg]
    params = JobFactory.validate_params({"job_type": "tweet", "content": "noscript"})
    item = prepare(params, 3, None, None, settings, ClientContainer(settings))
    call = _call(settings, item)
    admin.script_flush()
    with RespConnection.from_url(server.url) as connection:
        with pytest.raises(RespReplyError) as caught:
            connection.command(*call.command())
        assert caught.value.code == "NOSCRIPT"
        reply = _send(connection, call)
        assert reply.stored == 1
        # EVAL cached the script: the next call runs by EVALSHA.
        assert admin.script_exists(call.script.sha) == [True]
    assert admin.lrange(f"{settings.namespace}:jobs_priority_3", 0, -1) == [item.job_id]
