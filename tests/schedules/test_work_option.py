"""``qworker work`` fires schedules, and ``--no-schedules`` keeps one worker out of it: a worker
process, a schedule already due, and a queued job that shows the worker is at work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from qworker.keys import QueueKeys
from tests.cli.conftest import Cli, _isolated  # noqa: F401  (_isolated: autouse)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(redis_url: str, namespace: str) -> Cli:
    return Cli(CliRunner(), redis_url, namespace)


def due_now(cli: Cli) -> None:
    """A schedule whose next due time has come (as if it had been added a minute ago)."""
    assert cli("schedule", "tweet", "due", "--every", "1h", "scheduled").exit_code == 0
    keys = QueueKeys(cli.namespace)
    client = redis.Redis.from_url(cli.redis_url, decode_responses=True)
    past_ms = int(time.time() * 1000) - 1000
    client.hset(keys.schedule("due"), "next_due_ms", past_ms)
    client.zadd(keys.schedules, {"due": past_ms})
    client.close()


def run_worker_until(cli: Cli, done: Callable[[], bool], *options: str) -> str:
    command = [sys.executable, "-m", "qworker", "--redis-url", cli.redis_url]
    command += ["--namespace", cli.namespace, "work", "--dry-run", *options]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QWORKER_", "TWITTER_"))}
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not done():
            assert time.monotonic() < deadline, "the worker never got there"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return stderr


def test_no_schedules_keeps_a_worker_out_and_a_plain_worker_fires(cli: Cli) -> None:
    due_now(cli)
    sentinel = cli("enqueue", "tweet", "sentinel").stdout.strip()

    def sentinel_done() -> bool:
        return bool(cli.json("job", "show", sentinel)["state"] == "done")

    def fired() -> int:
        return int(cli.json("schedule", "show", "due")["fired"])

    # Its scheduler would have fired at once, before the worker took and finished a job.
    log = run_worker_until(cli, sentinel_done, "--no-schedules")
    assert fired() == 0, log
    log = run_worker_until(cli, lambda: fired() == 1)
    assert "schedule due fired for" in log
