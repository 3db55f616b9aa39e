"""``qworker retry-drain`` and ``qworker clear``."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest
import redis

from qworker.clock import ManualClock, SystemClock
from qworker.config import Settings
from qworker.service import QueueService
from tests.cli.conftest import REPO_ROOT, Cli, cli_job, enqueue, one_error_line, run_burst

# -- retry-drain ---------------------------------------------------------------------------------


@pytest.fixture
def retries(settings: Settings) -> None:
    """Two jobs in the retry queue: one due now, one due in two hours."""
    enqueue(settings, cli_job(outcome="retry", retry_after_s=7200))
    run_burst(settings)
    enqueue(settings, cli_job(outcome="retry", retry_after_s=60))
    run_burst(settings, ManualClock(SystemClock().now_ms() - 3_600_000))  # due 59 min ago


@pytest.mark.usefixtures("retries")
def test_dry_run_counts_and_moves_nothing(cli: Cli) -> None:
    assert cli.ok("retry-drain", "--dry-run").startswith("would move 1 due retry job(s)")
    assert cli.json("retry-drain", "--dry-run") == {"moved": 1, "would_move": True}
    assert cli.json("retry-drain", "--all", "--dry-run") == {"moved": 2, "would_move": True}
    assert cli.json("stats")["retry"] == 2


@pytest.mark.usefixtures("retries")
def test_drain_moves_due_retries_then_all(cli: Cli) -> None:
    assert cli.json("retry-drain") == {"moved": 1, "would_move": False}
    stats = cli.json("stats")
    assert (stats["retry"], stats["queues"]["jobs_priority_3"]) == (1, 1)
    assert cli.ok("retry-drain", "--all") == "moved 1 retry job(s) back to their priority lists\n"
    stats = cli.json("stats")
    assert (stats["retry"], stats["queues"]["jobs_priority_3"]) == (0, 2)


def test_drain_of_an_unreachable_redis_is_exit_1(cli: Cli) -> None:
    one_error_line(
        cli.raw("--redis-url", "redis://127.0.0.1:1/0", "retry-drain"), 1, "cannot reach"
    )


# -- clear ---------------------------------------------------------------------------------------


@pytest.fixture
def full(settings: Settings, cli: Cli) -> None:
    """A job in every queue: p1-p4, retry, dead letter, scheduled, and one in flight."""
    enqueue(settings, cli_job(outcome="retry"), cli_job(outcome="permanent"))
    run_burst(settings)
    for priority in (1, 2, 3, 4):
        enqueue(settings, cli_job(), priority=priority)
    cli.ok("enqueue", "tweet", "later", "--delay", "1h")

    async def claim_one() -> None:  # a worker that took the p1 job and is still running it
        async with QueueService(settings=settings) as service:
            now_ms = service.clock.now_ms()
            await service.run(service.scripts.claim("w", now_ms, 600_000, 1, "t"))

    asyncio.run(claim_one())


def _counts(cli: Cli) -> dict[str, int]:
    stats = cli.json("stats")
    counts = {f"p{name[-1]}": count for name, count in stats["queues"].items()}
    keys = ("retry", "dead_letter", "scheduled", "in_flight", "total_processed")
    return counts | {key: stats[key] for key in keys}


FULL = {"p1": 0, "p2": 1, "p3": 1, "p4": 1, "retry": 1, "dead_letter": 1, "scheduled": 1}


@pytest.mark.usefixtures("full")
def test_without_a_terminal_or_yes_it_refuses(cli: Cli) -> None:
    assert _counts(cli) == FULL | {"in_flight": 1, "total_processed": 0}
    one_error_line(cli("clear", "--priority", "2", "--dlq"), 2, "add --yes", "priority 2: 1 job(s)")
    assert _counts(cli) == FULL | {"in_flight": 1, "total_processed": 0}


@pytest.mark.usefixtures("full")
def test_yes_deletes_only_what_was_chosen(cli: Cli) -> None:
    result = cli("clear", "-p", "2", "-p", "4", "--retry", "--dlq", "--yes")
    assert (result.exit_code, result.stdout) == (0, "deleted 4 job(s)\n")
    assert "priority 2: 1 job(s)" in result.stderr and "dead letter: 1 job(s)" in result.stderr
    expected = {"p2": 0, "p4": 0, "retry": 0, "dead_letter": 0, "in_flight": 1}
    assert _counts(cli) == FULL | expected | {"total_processed": 0}


@pytest.mark.usefixtures("full")
def test_in_flight_jobs_survive_everything_but_all(cli: Cli) -> None:
    every_queue = ["-p", "1", "-p", "2", "-p", "3", "-p", "4", "--retry", "--dlq", "--scheduled"]
    assert cli.ok("clear", *every_queue, "--parked", "--yes") == "deleted 6 job(s)\n"
    assert _counts(cli)["in_flight"] == 1
    assert cli.ok("clear", "--all", "--yes") == "deleted 1 job(s)\n"
    assert set(_counts(cli).values()) == {0}


@pytest.mark.usefixtures("full")
def test_all_never_touches_keys_outside_qworkers_own(cli: Cli, namespace: str) -> None:
    client = redis.Redis.from_url(cli.redis_url, decode_responses=True)
    strangers = [f"{namespace}:user_data", f"{namespace}x:jobs_priority_1", f"other:{namespace}"]
    for key in strangers:
        client.set(key, "keep me")
    try:
        assert cli("clear", "--all", "--yes").exit_code == 0
        assert sorted(client.scan_iter(match=f"*{namespace}*")) == sorted(strangers)
    finally:
        client.delete(*strangers)
        client.close()


def test_nothing_chosen_is_a_usage_error(cli: Cli) -> None:
    one_error_line(cli("clear", "--yes"), 2, "choose what to clear")
    one_error_line(cli("clear", "--priority", "9", "--yes"), 2, "--priority")


@pytest.mark.parametrize(("answer", "exit_code", "left"), [("y", 0, 0), ("n", 1, 1)])
def test_on_a_terminal_it_asks(
    cli: Cli, settings: Settings, answer: str, exit_code: int, left: int
) -> None:
    enqueue(settings, cli_job(), priority=4)
    master_fd, slave_fd = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWORKER_")}
    command = [sys.executable, "-m", "qworker", "--redis-url", cli.redis_url]
    command += ["--namespace", cli.namespace, "clear", "--priority", "4"]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdin=slave_fd, stdout=slave_fd, stderr=slave_fd
    )
    os.close(slave_fd)
    try:
        seen = _read_until(master_fd, b"Delete them? [y/N]")
        assert b"priority 4: 1 job(s)" in seen
        os.write(master_fd, answer.encode() + b"\n")
        assert process.wait(timeout=20) == exit_code
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master_fd)
    assert cli.json("stats")["queues"]["jobs_priority_4"] == left


def _read_until(fd: int, marker: bytes, timeout_s: float = 20) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout_s
    while marker not in seen:
        remaining_s = deadline - time.monotonic()
        assert remaining_s > 0, seen
        readable, _, _ = select.select([fd], [], [], remaining_s)
        if readable:
            seen += os.read(fd, 4096)
    return seen


def test_json_retry_drain_output_is_the_model(cli: Cli) -> None:
    assert json.loads(cli.ok("retry-drain", "--json")) == {"moved": 0, "would_move": False}
