"""``qworker dlq list|show|requeue``: newest first, whole records, requeue by id or all."""

from __future__ import annotations

import json

import pytest

from qworker.clock import ManualClock, SystemClock
from qworker.config import Settings
from tests.cli.conftest import Cli, cli_job, enqueue, one_error_line, run_burst


@pytest.fixture
def dead(settings: Settings) -> list[str]:
    """Three dead jobs, buried one after the other (oldest first)."""
    job_ids = []
    start_ms = SystemClock().now_ms()
    for index, priority in enumerate((2, 3, 4)):
        message = f"[red]failure {index}[/red] " + "very long explanation " * 10
        [job_id] = enqueue(
            settings, cli_job(outcome="permanent", message=message), priority=priority
        )
        run_burst(settings, ManualClock(start_ms + index))  # fails at distinct times
        job_ids.append(job_id)
    return job_ids


def test_list_json_is_newest_first(cli: Cli, dead: list[str]) -> None:
    records = cli.json("dlq", "list")
    assert [record["id"] for record in records] == dead[::-1]
    assert [record["priority"] for record in records] == [4, 3, 2]
    assert records[0]["attempts"] == 1
    assert records[0]["error"]["type"] == "PermanentJobError"
    assert records[0]["error"]["message"].startswith("[red]failure 2[/red]")


def test_list_limit(cli: Cli, dead: list[str]) -> None:
    assert [r["id"] for r in cli.json("dlq", "list", "--limit", "2")] == dead[:0:-1]
    one_error_line(cli("dlq", "list", "--limit", "0"), 2, "--limit")


def test_list_table_fits_the_width_and_keeps_text_literal(cli: Cli, dead: list[str]) -> None:
    result = cli("dlq", "list", env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Dead letter (3)")
    assert all(len(line) <= 100 for line in lines)
    rows = [line for line in lines if line.startswith(tuple(dead))]
    assert [row.split()[0] for row in rows] == dead[::-1]
    assert all(row.rstrip().endswith("…") for row in rows)  # the error is cut to fit
    assert "[red]failure 2[/red]" in rows[0]


def test_list_of_an_empty_queue(cli: Cli) -> None:
    assert cli.json("dlq", "list") == []
    assert "empty" in cli.ok("dlq", "list")


def test_show_prints_one_whole_record(cli: Cli, dead: list[str]) -> None:
    record = cli.json("dlq", "show", dead[0])
    assert record["id"] == dead[0]
    assert record["job_type"] == "cli_job"
    assert record["error"]["traceback"]
    table = cli.ok("dlq", "show", dead[0], input=None)
    assert "Payload" in table and "Traceback of the last attempt" in table
    assert "[red]failure 0[/red]" in table


def test_show_of_an_unknown_id_is_exit_1(cli: Cli, dead: list[str]) -> None:
    one_error_line(cli("dlq", "show", "nope"), 1, "not in the dead-letter queue: nope")


def test_requeue_by_id_resets_attempts(cli: Cli, dead: list[str]) -> None:
    result = cli("dlq", "requeue", dead[0], dead[2])
    assert (result.exit_code, result.stdout) == (0, "requeued 2 job(s)\n")
    stats = cli.json("stats")
    assert (stats["dead_letter"], stats["total_jobs"]) == (1, 2)
    assert stats["queues"]["jobs_priority_2"] == 1 and stats["queues"]["jobs_priority_4"] == 1
    assert [r["id"] for r in cli.json("dlq", "list")] == [dead[1]]


def test_requeue_names_missing_ids_and_exits_1(cli: Cli, dead: list[str]) -> None:
    result = cli("dlq", "requeue", dead[1], "nope", "gone", "--json")
    assert result.exit_code == 1
    assert result.stderr == "error: not in the dead-letter queue: nope, gone\n"
    assert json.loads(result.stdout) == {"requeued": [dead[1]], "missing": ["nope", "gone"]}


def test_requeue_all_onto_one_priority(cli: Cli, dead: list[str]) -> None:
    assert cli.ok("dlq", "requeue", "--all", "--priority", "1") == "requeued 3 job(s)\n"
    stats = cli.json("stats")
    assert (stats["dead_letter"], stats["queues"]["jobs_priority_1"]) == (0, 3)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [([], "--all"), (["x", "--all"], "not both"), (["x", "--priority", "5"], "--priority")],
)
def test_requeue_usage_errors_exit_2(cli: Cli, args: list[str], fragment: str) -> None:
    one_error_line(cli("dlq", "requeue", *args), 2, fragment)


def test_show_and_requeue_take_a_prefix(cli: Cli, dead: list[str]) -> None:
    assert cli.json("dlq", "show", dead[0][:8])["id"] == dead[0]
    assert cli.ok("dlq", "requeue", dead[1][:6], dead[2]) == "requeued 2 job(s)\n"
    assert [r["id"] for r in cli.json("dlq", "list")] == [dead[0]]
    one_error_line(cli("dlq", "show", "a b"), 2, "not a job id")
