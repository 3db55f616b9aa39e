"""The command line of workflows: enqueue --after, job show's links, job tree, dlq requeue."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import uuid4

import pytest
from typer.testing import CliRunner, Result

from qworker.cli import app


class Cli:
    def __init__(self, redis_url: str) -> None:
        self.env = {
            "QWORKER_REDIS_URL": redis_url,
            "QWORKER_NAMESPACE": f"t{uuid4().hex[:12]}",
            "QWORKER_JOB_MODULES": "tests.flows.jobtypes",
            "COLUMNS": "200",
        }
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, list(args), env=self.env, catch_exceptions=False)

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.exit_code == 0, result.stderr
        return result.stdout


@pytest.fixture
def cli(redis_url: str) -> Cli:
    return Cli(redis_url)


def job(log: Path, name: str, **params: object) -> str:
    return json.dumps({"job_type": "flowstep", "log_path": str(log), "name": name, **params})


def test_after_an_unknown_id_exits_2_and_queues_nothing(cli: Cli, log: Path) -> None:
    result = cli("enqueue", "json", job(log, "x"), "--after", "nosuchjob1")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "no job nosuchjob1 to wait for" in result.stderr
    assert json.loads(cli.ok("stats", "--json"))["total_jobs"] == 0


def test_bad_dependency_options_exit_2(cli: Cli, log: Path) -> None:
    for args in (["--dep-timeout", "1h"], ["--after", "a,b c"], ["--on-dep-fail", "skip"]):
        result = cli("enqueue", "json", job(log, "x"), *args)
        assert result.exit_code == 2, (args, result.stdout)
        assert "Traceback" not in result.stderr


def test_show_tree_and_repair_from_the_command_line(cli: Cli, log: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.touch()
    first = cli.ok("enqueue", "json", job(log, "a", fail_while=str(broken))).strip()
    second = cli.ok("enqueue", "json", job(log, "b"), "--after", first).strip()
    third = cli.ok("enqueue", "json", job(log, "c"), "--after", f"{first},{second}").strip()

    shown = json.loads(cli.ok("job", "show", third, "--json"))
    assert shown["state"] == "waiting"
    assert [(d["id"], d["state"]) for d in shown["dependencies"]] == [
        (first, "queued"),
        (second, "waiting"),
    ]
    cli.ok("work", "--burst", "--job-types", "flowstep")
    text = cli.ok("job", "show", second)
    assert f"dependency {first} dead" in text and "waited on by" in text
    tree = cli.ok("job", "tree", second)
    assert tree.count("flowstep dead") == 4 and "(see above)" in tree  # c under a and b

    broken.unlink()
    cli.ok("dlq", "requeue", first)
    assert json.loads(cli.ok("job", "show", third, "--json"))["state"] == "waiting"
    cli.ok("work", "--burst", "--job-types", "flowstep")
    graph = json.loads(cli.ok("job", "tree", first, "--json"))
    assert {j["id"]: j["state"] for j in graph["jobs"]} == dict.fromkeys(
        (first, second, third), "done"
    )


def test_after_with_a_delay_is_scheduled_once_its_dependency_is_done(cli: Cli, log: Path) -> None:
    first = cli.ok("enqueue", "json", job(log, "a")).strip()
    later = cli.ok("enqueue", "json", job(log, "b"), "--after", first, "--delay", "1h").strip()
    assert json.loads(cli.ok("job", "show", later, "--json"))["state"] == "waiting"
    cli.ok("work", "--burst", "--job-types", "flowstep")
    shown = json.loads(cli.ok("job", "show", later, "--json"))
    assert shown["state"] == "scheduled" and shown["waiting"]["until_ms"] == shown["run_at_ms"]
    for extra, words in (
        (["--unique-key", "k"], "--after takes no --media or unique key yet"),
        (["--delay", "1h", "--at", "2999-01-01T00:00:00Z"], "--delay"),
    ):
        result = cli("enqueue", "json", job(log, "c"), "--after", first, *extra)
        assert result.exit_code == 2 and words in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
