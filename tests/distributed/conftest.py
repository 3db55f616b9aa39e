"""Fixtures for the distributed tests: the servers, a hash-tagged namespace, worker processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from uuid import uuid4

import pytest

from qworker.config import Settings
from qworker.connection import CONNECTION_ERRORS
from qworker.errors import RedisUnavailable
from tests.distributed.servers import Cluster, SentinelGroup, TlsFiles, make_tls_files
from tests.redis_server import RedisServer

REPO_ROOT = Path(__file__).resolve().parents[2]


def settings_for(**values: Any) -> Settings:
    """Settings from these values only: no .env, and no QWORKER_* of the developer."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("QWORKER_")}
    try:
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]
    finally:
        os.environ.update(saved)


@pytest.fixture
def tagged_namespace() -> str:
    """A namespace of its own with a hash tag, so all its keys share one cluster slot."""
    return f"{{t{uuid4().hex[:10]}}}"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    nodes = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def sentinel_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """A fresh group per test: a failover test leaves it changed for good."""
    group = SentinelGroup(tmp_path_factory.mktemp("sentinel"))
    try:
        group.start()
        yield group
    finally:
        group.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@dataclass(frozen=True)
class TlsServer:
    server: RedisServer
    tls_port: int
    files: TlsFiles


@pytest.fixture(scope="session")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles
) -> Iterator[TlsServer]:
    """A redis-server that asks clients for a certificate signed by the test CA on its TLS port.
    (Its plain port, for the default user only, serves the helper's health checks.)"""
    from tests.distributed.servers import free_port

    tls_port = free_port()
    options = ["--tls-port", str(tls_port), "--tls-auth-clients", "yes"]
    options += ["--tls-cert-file", str(tls_files.server_cert)]
    options += ["--tls-key-file", str(tls_files.server_key)]
    options += ["--tls-ca-cert-file", str(tls_files.ca)]
    with RedisServer(tmp_path_factory.mktemp("redis-tls"), extra_args=options) as server:
        yield TlsServer(server, tls_port, tls_files)


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, signum: int, timeout_s: float = 15.0) -> int:
        """Send ``signum`` and wait for the exit code."""
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker did not exit {timeout_s}s after signal {signum}:\n{self.output()}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.log.close()


SpawnWorker = Callable[..., WorkerProcess]


def clean_env(**qworker_env: str) -> dict[str, str]:
    """This process's environment without the developer's QWORKER_*, plus ``qworker_env``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWORKER_")}
    env.pop("REDIS_URL", None)
    return env | qworker_env


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[SpawnWorker]:
    """``spawn_worker(url, namespace, env={...}, concurrency=2, burst=True)``: a
    ``tests.worker_main`` process (the core Worker, no CLI) standing in for a worker host."""
    workers: list[WorkerProcess] = []

    def spawn(
        redis_url: str,
        namespace: str,
        *,
        env: dict[str, str] | None = None,
        concurrency: int = 1,
        burst: bool = False,
        lease_s: float = 60.0,
    ) -> WorkerProcess:
        args = [sys.executable, "-m", "tests.worker_main", "--redis-url", redis_url]
        args += ["--namespace", namespace, "--concurrency", str(concurrency)]
        args += ["--lease-seconds", str(lease_s), "--import", "tests.jobtypes"]
        args += ["--burst"] if burst else []
        log_path = tmp_path / f"worker-{len(workers)}.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            env=clean_env(**(env or {})),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        worker = WorkerProcess(proc, log_path, log)
        workers.append(worker)
        return worker

    yield spawn
    for worker in workers:
        worker.close()


async def wait_until(
    condition: Callable[[], Awaitable[bool]],
    what: str,
    workers: list[WorkerProcess],
    timeout_s: float = 30.0,
) -> None:
    """Poll ``condition`` until true; Redis being away meanwhile is not a failure, a worker
    process exiting is."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if await condition():
                return
        except (RedisUnavailable, *CONNECTION_ERRORS):  # type: ignore[misc]
            pass  # no master yet (a failover), or a pooled connection to a dead one
        for worker in workers:
            if worker.proc.poll() is not None:
                pytest.fail(
                    f"worker exited ({worker.proc.returncode}) before {what}:\n{worker.output()}"
                )
        if time.monotonic() > deadline:
            outputs = "\n".join(worker.output() for worker in workers)
            pytest.fail(f"not within {timeout_s}s: {what}\n{outputs}")
        await asyncio.sleep(0.05)
