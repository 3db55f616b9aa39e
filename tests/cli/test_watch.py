"""``qworker stats --watch`` in a pseudo-terminal: it redraws as the queue changes, says
"Redis unreachable, retrying" while Redis is down, recovers, and exits 0 on Ctrl-C (SIGINT)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from qworker.config import Settings
from qworker.service import QueueService
from tests.cli.conftest import REPO_ROOT, Cli
from tests.redis_server import RedisServer

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r")
HEADER = "(Ctrl-C quits)"


class Screen:
    """What a terminal running the command received, read by a thread from the pty's master."""

    def __init__(self, master_fd: int) -> None:
        self.master_fd = master_fd
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master_fd, 65536)
            except OSError:  # the child closed the terminal
                return
            if not data:
                return
            with self._lock:
                self._chunks.append(data)

    def text(self) -> str:
        with self._lock:
            raw = b"".join(self._chunks).decode("utf-8", "replace")
        return ANSI.sub("", raw)

    def latest_frame(self) -> str:
        """Everything since the last redraw began (each frame starts with the header line, or
        with the unreachable message)."""
        text = self.text()
        start = max(text.rfind(HEADER), text.rfind("Redis unreachable, retrying"))
        return text[max(start, 0) :]

    def wait_for(self, what: str, predicate: Callable[[str], bool], timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self.latest_frame()):
                return
            time.sleep(0.05)
        raise AssertionError(f"never saw {what}; last frame:\n{self.latest_frame()}")


@pytest.fixture
def watch(
    fresh_redis_server: RedisServer, namespace: str
) -> Iterator[tuple[subprocess.Popen[bytes], Screen]]:
    master_fd, slave_fd = pty.openpty()
    # A 120x60 terminal, so every table fits without wrapping.
    fcntl.ioctl(slave_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QWORKER_", "NO_COLOR"))}
    env.update(TERM="xterm-256color", COLUMNS="120", LINES="60")
    command = [sys.executable, "-m", "qworker", "--redis-url", fresh_redis_server.url]
    command += ["--namespace", namespace, "stats", "--watch", "--interval", "0.2"]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdin=slave_fd, stdout=slave_fd, stderr=slave_fd
    )
    os.close(slave_fd)
    screen = Screen(master_fd)
    try:
        yield process, screen
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master_fd)


def _p1_count(frame: str) -> int | None:
    match = re.search(r"priority 1 \(urgent\)\s+(\d+)", frame)
    return int(match.group(1)) if match else None


def test_watch_redraws_survives_a_redis_outage_and_exits_0_on_ctrl_c(
    watch: tuple[subprocess.Popen[bytes], Screen],
    fresh_redis_server: RedisServer,
    cli: Cli,
) -> None:
    process, screen = watch
    cli.redis_url = fresh_redis_server.url
    screen.wait_for("the first frame", lambda frame: _p1_count(frame) == 0)
    assert "Workers" in screen.latest_frame()

    cli.ok("enqueue", "tweet", "urgent", "--priority", "1")
    screen.wait_for("the queued job", lambda frame: _p1_count(frame) == 1)

    fresh_redis_server.stop()
    screen.wait_for("the outage", lambda frame: "Redis unreachable, retrying" in frame)
    assert process.poll() is None

    fresh_redis_server.start()  # with AOF: the job is still there
    screen.wait_for("the recovery", lambda frame: HEADER in frame and _p1_count(frame) == 1)

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0
    assert "Traceback" not in screen.text()


def test_watch_shows_pauses_and_names_the_redis(
    watch: tuple[subprocess.Popen[bytes], Screen],
    fresh_redis_server: RedisServer,
    namespace: str,
) -> None:
    process, screen = watch
    screen.wait_for("nothing paused", lambda frame: "nothing is paused" in frame)
    assert f"{fresh_redis_server.url}  namespace {namespace}  at " in screen.text()

    async def pause() -> None:
        settings = Settings(_env_file=None, redis_url=fresh_redis_server.url, namespace=namespace)  # type: ignore[call-arg]
        async with QueueService(settings=settings) as service:
            await service.pause(priority=2, for_s=600)
            await service.pause(job_type="tweet")

    asyncio.run(pause())
    screen.wait_for(
        "the pauses",
        lambda frame: (
            # The time, with its date before it when it falls on another day (near midnight).
            re.search(r"priority 2 \(high\)\s+(?:\S+ )?\S+ \(in 9m 5\ds\)", frame) is not None
            and re.search(r"job type tweet\s+resumed\s+0 jobs", frame) is not None
        ),
    )
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0
