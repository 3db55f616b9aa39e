"""Real distributed Redis for the tests, on loopback and free ports: a 3-master Cluster, a master
with a replica watched by three sentinels, and TLS files from a CA made here with ``openssl``.

Each helper starts real processes (``redis-server``, ``redis-server --sentinel``, ``redis-cli
--cluster create``) and waits, with a deadline, until they are usable; ``stop()`` kills
whatever is still running.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import redis

from tests.redis_server import RedisServer

HOST = "127.0.0.1"
MASTER_NAME = "qwmaster"
READY_TIMEOUT_S = 20.0


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(redis.RedisError, OSError):
            if condition():
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {timeout_s}s: {what}")
        time.sleep(0.05)


def admin(port: int, password: str | None = None) -> redis.Redis:
    """A plain client as the default user, for the tests' own checks and set-up."""
    return redis.Redis(
        host=HOST, port=port, password=password, decode_responses=True, socket_timeout=5
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port if port != 6379 else free_port()


class Cluster:
    """Three masters (no replicas) joined with ``redis-cli --cluster create``."""

    def __init__(self, directory: Path, masters: int = 3) -> None:
        options = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        options += ["--cluster-node-timeout", "2000"]
        # The bus port is the port + 10000 unless named: a free port above 55535 has none.
        self.nodes = [
            RedisServer(
                directory / f"node{i}", extra_args=[*options, "--cluster-port", str(free_port())]
            )
            for i in range(masters)
        ]

    @property
    def url(self) -> str:
        """Any node will do: the client learns the others from it."""
        return self.nodes[0].url

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        addresses = [f"{HOST}:{node.port}" for node in self.nodes]
        command = ["redis-cli", "--cluster", "create", *addresses]
        command += ["--cluster-replicas", "0", "--cluster-yes"]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

        def every_node_ok() -> bool:
            for node in self.nodes:
                with admin(node.port) as client:
                    if client.cluster("info")["cluster_state"] != "ok":
                        return False
            return True

        wait_for(every_node_ok, "cluster_state:ok on every node")

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


class Sentinel:
    """One ``redis-server <conf> --sentinel`` process watching ``MASTER_NAME``."""

    def __init__(self, directory: Path, master_port: int, password: str | None = None) -> None:
        self.directory = directory
        # The sentinel's own requirepass (and the one it gives the other sentinels), or none.
        self.password = password
        self.port = free_port()
        self.master_port = master_port
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "sentinel.conf"  # sentinel rewrites it: a file of its own
        conf.write_text(
            f"port {self.port}\nbind {HOST}\ndaemonize no\ndir {self.directory}\n"
            f"sentinel monitor {MASTER_NAME} {HOST} {self.master_port} 2\n"
            # Quick to declare the master down and to fail over (a test waits for both), yet
            # not so quick that a loaded machine's pause looks like a dead master.
            f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
            f"sentinel failover-timeout {MASTER_NAME} 5000\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            + (
                f"requirepass {self.password}\nsentinel sentinel-pass {self.password}\n"
                if self.password
                else ""
            )
        )
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server not on PATH"
        self._log = (self.directory / "sentinel.log").open("ab")
        self._proc = subprocess.Popen(
            [binary, str(conf), "--sentinel"],
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        atexit.register(self.stop)  # no sentinel outlives a test run that dies early
        with admin(self.port, self.password) as client:
            wait_for(client.ping, f"sentinel on {self.port} answers PING")

    def master(self) -> dict[str, str]:
        with admin(self.port, self.password) as client:
            reply = client.execute_command("SENTINEL", "MASTER", MASTER_NAME)
        # A flat field/value list from the raw command.
        return dict(zip(reply[::2], reply[1::2], strict=True)) if isinstance(reply, list) else reply

    def master_port_now(self) -> int:
        with admin(self.port, self.password) as client:
            _host, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
        return int(port)

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait(5)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


class SentinelGroup:
    """A master, one replica and three sentinels (quorum 2)."""

    def __init__(self, directory: Path, sentinel_password: str | None = None) -> None:
        # No wait before the first full sync (diskless replication waits 5 s by default).
        quick_sync = ["--repl-diskless-sync-delay", "0"]
        self.master = RedisServer(directory / "master", extra_args=quick_sync)
        self.replica = RedisServer(
            directory / "replica",
            extra_args=[*quick_sync, "--replicaof", HOST, str(self.master.port)],
        )
        self.sentinels = [
            Sentinel(directory / f"sentinel{i}", self.master.port, sentinel_password)
            for i in range(3)
        ]

    @property
    def addresses(self) -> str:
        """The value of QWORKER_REDIS_SENTINELS."""
        return ",".join(f"{HOST}:{sentinel.port}" for sentinel in self.sentinels)

    def start(self) -> None:
        self.master.start()
        self.replica.start()
        with admin(self.replica.port) as client:
            wait_for(
                lambda: client.info("replication")["master_link_status"] == "up",
                "the replica is in sync",
            )
        for sentinel in self.sentinels:
            sentinel.start()

        # A failover needs sentinels that know each other (ODOWN, election) and the replica.
        def all_known() -> bool:
            return all(
                int(s.master()["num-other-sentinels"]) == 2 and int(s.master()["num-slaves"]) == 1
                for s in self.sentinels
            )

        wait_for(all_known, "the sentinels know each other and the replica")

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        self.replica.kill()
        self.master.kill()


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """A self-signed CA, and a server and a client certificate it signed (EC keys: fast)."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca = ["-subj", "/CN=qworker-test-ca", "-days", "2", "-keyout", "ca.key", "-out", "ca.crt"]
    openssl("req", "-x509", *key, *ca)
    for name, extension in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (directory / f"{name}.ext").write_text(extension + "\n")
        request = ["-subj", f"/CN=qworker-{name}", "-keyout", f"{name}.key", "-out", f"{name}.csr"]
        openssl("req", *key, *request)
        openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
        )  # fmt: skip
    return TlsFiles(
        ca=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )
