"""``qworker stats``: one JSON object for scripts, tables for people."""

from __future__ import annotations

from qworker.clock import ManualClock, SystemClock
from qworker.config import Settings
from tests.cli.conftest import Cli, cli_job, enqueue, one_error_line, run_burst

SEED_KEYS = {"total_jobs", "queues", "total_processed"}
MORE_KEYS = {
    "total_failed",
    "total_dead",
    "retry",
    "retry_due",
    "scheduled",
    "parked",
    "dead_letter",
    "in_flight",
    "rate_limits",
    "workers",
}


def test_json_has_the_seed_shape_plus_the_rest(cli: Cli) -> None:
    stats = cli.json("stats")
    assert set(stats) >= SEED_KEYS | MORE_KEYS
    assert stats["queues"] == {f"jobs_priority_{p}": 0 for p in (1, 2, 3, 4)}
    assert (stats["total_jobs"], stats["total_processed"]) == (0, 0)
    assert stats["rate_limits"] == [] and stats["workers"] == []


def test_json_counts_every_queue(cli: Cli, settings: Settings) -> None:
    # An hour ago, by the worker's clock: its retries are due for everyone else.
    an_hour_ago = ManualClock(SystemClock().now_ms() - 3_600_000)
    enqueue(settings, cli_job(), cli_job(outcome="permanent"), cli_job(outcome="retry"))
    run_burst(settings, an_hour_ago)
    enqueue(settings, cli_job(), priority=1)
    cli.ok("enqueue", "tweet", "later", "--delay", "10m")
    stats = cli.json("stats")
    assert stats["queues"]["jobs_priority_1"] == 1
    assert (stats["total_jobs"], stats["scheduled"], stats["in_flight"]) == (1, 1, 0)
    assert (stats["retry"], stats["retry_due"], stats["dead_letter"]) == (1, 1, 1)
    assert (stats["total_processed"], stats["total_failed"], stats["total_dead"]) == (1, 2, 1)
    [limit] = stats["rate_limits"]
    assert limit["rate_key"] == "cli_job"
    assert (limit["max_per_hour"], limit["max_per_day"], limit["used_last_day"]) == (100, 1000, 3)


def test_tables_name_every_section(cli: Cli, settings: Settings) -> None:
    enqueue(settings, cli_job(), cli_job(outcome="permanent"))
    run_burst(settings)
    result = cli("stats", env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.stderr
    for heading in ("Queues", "Totals", "Rate limits", "Workers", "priority 1 (urgent)"):
        assert heading in result.stdout
    assert "no live workers" in result.stdout
    assert "\x1b[" not in result.stdout  # not a terminal: plain text
    assert result.stderr == ""


def test_unreachable_redis_is_one_line_exit_1(cli: Cli) -> None:
    one_error_line(cli.raw("--redis-url", "redis://127.0.0.1:1/0", "stats"), 1, "cannot reach")
    one_error_line(cli.raw("--redis-url", "redis://127.0.0.1:1/0", "stats", "--json"), 1)


def test_watch_draws_tables_so_json_is_refused(cli: Cli) -> None:
    one_error_line(cli("stats", "--watch", "--json"), 2, "--watch")
    one_error_line(cli("stats", "--watch", "--interval", "0"), 2, "--interval")
