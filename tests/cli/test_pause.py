"""``qworker pause|resume``: a paused priority or job type waits, stats and list_pauses show it,
and a resume lets the workers take it again."""

from __future__ import annotations

import re
import time

from qworker.config import Settings
from qworker.models import Pause
from qworker.service import QueueService
from tests.cli.conftest import Cli, call, cli_job, enqueue, one_error_line, run_burst


def pauses(settings: Settings) -> list[Pause]:
    async def go(service: QueueService) -> list[Pause]:
        return await service.list_pauses()

    return call(settings, go)


def test_a_priority_paused_for_two_hours_waits_until_resumed(cli: Cli, settings: Settings) -> None:
    held, other = enqueue(settings, cli_job(), priority=2) + enqueue(settings, cli_job())
    asked_ms = time.time_ns() // 1_000_000
    line = cli.ok("pause", "--priority", "2", "--for", "2h")
    match = re.fullmatch(r"paused priority 2 until (\S+Z) \(in 2h\)\n", line)
    assert match, line
    [pause] = pauses(settings)
    assert (pause.priority, pause.job_type) == (2, None)
    assert pause.until_ms is not None and 0 <= pause.until_ms - asked_ms - 7_200_000 < 5_000
    stats = cli.json("stats")
    assert stats["pauses"] == [pause.model_dump(mode="json")]

    run_burst(settings)
    shown = cli.json("job", "show", held)
    assert (shown["state"], shown["waiting"]["until_ms"]) == ("queued", pause.until_ms)
    assert shown["waiting"]["reason"] == "priority 2 is paused (place 1 in priority 2)"
    assert cli.json("job", "show", other)["state"] == "done"

    assert cli.ok("resume", "-p", "2") == "resumed priority 2\n"
    assert pauses(settings) == [] and cli.json("stats")["pauses"] == []
    run_burst(settings)
    assert cli.json("job", "show", held)["state"] == "done"
    one_error_line(cli("resume", "-p", "2"), 1, "priority 2 is not paused")


def test_a_job_type_paused_until_resumed_holds_its_jobs(cli: Cli, settings: Settings) -> None:
    paused = cli.json("pause", "--job-type", "cli_job")
    assert paused == {"priority": None, "job_type": "cli_job", "until_ms": None, "held_jobs": 0}
    assert cli.ok("pause", "-t", "tweet") == "paused job type tweet until resumed\n"
    ids = enqueue(settings, cli_job(), cli_job())
    run_burst(settings)
    listed = cli.json("jobs", "list", "--state", "paused")
    assert [job["id"] for job in listed["jobs"]] == ids
    held = {p.target: p.held_jobs for p in pauses(settings)}
    assert held == {"job type cli_job": 2, "job type tweet": 0}

    resumed = cli("resume", "--job-type", "cli_job", "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.stdout.count('"resumed": true') == 1
    run_burst(settings)
    assert [cli.json("job", "show", job_id)["state"] for job_id in ids] == ["done", "done"]
    not_paused = cli("resume", "-t", "cli_job", "--json")
    assert not_paused.exit_code == 1 and '"resumed": false' in not_paused.stdout
    assert not_paused.stderr == "error: job type cli_job is not paused\n"


def test_pause_needs_one_target_and_a_readable_time(cli: Cli, settings: Settings) -> None:
    for args in ([], ["-p", "1", "-t", "tweet"]):
        one_error_line(cli("pause", *args), 2, "give --priority or --job-type")
        one_error_line(cli("resume", *args), 2, "give --priority or --job-type")
    one_error_line(cli("pause", "-p", "1", "--for", "garbage"), 2, "--for", "'garbage'", "2h")
    one_error_line(cli("pause", "-p", "1", "--for", "0s"), 2, "--for", "not a positive")
    one_error_line(cli("pause", "-p", "9"), 2, "--priority")
    assert pauses(settings) == []
