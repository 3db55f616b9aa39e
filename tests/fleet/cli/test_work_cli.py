"""``qworker work --job-types``: a worker that does not serve tweets starts without X
credentials; one that does still refuses to start without them; jobs it does not serve wait
and ``stats`` says so; a dry run is recorded on the job and counted apart."""

from __future__ import annotations

import json

from qworker.config import Settings
from tests.cli.conftest import Cli, cli_job, enqueue, one_error_line

PLUGIN = ("--import", "tests.cli.jobtypes")


def test_a_worker_not_serving_tweets_needs_no_x_credentials(cli: Cli) -> None:
    cli.ok("enqueue", "tweet", "waits for a tweet worker")
    cli.ok("enqueue", "json", json.dumps(cli_job()), *PLUGIN)
    result = cli("work", "--burst", "--job-types", "cli_job", *PLUGIN)
    assert result.exit_code == 0, result.stderr
    assert "job types cli_job only" in result.stderr.splitlines()[0]
    stats = cli.json("stats")
    assert (stats["total_processed"], stats["total_failed"], stats["dead_letter"]) == (1, 0, 0)
    # The tweet waits in its lane, and stats names the type no live worker serves.
    assert stats["total_jobs"] == 1
    assert stats["waiting_without_worker"] == {"tweet": 1}
    table = cli("stats", env={"COLUMNS": "160"})
    assert "no live worker serves these types" in table.stdout
    assert "tweet" in table.stdout


def test_the_job_types_come_from_the_environment_too(cli: Cli) -> None:
    cli.ok("enqueue", "json", json.dumps(cli_job()), *PLUGIN)
    result = cli("work", "--burst", *PLUGIN, env={"QWORKER_JOB_TYPES": "cli_job"})
    assert result.exit_code == 0, result.stderr
    assert cli.json("stats")["total_processed"] == 1


def test_a_worker_serving_tweets_still_needs_the_credentials(cli: Cli) -> None:
    result = cli("work", "--burst", "--job-types", "cli_job,tweet", *PLUGIN)
    one_error_line(result, 2, "TWITTER_API_KEY", "TWITTER_ACCESS_TOKEN_SECRET", "--job-types")
    # Serving every type (the default) includes tweet.
    one_error_line(cli("work", "--burst"), 2, "TWITTER_API_KEY")


def test_a_job_type_the_worker_does_not_know_is_refused(cli: Cli) -> None:
    result = cli("work", "--burst", "--job-types", "cli_job,nope", *PLUGIN)
    one_error_line(result, 2, "does not know: nope", "--import")


def test_a_dry_run_is_recorded_on_the_job_and_counted_apart(cli: Cli, settings: Settings) -> None:
    job_id = cli.ok("enqueue", "tweet", "not really posted").strip()
    enqueue(settings, cli_job())
    result = cli("work", "--burst", "--dry-run", "--job-types", "tweet")
    assert result.exit_code == 0, result.stderr
    assert "DRY RUN" in result.stderr.splitlines()[0]
    stats = cli.json("stats")
    assert (stats["dry_run"], stats["total_processed"], stats["total_jobs"]) == (1, 1, 1)
    job = cli.json("job", "show", job_id)
    assert job["state"] == "done" and job["dry_run_at_ms"] is not None
    shown = cli("job", "show", job_id, env={"COLUMNS": "160"}).stdout
    assert "DRY RUN (not done)" in shown
    assert "dry run (marked done, not done)" in cli("stats", env={"COLUMNS": "160"}).stdout


def test_job_types_naming_no_type_is_refused(cli: Cli) -> None:
    for value in ("", " , "):
        one_error_line(cli("work", "--burst", "--job-types", value), 2, "names no job type")
