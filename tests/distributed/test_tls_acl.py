"""TLS with a CA made by the test (the server asks for a client certificate too), as an ACL
user restricted to its namespace: the whole lifecycle, nothing refused, and clear errors for a
wrong password or an unknown CA."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from qworker.config import Settings
from qworker.errors import RedisUnavailable, ReplicationUnconfirmed
from qworker.service import QueueService
from tests.distributed.acl import create_user, denials
from tests.distributed.conftest import TlsServer, clean_env, settings_for
from tests.distributed.lifecycle import run_lifecycle
from tests.distributed.servers import admin
from tests.jobtypes import probe

USER = "qworker"
PASSWORD = "s3cret-pass"  # looked for in every output: it must never appear


@pytest.fixture
def acl_user(tls_server: TlsServer, tagged_namespace: str) -> Iterator[str]:
    with admin(tls_server.server.port) as client:
        client.execute_command("ACL", "LOG", "RESET")
        create_user(client, USER, PASSWORD, tagged_namespace)
    yield USER
    with admin(tls_server.server.port) as client:
        client.execute_command("ACL", "DELUSER", USER)


def tls_settings(tls_server: TlsServer, namespace: str, **overrides: Any) -> Settings:
    files = tls_server.files
    values: dict[str, Any] = {
        "redis_url": f"rediss://{USER}:{PASSWORD}@127.0.0.1:{tls_server.tls_port}/0",
        "namespace": namespace,
        "redis_tls_ca": files.ca,
        "redis_tls_cert": files.client_cert,
        "redis_tls_key": files.client_key,
    }
    return settings_for(**(values | overrides))


async def test_lifecycle_over_tls_as_a_restricted_user(
    tls_server: TlsServer, acl_user: str, tagged_namespace: str, tmp_path: Path
) -> None:
    await run_lifecycle(tls_settings(tls_server, tagged_namespace), tmp_path / "probe.log")
    # A durable enqueue's WAIT is allowed too (no replica here: it says so, and the job is queued).
    durable = tls_settings(tls_server, tagged_namespace, durable_replicas=1, durable_timeout_ms=20)
    async with QueueService(settings=durable) as service:
        with pytest.raises(ReplicationUnconfirmed):
            await service.add_job(probe(tmp_path / "probe.log"))
        await service.clear_queue(everything=True)

    with admin(tls_server.server.port) as client:
        assert denials(client) == []  # the rule allowed everything qworker did
        assert client.keys(f"{tagged_namespace}*") == []  # and the clear left nothing behind
        tls_clients = [c for c in client.client_list() if c.get("user") == USER]
    assert tls_clients == []  # every connection was closed

    # ... and the rule allows nothing outside the namespace.
    url = f"rediss://{USER}:{PASSWORD}@127.0.0.1:{tls_server.tls_port}/0"
    files = tls_server.files
    with redis.Redis.from_url(
        url,
        ssl_ca_certs=str(files.ca),
        ssl_certfile=str(files.client_cert),
        ssl_keyfile=str(files.client_key),
    ) as client:
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.get("jobs_stats")  # the keys of the empty namespace
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.flushall()


def test_wrong_password_in_the_cli(tls_server: TlsServer, acl_user: str, tmp_path: Path) -> None:
    files = tls_server.files
    env = clean_env(
        QWORKER_REDIS_URL=f"rediss://{USER}:not-{PASSWORD}@127.0.0.1:{tls_server.tls_port}/0",
        QWORKER_REDIS_TLS_CA=str(files.ca),
        QWORKER_REDIS_TLS_CERT=str(files.client_cert),
        QWORKER_REDIS_TLS_KEY=str(files.client_key),
    )
    result = subprocess.run(
        [sys.executable, "-m", "qworker", "stats", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stdout) == (1, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: Redis at rediss://qworker:***@") and "refused the login" in line
    assert PASSWORD not in result.stderr


async def test_an_unknown_ca_is_refused(tls_server: TlsServer, tagged_namespace: str) -> None:
    """Without the test CA the server's certificate cannot be verified: no connection."""
    settings = tls_settings(tls_server, tagged_namespace, redis_tls_ca=None)
    async with QueueService(settings=settings) as service:
        with pytest.raises(RedisUnavailable, match="certificate verify failed"):
            await service.ping()
