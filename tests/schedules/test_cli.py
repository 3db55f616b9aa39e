"""``qworker schedule`` by exit code and ``--json``, on the session's real redis-server; bad
input exits 2 with one line and stores nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.cli.conftest import Cli, _isolated  # noqa: F401  (_isolated: autouse)

JOB = '{"job_type": "origin", "note": "hi"}'
IMPORT = ("--import", "tests.schedules.jobtypes")


@pytest.fixture
def cli(redis_url: str, namespace: str) -> Cli:
    return Cli(CliRunner(), redis_url, namespace)


def names(cli: Cli) -> list[str]:
    return [s["name"] for s in cli.json("schedule", "list")]


def test_add_update_list_show_pause_resume_trigger_remove(cli: Cli) -> None:
    added = cli(
        "schedule", "add", "digest", "--cron", "0 9 * * MON", "--tz", "Europe/Berlin", *IMPORT, JOB
    )
    assert added.exit_code == 0, added.stderr
    assert added.stdout.startswith("added digest: 0 9 * * MON (Europe/Berlin), next fire ")
    updated = cli(
        "schedule",
        "add",
        "digest",
        "--cron",
        "0 9 * * MON",
        "--tz",
        "Europe/Berlin",
        "-p",
        "1",
        *IMPORT,
        JOB,
    )
    assert updated.stdout.startswith("updated digest")
    [listed] = cli.json("schedule", "list")
    assert (listed["name"], listed["priority"], listed["paused"]) == ("digest", 1, False)
    assert listed["next_fire_local"].endswith(("CET", "CEST")) and listed["next_fire"].endswith("Z")
    assert cli.json("schedule", "show", "digest")["params"]["note"] == "hi"

    assert cli("schedule", "pause", "digest").stdout == "paused digest\n"
    assert cli.json("schedule", "show", "digest")["paused"] is True
    assert cli("schedule", "resume", "digest").stdout == "resumed digest\n"

    triggered = cli("schedule", "trigger", "digest")
    assert triggered.exit_code == 0
    job = cli.json("job", "show", triggered.stdout.strip())
    assert job["schedule"] == "digest" and job["scheduled_for_ms"] > 0
    shown = cli("job", "show", triggered.stdout.strip())
    assert "schedule" in shown.stdout and "scheduled for" in shown.stdout

    table = cli("schedule", "list", env={"COLUMNS": "160"})
    assert "digest" in table.stdout and "Europe/Berlin" in table.stdout
    assert cli("schedule", "remove", "digest").stdout == "removed digest\n"
    gone = cli("schedule", "remove", "digest")
    assert gone.exit_code == 1 and "no schedule named 'digest'" in gone.stderr
    assert names(cli) == []


def test_preview_marks_dst_and_needs_no_redis(cli: Cli) -> None:
    result = cli.raw(
        "--redis-url", "redis://127.0.0.1:1/0",
        "schedule", "preview", "30 2 * * *", "--tz", "Europe/Berlin",
        "--from", "2026-03-27T12:00:00Z", "-n", "3", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    times = json.loads(result.stdout)
    assert [t["due"] for t in times] == [
        "2026-03-28T01:30:00Z",
        "2026-03-29T01:00:00Z",
        "2026-03-30T00:30:00Z",
    ]
    assert [t["dst_change"] for t in times] == [None, "UTC+01:00 -> UTC+02:00", None]


def test_tweet_schedule_warns_over_the_rate_limit_and_still_adds(cli: Cli) -> None:
    result = cli("schedule", "tweet", "hourly", "--cron", "0 * * * *", "on the hour")
    assert result.exit_code == 0
    assert "fires 24 times a day; tweet allows 17 a day" in result.stderr
    assert names(cli) == ["hourly"]
    quiet = cli("schedule", "tweet", "daily", "--every", "1d", "once a day")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_sync_upserts_then_prunes(cli: Cli, tmp_path: Path) -> None:
    file = tmp_path / "schedules.toml"
    file.write_text(
        """
[schedules.digest]
cron = "0 9 * * MON"
tz = "Europe/Berlin"
job = { job_type = "origin", note = "digest" }

[schedules.heartbeat]
every = "15m"
missed = "skip"
start = 2999-01-01T00:00:00Z
job = { job_type = "origin" }
"""
    )
    first = cli("schedule", "sync", str(file), *IMPORT)
    assert first.exit_code == 0, first.stderr
    assert first.stdout == "added digest\nadded heartbeat\n"
    assert cli.json("schedule", "show", "heartbeat")["next_fire"] == "2999-01-01T00:00:00Z"
    file.write_text(file.read_text().split("[schedules.heartbeat]")[0])
    second = cli.json("schedule", "sync", str(file), "--prune", *IMPORT)
    assert second == [
        {"name": "digest", "outcome": "updated"},
        {"name": "heartbeat", "outcome": "removed"},
    ]
    assert names(cli) == ["digest"]


def test_prune_of_a_schedule_removed_meanwhile_goes_on(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another sync (or an operator) removed a schedule between the listing and the prune: it
    is gone all the same, and the rest of the prune is done."""
    from qworker.schedule_store import ScheduleStore

    file = tmp_path / "schedules.toml"
    file.write_text('[schedules.digest]\nevery = "1h"\njob = { job_type = "origin" }\n')
    cli("schedule", "add", "stale", "--every", "1h", *IMPORT, JOB)
    listed = ScheduleStore.names

    async def with_one_removed_meanwhile(store: ScheduleStore) -> list[str]:
        return ["already-gone", *await listed(store)]

    with monkeypatch.context() as patch:
        patch.setattr(ScheduleStore, "names", with_one_removed_meanwhile)
        pruned = cli.json("schedule", "sync", str(file), "--prune", *IMPORT)
    assert pruned == [
        {"name": "digest", "outcome": "added"},
        {"name": "already-gone", "outcome": "removed"},
        {"name": "stale", "outcome": "removed"},
    ]
    assert names(cli) == ["digest"]


def test_sync_with_one_bad_entry_stores_nothing(cli: Cli, tmp_path: Path) -> None:
    file = tmp_path / "schedules.toml"
    file.write_text(
        '[schedules.good]\nevery = "1h"\njob = { job_type = "origin" }\n'
        '[schedules.bad]\ncron = "0 25 * * *"\njob = { job_type = "origin" }\n'
    )
    result = cli("schedule", "sync", str(file), *IMPORT)
    assert result.exit_code == 2
    assert "schedule 'bad': cron expression '0 25 * * *' is invalid: Bad hour" in result.stderr
    assert names(cli) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cron", "61 * * * *", JOB], "is invalid: Bad minute"),
        (["--cron", "0 9 * *", JOB], "has 4 fields, not 5"),
        (["--cron", "0 9 * * *", "--tz", "Mars/Olympus", JOB], "unknown time zone 'Mars/Olympus'"),
        (["--every", "0", JOB], "--every '0' is not a duration"),
        (["--every", "0s", JOB], "at least 1s"),
        (["--every", "1m", "--start", "2030-01-02T00:00Z", "--end", "2030-01-01T00:00Z", JOB],
         "--end must be after --start"),
        (["--every", "1m", '{"job_type": "nope"}'], "unknown job type 'nope'"),
        (["--every", "1m", '{"job_type": "origin", "note": 5}'], "note"),
        (["--every", "1m", "{not json"], "JOB_JSON is not valid JSON"),
        (["--every", "1m", "--cron", "* * * * *", JOB], "give --cron EXPR or --every DURATION"),
        ([JOB], "give --cron EXPR or --every DURATION"),
        (["--every", "1m", "--tz", "Europe/Berlin", JOB], "--tz applies to --cron only"),
        (["--every", "1m", "--start", "soon", JOB], "cannot read the time 'soon'"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line_and_stores_nothing(
    cli: Cli, args: list[str], message: str
) -> None:
    result = cli("schedule", "add", "s", *IMPORT, *args)
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert names(cli) == []


def test_bad_names_and_missing_schedules(cli: Cli) -> None:
    bad = cli("schedule", "add", "no spaces", "--every", "1m", *IMPORT, JOB)
    assert bad.exit_code == 2 and "schedule name 'no spaces' is not valid" in bad.stderr
    for command in ("show", "pause", "resume", "trigger", "remove"):
        result = cli("schedule", command, "ghost")
        assert result.exit_code == 1 and "no schedule named 'ghost'" in result.stderr, command


def test_stats_shows_the_schedules_beside_the_queues(cli: Cli) -> None:
    assert cli("schedule", "add", "nightly", "--cron", "0 3 * * *", *IMPORT, JOB).exit_code == 0
    [shown] = cli.json("stats")["schedules"]
    assert shown["name"] == "nightly" and shown["spec"] == "0 3 * * * (UTC)"
    table = cli("stats", env={"COLUMNS": "160"})
    assert "Schedules (1)" in table.stdout and "nightly" in table.stdout


def test_list_at_80_columns_keeps_names_and_flags_whole(cli: Cli) -> None:
    """A narrow terminal wraps the spec and times; it does not cut every cell to a stub."""
    for name in ("nightly-report", "weekly-digest"):
        args = ("--cron", "0 9 * * MON", "--tz", "Europe/Berlin")
        assert cli("schedule", "add", name, *args, *IMPORT, JOB).exit_code == 0
    assert cli("schedule", "pause", "weekly-digest").exit_code == 0
    shown = cli("schedule", "list", env={"COLUMNS": "80"}).stdout
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 80
    rows = {
        line.split()[0]: line.split() for line in lines if line.startswith(("nightly", "weekly"))
    }
    assert set(rows) == {"nightly-report", "weekly-digest"}
    assert rows["nightly-report"][-1] == "no" and rows["weekly-digest"][-1] == "yes"


def test_an_end_already_past_is_refused(cli: Cli) -> None:
    result = cli(
        "schedule", "add", "late", "--every", "1h", "--end", "2020-01-01T00:00Z", *IMPORT, JOB
    )
    assert result.exit_code == 2 and "--end 2020-01-01T00:00Z is past" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    tweet = cli("schedule", "tweet", "late", "--every", "1h", "--end", "2020-01-01", "hi")
    assert tweet.exit_code == 2 and "would never fire" in tweet.stderr
    assert names(cli) == []


def test_prune_with_a_file_that_declares_none_removes_nothing(cli: Cli, tmp_path: Path) -> None:
    assert cli("schedule", "add", "kept", "--every", "1h", *IMPORT, JOB).exit_code == 0
    empty = tmp_path / "empty.toml"
    empty.write_text("# rendered from a template that went wrong\n")
    result = cli("schedule", "sync", str(empty), "--prune", *IMPORT)
    assert result.exit_code == 2 and "declares no schedule" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert names(cli) == ["kept"]
    assert cli("schedule", "sync", str(empty), *IMPORT).stdout == "nothing to do\n"


def test_without_redis_every_command_says_so_in_one_line(tmp_path: Path) -> None:
    """As every other command says it, and an add that stored nothing warns of nothing."""
    import socket

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        down = Cli(CliRunner(), f"redis://127.0.0.1:{closed.getsockname()[1]}/0", "down")
    file = tmp_path / "s.toml"
    file.write_text(
        '[schedules.s]\ncron = "* * * * *"\njob = { job_type = "tweet", content = "x" }\n'
    )
    commands = [
        ("schedule", "list"),
        ("schedule", "show", "s"),
        ("schedule", "pause", "s"),
        ("schedule", "trigger", "s"),
        ("schedule", "remove", "s"),
        ("schedule", "tweet", "s", "--cron", "* * * * *", "over the tweet limit"),
        ("schedule", "sync", str(file)),
    ]
    for command in commands:
        result = down(*command)
        assert result.exit_code == 1, (command, result.stdout)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: cannot reach Redis at"), command
