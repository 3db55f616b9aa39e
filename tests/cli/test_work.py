"""``qworker work``: runs jobs, says where and how in its first log line, refuses to start
without X credentials unless dry-run, and exits 0 after SIGTERM/SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.cli.conftest import REPO_ROOT, Cli, one_error_line
from tests.redis_server import RedisServer

CREDENTIALS = {
    "TWITTER_API_KEY": "key",
    "TWITTER_API_SECRET": "key-secret",
    "TWITTER_ACCESS_TOKEN": "token",
    "TWITTER_ACCESS_TOKEN_SECRET": "token-secret",
}


def test_burst_dry_run_processes_the_queue_and_exits_0(cli: Cli) -> None:
    for text in ("one", "two", "three"):
        cli.ok("enqueue", "tweet", text)
    result = cli("work", "--burst", "--dry-run", "-c", "2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "dry run: would post 'two'" in result.stderr
    stats = cli.json("stats")
    assert (stats["total_processed"], stats["total_jobs"], stats["in_flight"]) == (3, 0, 0)


@pytest.fixture
def password_url(fresh_redis_server: RedisServer) -> Iterator[str]:
    """A URL with a user and password that the server accepts (an ACL user)."""
    client = redis.Redis.from_url(fresh_redis_server.url)
    client.acl_setuser(
        "qw", enabled=True, passwords=["+s3cret"], keys=["*"], channels=["*"], commands=["+@all"]
    )
    client.close()
    yield f"redis://qw:s3cret@127.0.0.1:{fresh_redis_server.port}/0"


def test_first_log_line_says_where_what_and_how(cli: Cli, password_url: str) -> None:
    result = cli.raw(
        "--redis-url", password_url, "--namespace", "ops", "work", "--burst", "--dry-run",
        "-c", "2", "--import", "tests.cli.jobtypes", "--grace", "7",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    first = result.stderr.splitlines()[0]
    for fragment in (
        "worker starting",
        f"redis redis://qw:***@127.0.0.1:{password_url.rsplit(':', 1)[1]}",
        "namespace ops",
        "concurrency 2",
        "DRY RUN",
        "grace 7s",
        "cli_job 100/hour 1000/day",
        "tweet 3/hour 17/day",
    ):
        assert fragment in first, (fragment, first)
    # Other tests of this session may have registered more types; these two must be there.
    job_types = first.split("job types ", 1)[1].split(", concurrency", 1)[0].split(", ")
    assert {"cli_job", "tweet"} <= set(job_types)
    assert "s3cret" not in result.stderr


def test_json_log_format_carries_the_start_up_fields(cli: Cli) -> None:
    result = cli("work", "--burst", "--dry-run", "--log-format", "json")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert lines[0]["msg"].startswith("worker starting")
    assert lines[0]["namespace"] == cli.namespace
    assert lines[0]["concurrency"] == 1
    assert "tweet" in lines[0]["job_types"]
    assert lines[-1]["msg"].endswith("stopped after 0 job(s)")


def test_missing_credentials_refuse_to_start(cli: Cli) -> None:
    line = one_error_line(cli("work", "--burst"), 2, ".env.example", "--job-types")
    for name in CREDENTIALS:
        assert name in line


def test_only_the_missing_credentials_are_named(cli: Cli) -> None:
    env = {"TWITTER_API_KEY": "key", "TWITTER_API_SECRET": "secret"}
    line = one_error_line(cli("work", "--burst", env=env), 2, "TWITTER_ACCESS_TOKEN")
    assert "TWITTER_API_KEY" not in line and "TWITTER_API_SECRET" not in line


def test_credentials_from_a_dotenv_file_are_enough(cli: Cli) -> None:
    with open(".env", "w") as env_file:  # the test runs in its own empty directory
        env_file.writelines(f"{name}={value}\n" for name, value in CREDENTIALS.items())
    result = cli("work", "--burst")
    assert result.exit_code == 0, result.stderr
    assert "DRY RUN" not in result.stderr


def test_dry_run_from_settings_needs_no_credentials(cli: Cli) -> None:
    result = cli("work", "--burst", env={"QWORKER_DRY_RUN": "true"})
    assert result.exit_code == 0, result.stderr


def test_unreachable_redis_exits_1(cli: Cli) -> None:
    result = cli.raw("--redis-url", "redis://127.0.0.1:1/0", "work", "--burst", "--dry-run")
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot reach Redis at redis://127.0.0.1:1/0")
    assert "Traceback" not in result.stderr


def test_bad_options_exit_2(cli: Cli) -> None:
    one_error_line(cli("work", "-c", "0", "--dry-run"), 2, "--concurrency")
    one_error_line(cli("work", "--log-format", "xml", "--dry-run"), 2, "--log-format")


def _start_worker(cli: Cli) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "qworker", "--redis-url", cli.redis_url]
    command += ["--namespace", cli.namespace, "work", "--dry-run", "-c", "2"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QWORKER_", "TWITTER_"))}
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_worker(cli: Cli, process: subprocess.Popen[str]) -> dict[str, object]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        workers = cli.json("stats")["workers"]
        if workers:
            worker: dict[str, object] = workers[0]
            return worker
        time.sleep(0.05)
    raise AssertionError("the worker never showed up in qworker stats")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_worker_gracefully_with_exit_0(cli: Cli, signum: int) -> None:
    process = _start_worker(cli)
    try:
        worker = _wait_for_worker(cli, process)
        assert worker["pid"] == process.pid
        assert worker["concurrency"] == 2
        cli.ok("enqueue", "tweet", "posted before stopping")
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert stdout == ""
    assert signal.Signals(signum).name in stderr
    assert "Traceback" not in stderr
    assert cli.json("stats")["workers"] == []


def test_import_finds_a_module_in_the_working_directory(
    redis_url: str, namespace: str, tmp_path: Path
) -> None:
    """``qworker work --import myjobs`` run next to ``myjobs.py`` finds it (the console script,
    unlike ``python -m``, does not put the working directory on the import path by itself)."""
    (tmp_path / "myjobs.py").write_text(
        "from typing import Literal\n"
        "from qworker import BaseJob, BaseJobParams, JobFactory\n"
        "class HelloParams(BaseJobParams):\n"
        "    job_type: Literal['hello'] = 'hello'\n"
        "    name: str\n"
        "class HelloJob(BaseJob[HelloParams]):\n"
        "    async def execute(self) -> str:\n"
        "        return f'hello {self.params.name}'\n"
        "JobFactory.register_job_type('hello', HelloJob, HelloParams)\n"
    )
    qworker = [str(Path(sys.executable).parent / "qworker"), "--redis-url", redis_url]
    qworker += ["--namespace", namespace]
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWORKER_")}
    env.pop("PYTHONPATH", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*qworker, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )

    enqueued = run("enqueue", "json", '{"job_type": "hello", "name": "ada"}', "--import", "myjobs")
    assert enqueued.returncode == 0, enqueued.stderr
    job_id = enqueued.stdout.strip()
    worked = run("work", "--burst", "--dry-run", "--import", "myjobs")
    assert worked.returncode == 0, worked.stderr
    shown = run("job", "show", job_id, "--json")
    assert json.loads(shown.stdout)["result"] == "hello ada"
