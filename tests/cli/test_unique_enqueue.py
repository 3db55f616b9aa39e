"""``qworker enqueue ... --unique-key|--unique-for|--unique-until`` and ``enqueue tweet
--unique``: a duplicate queues nothing, prints the holder's id and exits 3."""

from __future__ import annotations

import json
import unicodedata

from qworker.config import Settings
from qworker.service import QueueService
from tests.cli.conftest import Cli, call, cli_job, one_error_line

DIGEST = json.dumps(cli_job(message="daily digest"))
IMPORT = ("--import", "tests.cli.jobtypes")


def test_a_duplicate_prints_the_holders_id_and_exits_3(cli: Cli) -> None:
    first = cli.ok("enqueue", "json", DIGEST, *IMPORT, "--unique-key", "digest:2026-12-06")
    again = cli("enqueue", "json", DIGEST, *IMPORT, "--unique-key", "digest:2026-12-06", "-p", "1")
    assert (again.exit_code, again.stdout) == (3, first)
    holder = first.strip()
    assert again.stderr == f"duplicate of job {holder}: it holds unique key digest:2026-12-06\n"

    as_json = cli("enqueue", "json", DIGEST, *IMPORT, "--unique-key", "digest:2026-12-06", "--json")
    assert as_json.exit_code == 3
    shown = json.loads(as_json.stdout)
    assert (shown["job_id"], shown["created"], shown["duplicate"]) == (holder, False, True)
    assert (shown["id"], shown["unique_key"], shown["priority"]) == (holder, "digest:2026-12-06", 3)

    other = cli.json("enqueue", "json", DIGEST, *IMPORT, "--unique-key", "digest:2026-12-07")
    assert (other["created"], other["duplicate"]) == (True, False)
    assert other["job_id"] == other["id"] != holder
    stats = cli.json("stats")
    assert (stats["total_jobs"], stats["queues"]["jobs_priority_1"]) == (2, 0)


def test_unique_tweets_compare_normalised_text(cli: Cli) -> None:
    first = cli.ok("enqueue", "tweet", "Café  opens\tat 9", "--unique").strip()
    decomposed = unicodedata.normalize("NFD", "  Café opens at 9 \n")
    again = cli("enqueue", "tweet", decomposed, "--unique")
    assert (again.exit_code, again.stdout) == (3, first + "\n")
    assert f"duplicate of job {first}: it holds unique key tweet:" in again.stderr
    record = cli.json("job", "show", first)
    assert record["unique_key"].startswith("tweet:") and len(record["unique_key"]) == 38
    assert json.loads(record["payload"])["content"] == "Café  opens\tat 9"  # as typed

    different = cli("enqueue", "tweet", "Café opens at 10", "--unique")
    assert different.exit_code == 0 and different.stdout.strip() != first
    plain = cli("enqueue", "tweet", "Café opens at 9")  # not unique: queued anyway
    assert plain.exit_code == 0
    assert cli.json("stats")["total_jobs"] == 3


def test_unique_for_and_until_reach_the_key(cli: Cli, settings: Settings) -> None:
    cli.ok("enqueue", "tweet", "hourly", "--unique-key", "hourly", "--unique-for", "1h")
    started = cli.ok(
        "enqueue", "tweet", "on start", "--unique-key", "s", "--unique-until", "started"
    )

    async def look(service: QueueService) -> tuple[int, str]:
        ttl_ms = int(await service.redis.pttl(service.keys.unique("hourly")))
        reply = await service.run(service.scripts.claim("w", None, 600_000, 2, "t"))
        return ttl_ms, ",".join(job.id for job in reply.jobs)

    ttl_ms, claimed = call(settings, look)
    assert 3_590_000 < ttl_ms <= 3_600_000
    assert started.strip() in claimed.split(",")
    # Both started; only the one held until 'started' has let its key go.
    assert cli("enqueue", "tweet", "on start", "--unique-key", "s").exit_code == 0
    assert cli("enqueue", "tweet", "hourly", "--unique-key", "hourly").exit_code == 3


def test_bad_unique_options_exit_2_and_queue_nothing(cli: Cli) -> None:
    tweet = ("enqueue", "tweet", "hi")
    one_error_line(cli(*tweet, "--unique-until", "never"), 2, "--unique-until", "never")
    one_error_line(cli(*tweet, "--unique-for", "1h"), 2, "--unique-for needs --unique-key")
    one_error_line(cli(*tweet, "--unique-until", "started"), 2, "--unique-until needs")
    one_error_line(cli(*tweet, "--unique-key", "k", "--unique-for", "soon"), 2, "--unique-for")
    one_error_line(cli(*tweet, "--unique-key", "k", "--unique-for", "0"), 2, "not a positive")
    one_error_line(cli(*tweet, "--unique", "--unique-key", "k"), 2, "not both")
    one_error_line(cli(*tweet, "--unique-key", "a\tb"), 2, "control characters")
    one_error_line(cli(*tweet, "--unique-key", "k" * 201), 2, "1 to 200 characters")
    assert cli.json("stats")["total_jobs"] == 0
