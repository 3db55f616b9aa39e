"""What X allows and charges, by plan: pure decisions, no Redis, no clock of their own.

``QWORKER_X_PLAN`` names the account's X API plan and so the default posting windows:

* ``free`` (legacy free tier): 17 posts per 24 hours (and qworker's own spreading, 3 an hour).
* ``pay-per-use`` (every developer account since 2026-02-06): 100 posts per 15 minutes per
  user and 10,000 per 24 hours per app; each post is billed (about $0.015, about $0.20 with a
  URL), counted per calendar month (UTC) against ``QWORKER_X_MONTHLY_BUDGET_USD``.
* ``custom``: no plan defaults; only the ``QWORKER_TWEET_MAX_*`` settings.

Each ``QWORKER_TWEET_MAX_*`` setting is ``plan`` by default (the plan's window); a number, or
empty for no limit, overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from qworker.rate_limiter import RateLimit

if TYPE_CHECKING:
    from qworker.config import Settings

PAY_PER_USE = "pay-per-use"
QUARTER_HOUR_MS = 900_000
MICRO_USD = 1_000_000


@dataclass(frozen=True)
class PlanWindows:
    """A plan's default posting windows; None: the plan sets no such window."""

    max_per_day: int | None
    max_per_hour: int | None
    max_per_15_minutes: int | None


# Settings field -> the PlanWindows field it overrides.
_OVERRIDES = {
    "tweet_max_per_day": "max_per_day",
    "tweet_max_per_hour": "max_per_hour",
    "tweet_max_per_15_minutes": "max_per_15_minutes",
}
PLANS: dict[str, PlanWindows | None] = {
    # The legacy free tier's 17 a day, spread by qworker's historical 3 an hour.
    "free": PlanWindows(max_per_day=17, max_per_hour=3, max_per_15_minutes=None),
    PAY_PER_USE: PlanWindows(max_per_day=10_000, max_per_hour=None, max_per_15_minutes=100),
    "custom": None,  # the settings' values alone, defaults included
}


def plan_windows(settings: Settings) -> PlanWindows:
    """The windows in force: each setting's value, or the plan's default where it says
    ``plan`` (its default; the custom plan has none)."""
    plan = PLANS[settings.x_plan]
    values: dict[str, int | None] = {}
    for field, window in _OVERRIDES.items():
        value = getattr(settings, field)
        if value == "plan":
            value = getattr(plan, window) if plan is not None else None
        values[window] = value
    return PlanWindows(**values)


def tweet_rate_limit(settings: Settings) -> RateLimit:
    """The shared limiter's windows for tweets (the 15-minute one is the tweet job's own)."""
    windows = plan_windows(settings)
    return RateLimit(
        max_per_day=windows.max_per_day,
        max_per_hour=windows.max_per_hour,
        min_interval_minutes=settings.tweet_min_interval_minutes,
    )


def counts_spend(settings: Settings) -> bool:
    """Spend is counted on pay-per-use only, and never in a dry run (nothing is posted)."""
    return settings.x_plan == PAY_PER_USE and not settings.dry_run


def price_micro_usd(settings: Settings, *, has_url: bool) -> int:
    """What one post costs, in millionths of a dollar (Redis counts integers)."""
    usd = settings.x_price_per_post_with_url_usd if has_url else settings.x_price_per_post_usd
    return round(usd * MICRO_USD)


def budget_micro_usd(settings: Settings) -> int | None:
    budget = settings.x_monthly_budget_usd
    return None if budget is None else round(budget * MICRO_USD)


@dataclass(frozen=True)
class Month:
    """A calendar month in UTC: X bills by month."""

    name: str  # "2026-12"
    start_ms: int
    end_ms: int  # the start of the next month


def month_of(now_ms: int) -> Month:
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return Month(
        name=f"{now.year:04d}-{now.month:02d}",
        start_ms=int(start.timestamp() * 1000),
        end_ms=int(end.timestamp() * 1000),
    )


def usd(micro_usd: int) -> float:
    return micro_usd / MICRO_USD


__all__ = [
    "PAY_PER_USE",
    "PLANS",
    "Month",
    "PlanWindows",
    "budget_micro_usd",
    "counts_spend",
    "month_of",
    "plan_windows",
    "price_micro_usd",
    "tweet_rate_limit",
    "usd",
]
