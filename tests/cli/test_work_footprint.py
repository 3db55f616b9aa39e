"""``qworker work`` imports only what its jobs use: code for features a worker has not met yet
(schedules, the built-in tweet job, metrics) stays out of its memory until it is needed.

Checked in a fresh ``qworker work`` process, since this test session has long imported
everything; the process writes the names in ``sys.modules`` as it exits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qworker.config import Settings
from tests.cli.conftest import REPO_ROOT, Cli, cli_job, enqueue

# Loaded later, when first needed: the schedules' code when a schedule comes due, the tweet job
# with its first job, the metrics with --metrics-port; never: the CLI's renderers and X's
# client library.
NOT_IMPORTED = (
    "qworker.schedule_store",
    "qworker.schedules",
    "qworker.cron",
    "cronsim",
    "qworker.jobs.tweet",
    "qworker.jobs.x_account",
    "qworker.metrics.worker",
    "prometheus_client",
    "rich",
    "tweepy",
)

RUN_WORKER = """
import atexit, json, sys
out, sys.argv = sys.argv[1], ["qworker", *sys.argv[2:]]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from qworker.cli import main
main()
"""


def run_worker(cli: Cli, tmp_path: Path, *args: str) -> tuple[list[str], str]:
    """The modules a burst ``qworker work`` had imported when it exited (0), and its log."""
    out = tmp_path / "modules.json"
    command = [sys.executable, "-c", RUN_WORKER, str(out), "--redis-url", cli.redis_url]
    command += ["--namespace", cli.namespace, "work", "--burst", "--dry-run", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QWORKER_", "TWITTER_"))}
    env["PYTHONPATH"] = str(REPO_ROOT)  # tests.cli.jobtypes, from an empty directory
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "worker starting" in result.stderr
    names: list[str] = json.loads(out.read_text())
    return names, result.stderr


def test_a_drain_of_plugin_jobs_imports_no_unused_feature(
    cli: Cli, settings: Settings, tmp_path: Path
) -> None:
    enqueue(settings, cli_job(), cli_job())
    modules, _ = run_worker(cli, tmp_path, "-c", "4", "--import", "tests.cli.jobtypes")
    assert cli.json("stats")["total_processed"] == 2
    assert sorted(set(NOT_IMPORTED) & set(modules)) == []


def test_the_start_up_line_tells_the_tweet_limit_without_the_tweet_job(
    cli: Cli, tmp_path: Path
) -> None:
    modules, log = run_worker(cli, tmp_path, "--job-types", "tweet")
    assert "limits: tweet 3/hour 17/day" in log.splitlines()[0]
    assert "qworker.jobs.tweet" not in modules


def test_the_tweet_job_is_imported_with_its_first_job(cli: Cli, tmp_path: Path) -> None:
    cli.ok("enqueue", "tweet", "hello")
    modules, log = run_worker(cli, tmp_path)
    assert "dry run: would post 'hello'" in log
    assert "qworker.jobs.tweet" in modules
    assert cli.json("stats")["total_processed"] == 1


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"x_plan": "pay-per-use"},
        {"x_plan": "custom", "tweet_max_per_hour": 5, "tweet_min_interval_minutes": 2.5},
        {"tweet_max_per_day": "", "tweet_max_per_hour": 0},
    ],
)
def test_the_start_up_line_tells_the_limit_the_tweet_job_obeys(values: dict[str, object]) -> None:
    from qworker.cli.work import _builtin_tweet_limit
    from qworker.clients import ClientContainer
    from qworker.jobs.tweet import TweetJob, TweetJobParams

    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    params = TweetJobParams.model_construct(job_type="tweet")
    job = TweetJob(params, settings, ClientContainer(settings))
    assert _builtin_tweet_limit(settings) == job.get_rate_limit()
