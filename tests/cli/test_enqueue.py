"""``qworker enqueue tweet|json``: the id on stdout, the record with --json, one line on errors."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.cli.conftest import Cli, one_error_line
from tests.fresh_python import run_fresh


def test_tweet_prints_only_the_job_id(cli: Cli) -> None:
    result = cli("enqueue", "tweet", "hello from cron", "--priority", "2")
    assert result.exit_code == 0, result.stderr
    job_id = result.stdout.strip()
    assert result.stdout == job_id + "\n" and len(job_id) == 32
    assert result.stderr == ""
    stats = cli.json("stats")
    assert stats["queues"]["jobs_priority_2"] == 1
    assert stats["total_jobs"] == 1


def test_tweet_json_prints_the_whole_record(cli: Cli) -> None:
    record = cli.json(
        "enqueue", "tweet", "with media", "-p", "1", "--media-id", "123", "--media-id", "456"
    )
    assert record["priority"] == 1
    assert record["job_type"] == "tweet"
    assert record["attempts"] == 0
    assert json.loads(record["payload"]) == {
        "job_type": "tweet",
        "content": "with media",
        "media_ids": ["123", "456"],
        "reply_to": None,
    }


def test_tweet_text_from_stdin_keeps_markup_literal(cli: Cli) -> None:
    record = cli.json("enqueue", "tweet", "-", input="[red]not markup[/red]\n")
    assert json.loads(record["payload"])["content"] == "[red]not markup[/red]"
    assert record["priority"] == 3


def test_delay_makes_a_scheduled_job(cli: Cli) -> None:
    before_ms = time.time_ns() // 1_000_000
    record = cli.json("enqueue", "tweet", "later", "--delay", "1h30m")
    assert record["run_at_ms"] - before_ms >= 5_400_000
    stats = cli.json("stats")
    assert (stats["scheduled"], stats["total_jobs"]) == (1, 0)


def test_at_makes_a_job_ready_at_that_time(cli: Cli) -> None:
    at = datetime.now(UTC) + timedelta(days=1)
    record = cli.json("enqueue", "tweet", "tomorrow", "--at", at.isoformat())
    assert record["run_at_ms"] == int(at.timestamp() * 1000)
    assert cli.json("stats")["scheduled"] == 1


def test_json_enqueues_any_registered_type(cli: Cli) -> None:
    job = json.dumps({"job_type": "tweet", "content": "as json"})
    result = cli("enqueue", "json", job, "--priority", "4")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.strip()) == 32
    assert cli.json("stats")["queues"]["jobs_priority_4"] == 1


def test_json_loads_plugins_from_import_and_from_settings(cli: Cli) -> None:
    job = json.dumps({"job_type": "cli_job", "outcome": "ok"})
    imported = cli("enqueue", "json", job, "--import", "tests.cli.jobtypes")
    assert imported.exit_code == 0, imported.stderr
    from_env = cli("enqueue", "json", job, env={"QWORKER_JOB_MODULES": "tests.cli.jobtypes"})
    assert from_env.exit_code == 0, from_env.stderr
    assert cli.json("stats")["total_jobs"] == 2


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["tweet", "hi", "--priority", "7"], ["--priority"]),
        (["tweet", "x" * 281], ["content has weighted length 281 > 280"]),
        (["tweet", "   "], ["content is only whitespace"]),
        (["tweet", "hi", "--media-id", "abc"], ["media ids are digits only"]),
        (["tweet", "hi", "--delay", "5 parsecs"], ["cannot read the duration"]),
        (["tweet", "hi", "--at", "tomorrow"], ["cannot read the time"]),
        (["tweet", "hi", "--delay", "1m", "--at", "2030-01-01T00:00Z"], ["not both"]),
        (["json", '{"job_type": "tweet"'], ["the job is not valid JSON"]),
        (["json", "[1, 2]"], ["must be a JSON object"]),
        (["json", '{"content": "hi"}'], ['no "job_type"']),
        (["json", '{"job_type": "nope"}'], ["unknown job type 'nope'", "--import"]),
        (["json", '{"job_type": "tweet", "content": "hi", "pri": 1}'], ["pri: unknown field"]),
        (["json", '{"job_type": "x"}', "--import", "no_such_module"], ["cannot import"]),
        (["tweet"], ["Missing argument"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli: Cli, args: list[str], fragments: list[str]) -> None:
    one_error_line(cli("enqueue", *args), 2, *fragments)
    assert cli.json("stats")["total_jobs"] == 0


def test_unreachable_redis_is_exit_1_with_the_password_masked(cli: Cli) -> None:
    result = cli.raw("--redis-url", "redis://:s3cret@127.0.0.1:1/0", "enqueue", "tweet", "hi")
    line = one_error_line(result, 1, "cannot reach Redis at redis://:***@127.0.0.1:1/0")
    assert "s3cret" not in line


def test_a_malformed_redis_url_is_exit_2(cli: Cli) -> None:
    one_error_line(
        cli.raw("--redis-url", "http://example.com", "enqueue", "tweet", "hi"), 2, "Redis URL"
    )


def test_validation_comes_before_connecting(cli: Cli) -> None:
    result = cli.raw("--redis-url", "redis://127.0.0.1:1/0", "enqueue", "tweet", "x" * 300)
    one_error_line(result, 2, "content has weighted length 300 > 280")


def test_enqueue_imports_no_rich_tweepy_or_worker(redis_url: str, namespace: str) -> None:
    """Cron lines run it often: it must not pay for what it does not use."""
    code = f"""
import sys
from qworker.cli import main
sys.argv = ["qworker", "--redis-url", {redis_url!r}, "--namespace", {namespace!r},
            "enqueue", "tweet", "cold start"]
try:
    main()
except SystemExit as exit:
    assert exit.code == 0, exit.code
heavy = ("rich", "tweepy", "requests", "qworker.worker", "qworker.heartbeat", "fakeredis")
print(sorted(name for name in sys.modules if name.startswith(heavy)))
"""
    job_id, imported = run_fresh(code).strip().splitlines()
    assert len(job_id) == 32
    assert imported == "[]"


def test_an_unreplicated_durable_enqueue_prints_the_id_and_exits_1(cli: Cli) -> None:
    env = {"QWORKER_DURABLE_REPLICAS": "1", "QWORKER_DURABLE_TIMEOUT_MS": "50"}
    result = cli("enqueue", "tweet", "no replica here", env=env)
    assert result.exit_code == 1
    job_id = result.stdout.strip()
    assert len(job_id) == 32
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and job_id in line and "replica" in line
    assert cli.json("stats")["total_jobs"] == 1


def test_an_id_makes_a_retried_enqueue_queue_nothing(cli: Cli) -> None:
    first = cli.json("enqueue", "tweet", "Order 42 shipped", "--id", "order-42", "-p", "2")
    assert (first["id"], first["created"], first["priority"]) == ("order-42", True, 2)
    again = cli("enqueue", "tweet", "Order 42 shipped", "--id", "order-42")
    assert again.exit_code == 0, again.stderr
    assert (again.stdout, again.stderr) == ("order-42\n", "")
    third = cli.json("enqueue", "tweet", "changed text", "--id", "order-42")
    assert (third["id"], third["created"], third["priority"]) == ("order-42", False, 2)
    assert json.loads(third["payload"])["content"] == "Order 42 shipped"  # the first one's
    assert cli.json("stats")["total_jobs"] == 1


def test_a_new_job_says_created_in_json(cli: Cli) -> None:
    record = cli.json("enqueue", "json", '{"job_type": "tweet", "content": "hi"}')
    assert record["created"] is True and len(record["id"]) == 32
