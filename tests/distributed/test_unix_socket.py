"""A ``unix://`` URL: the whole lifecycle over a unix domain socket (same host, no TCP)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.distributed.conftest import settings_for
from tests.distributed.lifecycle import run_lifecycle
from tests.redis_server import RedisServer


@pytest.fixture
def socket_path() -> Iterator[Path]:
    # A short directory: a unix socket path is limited to about 100 bytes.
    with tempfile.TemporaryDirectory(prefix="qw-", dir="/tmp") as directory:
        yield Path(directory) / "redis.sock"


async def test_lifecycle_over_a_unix_socket(
    tmp_path: Path, socket_path: Path, tagged_namespace: str
) -> None:
    options = ["--unixsocket", str(socket_path), "--unixsocketperm", "700"]
    with RedisServer(tmp_path / "redis", extra_args=options):
        settings = settings_for(redis_url=f"unix://{socket_path}?db=0", namespace=tagged_namespace)
        await run_lifecycle(settings, tmp_path / "probe.log")
