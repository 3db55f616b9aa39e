"""The tweet side of the command line: X's weighted length at enqueue, and the month's spend in
``stats``. Bad input exits 2 with one line and queues nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from qworker.jobs.tweet import configured_max_length
from qworker.jobs.x_plan import month_of
from qworker.keys import QueueKeys
from tests.cli.conftest import Cli, one_error_line


@pytest.fixture(autouse=True)
def _fresh_max_length() -> Iterator[None]:
    """QWORKER_TWEET_MAX_LENGTH is read once per process: forget it around each test."""
    configured_max_length.cache_clear()
    yield
    configured_max_length.cache_clear()


def queued(cli: Cli) -> int:
    total: int = cli.json("stats")["total_jobs"]
    return total


def test_cjk_text_exactly_at_the_weighted_limit_is_accepted(cli: Cli) -> None:
    result = cli("enqueue", "tweet", "の" * 140)  # 140 characters, weighted 280
    assert result.exit_code == 0, result.stderr
    assert queued(cli) == 1


@pytest.mark.parametrize(
    ("text", "weighted"),
    [
        ("の" * 141, 282),  # 141 characters: X counts 282
        ("x" * 270 + " https://t.co/abc", 294),  # a URL is 23, however short
        ("\U0001f431" * 150, 300),  # emoji weigh 2
    ],
    ids=["cjk", "url", "emoji"],
)
def test_text_over_the_weighted_limit_is_refused(cli: Cli, text: str, weighted: int) -> None:
    one_error_line(cli("enqueue", "tweet", text), 2, f"weighted length {weighted} > 280")
    assert queued(cli) == 0


def test_a_long_url_counts_as_23(cli: Cli) -> None:
    text = "a" * 250 + " https://example.com/" + "b" * 60  # 332 characters, weighted 274
    assert cli("enqueue", "tweet", text).exit_code == 0
    assert queued(cli) == 1


def test_a_longer_limit_for_accounts_allowed_longer_posts(cli: Cli) -> None:
    text = "x" * 1000
    one_error_line(cli("enqueue", "tweet", text), 2, "weighted length 1000 > 280")
    configured_max_length.cache_clear()
    result = cli("enqueue", "tweet", text, env={"QWORKER_TWEET_MAX_LENGTH": "4000"})
    assert result.exit_code == 0, result.stderr
    assert queued(cli) == 1


def test_stats_show_the_months_spend_and_budget(cli: Cli, redis_url: str) -> None:
    this_month = month_of(int(time.time() * 1000))
    left_s = this_month.end_ms / 1000 - time.time()
    if left_s < 30:  # the month ends during the test: it would read the next month's spend
        time.sleep(left_s + 0.1)
    month = month_of(int(time.time() * 1000)).name
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    spend_key = QueueKeys(cli.namespace).x_spend(month)
    client.hset(spend_key, mapping={"micro_usd": 445_000, "posts": 3, "posts_with_url": 2})
    client.close()
    env = {"QWORKER_X_PLAN": "pay-per-use", "QWORKER_X_MONTHLY_BUDGET_USD": "0.45"}

    as_json = cli("stats", "--json", env=env)
    assert as_json.exit_code == 0, as_json.stderr
    table = cli("stats", env={**env, "COLUMNS": "160"})

    assert '"x_spend": {' in as_json.stdout
    for fragment in ('"spent_usd": 0.445', '"budget_usd": 0.45', '"budget_reached": true'):
        assert fragment in as_json.stdout
    for fragment in ("X spend", month, "5 (2 with a URL)", "$0.445", "$0.45", "reached"):
        assert fragment in table.stdout, table.stdout


def test_stats_say_nothing_of_spend_on_the_free_plan(cli: Cli) -> None:
    assert cli.json("stats")["x_spend"] is None
    assert "X spend" not in cli.ok("stats")
