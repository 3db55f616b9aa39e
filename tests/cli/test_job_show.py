"""``qworker job show`` in every state a job reaches, and ``qworker jobs list`` page by page.

States are set up through the core (a claim and a defer stand for a worker mid-job); the CLI is
judged by its exit code, its ``--json`` and the lines people read.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from qworker.config import Settings
from qworker.service import QueueService
from tests.cli.conftest import Cli, call, cli_job, enqueue, run_burst


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def show(cli: Cli, job_id: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The job's ``--json`` and its human table as {field: value}."""
    record = cli.json("job", "show", job_id)
    result = cli("job", "show", job_id, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    fields = {}
    for line in result.stdout.splitlines():
        name, _, value = line.partition("  ")
        if value.strip():
            fields[name.strip()] = value.strip()
    return record, fields


def shown_countdown_s(text: str) -> int:
    """The seconds in a shown ``(in 1m 29s)``."""
    match = re.search(r"\(in ((?:\d+[hms] ?)+)\)", text)
    assert match, text
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(part[:-1]) * units[part[-1]] for part in match[1].split())


def assert_countdown(cli: Cli, job_id: str, field: str, until_ms: int) -> str:
    """Show the job, and check its ``field`` counts down to ``until_ms`` from the moment it was
    shown (whenever that was: a slow machine may take seconds to get there)."""
    before_ms = now_ms()
    _, fields = show(cli, job_id)
    after_ms = now_ms()
    shown_s = shown_countdown_s(fields[field])
    assert round((until_ms - after_ms) / 1000) <= shown_s <= round((until_ms - before_ms) / 1000)
    return fields[field]


def claim(settings: Settings) -> tuple[str, str]:
    """Claim the next job as worker 'w' would; returns (job id, owner token)."""

    async def go(service: QueueService) -> tuple[str, str]:
        reply = await service.run(service.scripts.claim("w", None, 600_000, 1, "t"))
        (job,) = reply.jobs
        return job.id, f"w:{job.claims}"

    return call(settings, go)


def test_queued_shows_its_place_and_scheduled_its_due_time(cli: Cli, settings: Settings) -> None:
    first, second = enqueue(settings, cli_job(), cli_job(), priority=2)
    later = cli.ok("enqueue", "json", '{"job_type": "tweet", "content": "later"}', "--delay", "1h")
    later = later.strip()

    record, fields = show(cli, second)
    assert (record["state"], record["waiting"]["reason"]) == ("queued", "place 2 in priority 2")
    assert fields["state"] == "queued"
    assert fields["waiting"] == "place 2 in priority 2"
    assert fields["attempts"] == "0 of 4"
    assert fields["enqueued"].endswith("Z (now)") or "s ago)" in fields["enqueued"]

    record, fields = show(cli, later[:8])  # a prefix stands for the id
    assert (record["id"], record["state"]) == (later, "scheduled")
    due_ms = record["waiting"]["until_ms"]
    assert abs(due_ms - (now_ms() + 3_600_000)) < 10_000
    assert fields["waiting"].startswith("scheduled; due at 20")
    assert "(in 59m" in fields["waiting"] or "(in 1h)" in fields["waiting"]
    assert fields["run at"] == fields["waiting"].removeprefix("scheduled; due at ")
    assert record["finished"] is False and first != second


def test_running_shows_its_worker_and_parked_when_the_limit_reopens(
    cli: Cli, settings: Settings
) -> None:
    [job_id] = enqueue(settings, cli_job())
    assert claim(settings)[0] == job_id
    record, fields = show(cli, job_id)
    assert (record["state"], record["worker_id"], record["waiting"]) == ("running", "w", None)
    assert fields["worker"] == "w" and "started" in fields and "waiting" not in fields

    [parked] = enqueue(settings, cli_job())
    _, owner = claim(settings)
    reopens_ms = now_ms() + 90_000

    async def park(service: QueueService) -> int:
        step = service.scripts.defer(
            service.keys.parked, parked, owner, reopens_ms, None, "", now_ms(),
            state="parked", keep_ms=60_000, rate_key="x-account",
        )  # fmt: skip
        return int(await service.run(step))

    assert call(settings, park) == 1
    record, fields = show(cli, parked)
    assert (record["state"], record["rate_key"]) == ("parked", "x-account")
    assert record["waiting"]["until_ms"] == reopens_ms
    assert fields["waiting"].startswith("rate limit 'x-account' closed; reopens at 20")
    assert_countdown(cli, parked, "waiting", reopens_ms)


def test_retry_dead_and_done_show_error_and_result(cli: Cli, settings: Settings) -> None:
    retrying, dead = enqueue(
        settings,
        cli_job(outcome="retry", message="X said 503", retry_after_s=600),
        cli_job(outcome="permanent", message="[red]suspended[/red]"),
    )
    done = cli.ok("enqueue", "tweet", "Release 1.2 is out").strip()
    burst_from_ms = now_ms()
    run_burst(settings)
    burst_to_ms = now_ms()

    record, fields = show(cli, retrying)
    assert (record["state"], record["attempts"], record["error"]["message"]) == (
        "retry",
        1,
        "X said 503",
    )
    assert fields["waiting"].startswith("retry after attempt 1 failed; due at 20")
    due_ms = record["waiting"]["until_ms"]
    assert burst_from_ms + 600_000 <= due_ms <= burst_to_ms + 600_000  # the job's retry-after
    assert_countdown(cli, retrying, "waiting", due_ms)
    assert fields["error"] == "RetryableJobError: X said 503"
    assert fields["attempts"] == "1 of 4"

    record, fields = show(cli, dead)
    assert record["state"] == "dead" and record["error"]["traceback"]
    assert fields["error"] == "PermanentJobError: [red]suspended[/red]"  # literal, not markup
    assert "Traceback" not in cli.ok("job", "show", dead)
    assert "Traceback of the last failed attempt" in cli.ok("job", "show", dead, "--traceback")

    record, fields = show(cli, done)
    assert (record["state"], record["result"]) == ("done", {"tweet_id": "dry-run-1"})
    assert record["result_json"] == '{"tweet_id": "dry-run-1"}' and record["finished"] is True
    assert fields["checkpoint tweet_id"] == "dry-run-1"
    assert "finished" in fields and "waiting" not in fields
    text = cli.ok("job", "show", done)
    assert 'Result\n{\n  "tweet_id": "dry-run-1"\n}' in text


def test_paused_and_canceled(cli: Cli, settings: Settings) -> None:
    cli.ok("pause", "--job-type", "tweet")
    held = cli.ok("enqueue", "tweet", "held back").strip()
    run_burst(settings)  # the worker sets it aside
    record, fields = show(cli, held)
    assert (record["state"], record["waiting"]["until_ms"]) == ("paused", None)
    assert fields["waiting"] == "job type tweet is paused; until resumed"

    [queued] = enqueue(settings, cli_job())
    assert cli.ok("job", "cancel", queued) == f"canceled job {queued} (was queued)\n"
    record, fields = show(cli, queued)
    assert (record["state"], record["waiting"], record["finished"]) == ("canceled", None, True)
    assert record["finished_at_ms"] is not None and "finished" in fields


def test_a_table_fits_a_narrow_terminal(cli: Cli, settings: Settings) -> None:
    [job_id] = enqueue(settings, cli_job(message="long " * 40))
    result = cli("job", "show", job_id, env={"COLUMNS": "70"})
    assert result.exit_code == 0, result.stderr
    assert all(len(line) <= 70 for line in result.stdout.splitlines())
    assert result.stdout.startswith(f"Job {job_id}")


# -- jobs list -------------------------------------------------------------------------------


def test_jobs_list_pages_with_a_cursor(cli: Cli, settings: Settings) -> None:
    low = enqueue(settings, *[cli_job() for _ in range(3)], priority=4)
    urgent = enqueue(settings, cli_job(), cli_job(), priority=1)
    seen: list[str] = []
    args = ["jobs", "list", "--limit", "2"]
    pages = 0
    while True:
        result = cli(*args, "--json")
        assert result.exit_code == 0, result.stderr
        page = json.loads(result.stdout)
        seen += [job["id"] for job in page["jobs"]]
        pages += 1
        if page["next_cursor"] is None:
            assert result.stderr == ""
            break
        hint = "more: qworker jobs list --state queued --limit 2 --json --cursor "
        assert result.stderr == hint + page["next_cursor"] + "\n"
        args = ["jobs", "list", "--limit", "2", "--cursor", page["next_cursor"]]
    assert seen == urgent + low and pages == 3

    only = cli.json("jobs", "list", "--priority", "4", "--type", "cli_job")
    assert [job["id"] for job in only["jobs"]] == low and only["next_cursor"] is None
    assert cli.json("jobs", "list", "--type", "tweet") == {"jobs": [], "next_cursor": None}


def test_jobs_list_table_and_its_more_line(cli: Cli, settings: Settings) -> None:
    ids = enqueue(settings, *[cli_job(message=f"[bold]{n}[/bold]") for n in range(3)])
    result = cli("jobs", "list", "-n", "2", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Queued jobs (2, more with --cursor)")
    rows = [line for line in lines if line.startswith(tuple(ids))]
    assert [row.split()[0] for row in rows] == ids[:2]  # full ids, oldest first
    assert "[bold]0[/bold]" in rows[0]
    [more] = result.stderr.splitlines()
    cursor = more.rsplit(" ", 1)[1]
    assert more == f"more: qworker jobs list --state queued --limit 2 --cursor {cursor}"
    rest = cli.ok("jobs", "list", "-n", "2", "--cursor", cursor)
    assert ids[2] in rest and ids[0] not in rest

    posted = cli.ok("enqueue", "tweet", "posted").strip()
    run_burst(settings)
    done = cli("jobs", "list", "--state", "done", env={"COLUMNS": "200"})
    assert done.stdout.startswith("Done jobs (4)") and done.stderr == ""
    [row] = [line for line in done.stdout.splitlines() if line.startswith(posted)]
    assert row.rstrip().endswith('result {"tweet_id": "dry-run-1"}')
    assert "none queued" in cli.ok("jobs", "list")


@pytest.mark.parametrize("state", ["waiting", "running", "dead", "canceled", "paused"])
def test_jobs_list_of_an_empty_state(cli: Cli, state: str) -> None:
    assert cli.json("jobs", "list", "--state", state) == {"jobs": [], "next_cursor": None}
