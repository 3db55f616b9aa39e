"""``qworker stats``: one JSON object for scripts, tables for people."""

from __future__ import annotations

import asyncio
import json
import re
from urllib.parse import urlsplit, urlunsplit

import redis

from qworker.cli._render import format_time
from qworker.clock import ManualClock, SystemClock
from qworker.config import Settings
from qworker.keys import QueueKeys
from qworker.service import QueueService
from tests.cli.conftest import Cli, call, cli_job, enqueue, one_error_line, run_burst

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


def _table(cli: Cli) -> str:
    result = cli("stats", env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_one_shot_opens_with_the_redis_password_masked_and_the_namespace(cli: Cli) -> None:
    # The session's server lets the default user in with any password: the URL carries one.
    parts = urlsplit(cli.redis_url)
    cli.redis_url = urlunsplit(parts._replace(netloc=f"default:s3cret@{parts.netloc}"))
    first_line = _table(cli).splitlines()[0]
    masked = urlunsplit(parts._replace(netloc=f"default:***@{parts.netloc}"))
    assert first_line.startswith(f"{masked}  namespace {cli.namespace}  at "), first_line
    assert "s3cret" not in _table(cli)
    assert "Ctrl-C" not in first_line  # the one-shot view is not a watch


def _fake_worker(settings: Settings, worker_id: str, **fields: str | int) -> None:
    """A worker's record as a live worker writes it (heartbeat and counts)."""
    keys = QueueKeys(settings.namespace)
    now_ms = SystemClock().now_ms()
    record: dict[str, str | int] = {
        "host": "box",
        "pid": 4242,
        "started_at_ms": now_ms - 60_000,
        "last_seen_ms": now_ms,
        "jobs_done": 7,
        "concurrency": 4,
        "current_jobs": "[]",
        **fields,
    }
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    with client:
        client.hset(keys.worker(worker_id), mapping=record)
        client.zadd(keys.workers, {worker_id: now_ms})


def test_workers_show_running_and_prefetched_from_the_counts_not_the_heartbeat(
    cli: Cli, settings: Settings
) -> None:
    # The heartbeat's list (seconds old) still names 6 jobs; the counts written since say 2 + 3.
    stale = json.dumps([f"job{n}" for n in range(6)])
    _fake_worker(settings, "w1aaaaaaaaaa", current_jobs=stale, running=2, prefetched=3)
    [worker] = cli.json("stats")["workers"]
    assert (worker["running"], worker["prefetched"], worker["concurrency"]) == (2, 3, 4)
    assert len(worker["current_jobs"]) == 6  # still in --json: only additions
    table = _table(cli)
    header = re.search(r"^\s*worker .*$", table, re.MULTILINE)
    assert header is not None and header.group().split()[-2:] == ["running", "prefetched"]
    row = re.search(r"^\s*w1aaaaaa .*$", table, re.MULTILINE)
    assert row is not None, table
    assert row.group().split()[-2:] == ["2/4", "3"], row.group()
    assert "6/4" not in table and "job0" not in table


def test_pauses_show_what_until_when_and_the_jobs_held(cli: Cli, settings: Settings) -> None:
    async def pause() -> int:
        async with QueueService(settings=settings) as service:
            until_ms = (await service.pause(priority=1, for_s=7200)).until_ms
            await service.pause(job_type="tweet")
            assert until_ms is not None
            return until_ms

    until_ms = asyncio.run(pause())
    # What a worker does when a paused type's jobs reach the front of their lists.
    with redis.Redis.from_url(settings.redis_url) as client:
        client.zadd(QueueKeys(settings.namespace).held("tweet"), {"a": 1, "b": 2, "c": 3})

    stats = cli.json("stats")
    assert stats["pauses"] == [
        {"priority": 1, "job_type": None, "until_ms": until_ms, "held_jobs": 0},
        {"priority": None, "job_type": "tweet", "until_ms": None, "held_jobs": 3},
    ]
    table = _table(cli)
    paused = table[table.index("Paused") : table.index("Totals")]
    ends = re.escape(f"{format_time(until_ms)} (in 1h 59m)")
    assert re.search(rf"priority 1 \(urgent\)\s+{ends}\s+- *$", paused, re.MULTILINE), paused
    assert re.search(r"job type tweet\s+resumed\s+3 jobs *$", paused, re.MULTILINE), paused
    assert re.search(r"priority 1 \(urgent\)\s+0\s+paused: workers skip it", table), table


def test_nothing_paused_says_so(cli: Cli) -> None:
    assert re.search(r"Paused\s+nothing is paused", _table(cli))


def test_canceled_jobs_are_counted_with_the_totals(cli: Cli, settings: Settings) -> None:
    [job_id] = enqueue(settings, cli_job())

    async def cancel() -> None:
        async with QueueService(settings=settings) as service:
            assert (await service.cancel_job(job_id)).outcome == "canceled"

    asyncio.run(cancel())
    assert cli.json("stats")["canceled"] == 1
    assert re.search(r"^\s*canceled\s+1 *$", _table(cli), re.MULTILINE)


def test_jobs_waiting_for_others_are_counted(cli: Cli, settings: Settings) -> None:
    from qworker.flows import chain

    async def add(service: QueueService) -> list[str]:
        return await service.add_flow(chain(cli_job(), cli_job(), cli_job()))

    call(settings, add)
    stats = cli.json("stats")
    assert (stats["waiting"], stats["total_jobs"]) == (2, 1)
    assert re.search(r"^\s*waiting\s+2\s+for other jobs", _table(cli), re.MULTILINE)

    run_burst(settings)
    assert cli.json("stats")["waiting"] == 0
