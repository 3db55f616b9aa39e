"""A throwaway real ``redis-server`` for tests (no dependency beyond the binary on PATH)."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

_HOST = "127.0.0.1"
_SHARED_DEV_PORT = 6379  # a shared dev server lives here: never hand this port out


def _free_port() -> int:
    # Let the kernel choose a free port; the tiny race before redis binds it is acceptable in tests.
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((_HOST, 0))
            port: int = sock.getsockname()[1]
        if port != _SHARED_DEV_PORT:
            return port


class RedisServer:
    """One ``redis-server`` process on a private port and directory; restartable in place."""

    def __init__(
        self, directory: Path, *, appendonly: bool = False, extra_args: list[str] | None = None
    ) -> None:
        self.directory = Path(directory)
        self.appendonly = appendonly
        self.extra_args = list(extra_args or [])
        self.log_path = self.directory / "redis.log"
        # Chosen once so restart() comes back on the same address that clients already hold.
        self._port = _free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{_HOST}:{self._port}/0"

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 5.0) -> None:
        if self.is_running:
            raise RuntimeError(f"redis-server already running on port {self._port}")
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found on PATH (e.g. apt-get install redis-server)")
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [binary, "--port", str(self._port), "--bind", _HOST, "--daemonize", "no"]
        args += ["--dir", str(self.directory), "--save", ""]  # no RDB snapshots unless asked
        if self.appendonly:
            # fsync every write, so a SIGKILL loses nothing that was acknowledged.
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        args += self.extra_args
        # Append, so the log of an earlier run (before a restart) is kept for debugging.
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap()
        self._proc = subprocess.Popen(
            args, cwd=self.directory, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log
        )
        atexit.register(self._atexit)  # fallback if the test run dies before stop()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if self._command(b"PING") == b"+PONG":
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(
            f"redis-server on port {self._port} did not answer PING within {timeout}s;"
            f" log tail ({self.log_path}):\n{self._log_tail()}"
        )

    def stop(self, timeout: float = 5.0) -> None:
        if self._proc is not None and self.is_running:
            self.resume()  # a stopped process would handle neither SHUTDOWN nor SIGTERM
            # With AOF, SIGTERM makes redis fsync the AOF before exiting. Without it, SHUTDOWN
            # NOSAVE closes the connection (empty reply) on success; anything else: SIGTERM.
            if self.appendonly or self._command(b"SHUTDOWN NOSAVE") != b"":
                self._proc.send_signal(signal.SIGTERM)
        self._reap(timeout)

    def kill(self) -> None:
        if self.is_running:
            assert self._proc is not None
            self._proc.kill()  # SIGKILL works even on a SIGSTOPped process
        self._reap(5.0)

    def restart(self, timeout: float = 5.0) -> None:
        self.stop()
        self.start(timeout)

    def pause(self) -> None:
        if self._proc is not None and self.is_running:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None and self.is_running:
            self._proc.send_signal(signal.SIGCONT)

    def _command(self, command: bytes) -> bytes | None:
        # Raw inline command on a socket: start-up checks need no client library.
        try:
            with socket.create_connection((_HOST, self._port), timeout=0.5) as sock:
                sock.sendall(command + b"\r\n")
                return sock.recv(64).strip() or b""
        except OSError:
            return None

    def _reap(self, timeout: float) -> None:
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        atexit.unregister(self._atexit)

    def _atexit(self) -> None:
        # Interpreter exit: only make sure no redis-server outlives the test run.
        with contextlib.suppress(Exception):
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait(5.0)

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"<cannot read log: {exc}>"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
