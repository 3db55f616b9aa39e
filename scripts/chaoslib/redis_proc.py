"""A private ``redis-server`` that the chaos run can shut down, SIGKILL and restart in place.

Every write is fsynced before Redis answers (``appendonly yes``, ``appendfsync always``), so a
SIGKILL may lose only commands whose replies nobody received: that is the promise under test.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"
_SHARED_DEV_PORT = 6379  # a developer's own Redis may live there: never use it


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if port != _SHARED_DEV_PORT:
            return port


class RedisProcess:
    """One redis-server on a fixed port (chosen once, so clients reconnect to the same place)."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found on PATH (e.g. apt-get install redis-server)")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.log_path = directory / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout
        return next((part[2:] for part in out.split() if part.startswith("v=")), out.strip())

    def start(self, timeout_s: float = 60.0) -> None:
        """Start (or restart) and wait until it answers PING, i.e. the AOF is loaded."""
        if self._proc is not None:
            raise RuntimeError("redis-server is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "--port", str(self.port), "--bind", HOST, "--daemonize", "no"]
        args += ["--dir", str(self.directory), "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "always"]
        self._log = self.log_path.open("ab")  # appended, so every restart's log is kept
        self._proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            # While it loads the AOF, Redis answers -LOADING: keep waiting for +PONG.
            if self._command(b"PING") == b"+PONG":
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server did not start within {timeout_s}s; see {self.log_path}")

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """SHUTDOWN: Redis fsyncs the AOF, closes every client and exits."""
        if self._proc is None:
            return
        reply = self._command(b"SHUTDOWN")
        if reply not in (b"", None):
            raise RuntimeError(f"SHUTDOWN refused: {reply!r}")
        self._reap(timeout_s)

    def kill(self) -> None:
        """SIGKILL: no chance to write anything more."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
        self._reap(10.0)

    def _command(self, command: bytes) -> bytes | None:
        # An inline command on a raw socket: SHUTDOWN must not leave a client library confused.
        try:
            with socket.create_connection((HOST, self.port), timeout=1.0) as sock:
                sock.sendall(command + b"\r\n")
                return sock.recv(128).strip()
        except OSError:
            return None

    def _reap(self, timeout_s: float) -> None:
        if self._proc is not None:
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
