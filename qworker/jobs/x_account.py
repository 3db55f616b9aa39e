"""XAccount: what every worker shares about one X account, kept in Redis.

* Before a post, :meth:`XAccount.gate` checks, in one script with the reservation the worker
  already made: the 15-minute window of the plan, the limits X's headers last reported as used
  up, and the month's budget; and takes the post's share of each (``x_gate.lua``).
* After every X response, :meth:`XAccount.settle` records the ``x-rate-limit-*``,
  ``x-user-limit-24hour-*`` and ``x-app-limit-24hour-*`` headers (remaining and reset) for
  every worker, blocks the shared limiter when one is used up, and gives back the price of a
  post X did not make (``x_settle.lua``).

The tweet job reaches it as the ``x_account`` client, built once per worker from the settings
(its own connection to the worker's Redis and namespace); tests provide one with a hand-moved
clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qworker.clients import ClientContainer
from qworker.clock import SYSTEM_CLOCK, Clock
from qworker.connection import ScriptRunner
from qworker.jobs.x_plan import (
    Month,
    budget_micro_usd,
    month_of,
    plan_windows,
    price_micro_usd,
    usd,
)
from qworker.keys import QueueKeys
from qworker.scripts import QueueScripts

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from qworker.config import Settings

CLIENT_NAME = "x_account"
RATE_KEY = "tweet"
# The header prefixes of X's limits: the 15-minute window, and the daily caps of the user and
# of the app. Each comes as -limit, -remaining and -reset (epoch seconds).
LIMIT_HEADERS = ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour")
GATE_REASONS = {
    1: "the plan's 15-minute window is full",
    2: "X reported a posting limit used up",
    3: "the month's X budget is spent",
}


@dataclass(frozen=True)
class RemoteLimit:
    name: str
    remaining: int
    reset_ms: int


def limits_from_headers(headers: Mapping[str, str]) -> list[RemoteLimit]:
    """The limits one X response reports (a limit needs both -remaining and -reset)."""
    limits = []
    for prefix in LIMIT_HEADERS:
        remaining = _int_header(headers, f"{prefix}-remaining")
        reset_s = _int_header(headers, f"{prefix}-reset")
        if remaining is not None and reset_s is not None:
            limits.append(RemoteLimit(prefix, remaining, reset_s * 1000))
    return limits


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = (headers.get(name) or "").strip()
    return int(value) if value.isdigit() else None


@dataclass(frozen=True)
class Charge:
    """What a granted gate counted, so that settle can give it back."""

    month: Month
    price_micro_usd: int
    spend_field: str


@dataclass(frozen=True)
class GateRefusal:
    reason: str
    until_ms: int


@dataclass(frozen=True)
class MonthSpend:
    month: str
    posts: int
    posts_with_url: int
    spent_usd: float
    budget_usd: float | None
    # Not even a post without a URL fits in what is left: tweets wait for the next month.
    budget_reached: bool


class XAccount:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: QueueKeys,
        clock: Clock = SYSTEM_CLOCK,
        rate_key: str = RATE_KEY,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.scripts = QueueScripts(keys)
        self.runner = ScriptRunner(redis)
        self.clock = clock
        self.rate_key = rate_key

    async def gate(
        self, settings: Settings, *, price_micro_usd: int, has_url: bool
    ) -> Charge | GateRefusal:
        """Take this post's place in X's limits and the month's spend, or say until when not."""
        now_ms = self.clock.now_ms()
        month = month_of(now_ms)
        field = "posts_with_url" if has_url else "posts"
        call = self.scripts.x_gate(
            self.rate_key,
            month.name,
            now_ms,
            plan_windows(settings).max_per_15_minutes,
            price_micro_usd,
            budget_micro_usd(settings),
            month.end_ms,
            field,
        )
        reason, until_ms = await self.runner.run(call)
        if reason:
            return GateRefusal(GATE_REASONS.get(reason, f"refused ({reason})"), until_ms)
        return Charge(month, price_micro_usd, field)

    async def settle(
        self, limits: list[RemoteLimit], charge: Charge | None = None, *, refund: bool = False
    ) -> int:
        """Record what X's headers said; with ``refund``, give back ``charge``. Returns the
        block of the shared limiter now in force (ms), or 0."""
        if not limits and not (refund and charge and charge.price_micro_usd):
            return 0
        now_ms = self.clock.now_ms()
        month = charge.month if charge else month_of(now_ms)
        refund_micro = charge.price_micro_usd if refund and charge else 0
        call = self.scripts.x_settle(
            self.rate_key,
            month.name,
            now_ms,
            refund_micro,
            charge.spend_field if charge else "posts",
            [(limit.name, limit.remaining, limit.reset_ms) for limit in limits],
        )
        blocked_until_ms: int = await self.runner.run(call)
        return blocked_until_ms

    async def aclose(self) -> None:
        await self.redis.aclose()


async def read_month_spend(
    redis: aioredis.Redis, keys: QueueKeys, settings: Settings, now_ms: int
) -> MonthSpend:
    """The month's spend on X so far, for ``qworker stats``."""
    month = month_of(now_ms)
    values = await redis.hmget(keys.x_spend(month.name), ["micro_usd", "posts", "posts_with_url"])
    micro, posts, with_url = (int(value or 0) for value in values)
    budget = budget_micro_usd(settings)
    cheapest = price_micro_usd(settings, has_url=False)
    return MonthSpend(
        month=month.name,
        posts=posts,
        posts_with_url=with_url,
        spent_usd=usd(micro),
        budget_usd=settings.x_monthly_budget_usd,
        budget_reached=budget is not None and micro + cheapest > budget,
    )


def build_x_account(settings: Settings) -> XAccount:
    """The ``x_account`` client factory: the worker's Redis and namespace, from its settings."""
    from qworker.connection import async_client

    redis = async_client(settings, namespace=settings.namespace)
    return XAccount(redis, QueueKeys(settings.namespace))


ClientContainer.register_factory(CLIENT_NAME, build_x_account)

__all__ = [
    "CLIENT_NAME",
    "Charge",
    "GateRefusal",
    "MonthSpend",
    "RemoteLimit",
    "XAccount",
    "build_x_account",
    "limits_from_headers",
    "read_month_spend",
]
