"""The plan's windows, prices and months: pure decisions, a table of cases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from qworker.config import Settings
from qworker.jobs.tweet import TweetJob
from qworker.jobs.x_plan import (
    PlanWindows,
    budget_micro_usd,
    counts_spend,
    month_of,
    plan_windows,
    price_micro_usd,
)
from qworker.rate_limiter import RateLimit
from tests.jobs.support import make_job


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, PlanWindows(17, 3, None)),  # free, as qworker always limited tweets
        ({"x_plan": "free"}, PlanWindows(17, 3, None)),
        ({"x_plan": "pay-per-use"}, PlanWindows(10_000, None, 100)),
        ({"x_plan": "custom"}, PlanWindows(None, None, None)),
        ({"x_plan": "pay-per-use", "tweet_max_per_day": "500"}, PlanWindows(500, None, 100)),
        (
            {"x_plan": "pay-per-use", "tweet_max_per_15_minutes": ""},
            PlanWindows(10_000, None, None),
        ),
        ({"x_plan": "free", "tweet_max_per_hour": ""}, PlanWindows(17, None, None)),
        ({"x_plan": "custom", "tweet_max_per_hour": "5"}, PlanWindows(None, 5, None)),
        ({"x_plan": "custom", "tweet_max_per_day": "plan"}, PlanWindows(None, None, None)),
    ],
)
def test_plan_windows(values: dict[str, Any], expected: PlanWindows) -> None:
    assert plan_windows(settings(**values)) == expected


def test_the_environment_chooses_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWORKER_X_PLAN", "pay-per-use")
    monkeypatch.setenv("QWORKER_TWEET_MAX_PER_DAY", "2000")
    assert plan_windows(settings()) == PlanWindows(2000, None, 100)


def test_an_unknown_plan_is_refused() -> None:
    with pytest.raises(ValueError, match="x_plan"):
        settings(x_plan="enterprise")


def test_the_tweet_jobs_limit_follows_the_plan() -> None:
    job: TweetJob = make_job(settings=settings(x_plan="pay-per-use"))
    assert job.get_rate_limit() == RateLimit(max_per_day=10_000, max_per_hour=None)


def test_prices_and_budget_in_micro_dollars() -> None:
    paid = settings(x_plan="pay-per-use", x_monthly_budget_usd=12.5)
    assert price_micro_usd(paid, has_url=False) == 15_000
    assert price_micro_usd(paid, has_url=True) == 200_000
    assert budget_micro_usd(paid) == 12_500_000
    assert budget_micro_usd(settings()) is None
    assert counts_spend(paid)
    assert not counts_spend(settings())  # the free plan costs nothing
    assert not counts_spend(settings(x_plan="pay-per-use", dry_run=True))


def ms(*date: int) -> int:
    return int(datetime(*date, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("now", "name", "start", "end"),
    [
        (ms(2026, 12, 31, 23, 59, 59), "2026-12", ms(2026, 12, 1), ms(2027, 1, 1)),
        (ms(2027, 1, 1), "2027-01", ms(2027, 1, 1), ms(2027, 2, 1)),
        (ms(2028, 2, 29, 12), "2028-02", ms(2028, 2, 1), ms(2028, 3, 1)),
    ],
)
def test_months_are_utc_calendar_months(now: int, name: str, start: int, end: int) -> None:
    month = month_of(now)
    assert (month.name, month.start_ms, month.end_ms) == (name, start, end)
