"""Jobs settled per minute, by outcome, kept in Redis for a few hours: the web UI's chart.

Workers add what they settled since their last write once a second (from the watchdog, off the
hot path): one small hash per minute, ``HINCRBY`` per outcome, each hash expiring after
``KEEP_S``, so however long qworker runs, at most a few hundred small keys exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from qworker.keys import QueueKeys

# The outcomes counted, as the worker's executor names them.
OUTCOMES: tuple[str, ...] = ("done", "retried", "dead", "canceled")
MINUTE_MS = 60_000
# A minute's counts outlive the hour the chart shows, so a late reader still sees a full hour.
KEEP_S = 3 * 3600
CHART_MINUTES = 60


class ThroughputMinute(BaseModel):
    """What finished in one minute (``minute_ms``: its start), by outcome."""

    minute_ms: int
    counts: dict[str, int] = Field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def minute_of(now_ms: int) -> int:
    return now_ms // MINUTE_MS


def add_counts(pipe: Any, keys: QueueKeys, counts: Mapping[str, int], now_ms: int) -> None:
    """Queue on ``pipe`` (a MULTI pipeline) the increments of ``counts`` for the current minute."""
    wanted = {outcome: n for outcome, n in counts.items() if outcome in OUTCOMES and n > 0}
    if not wanted:
        return
    key = keys.throughput(minute_of(now_ms))
    for outcome, n in wanted.items():
        pipe.hincrby(key, outcome, n)
    pipe.pexpire(key, KEEP_S * 1000)  # PEXPIRE: the command the least-privilege ACL allows


def new_counts(total: Mapping[str, int], written: Mapping[str, int]) -> dict[str, int]:
    """What ``total`` (a worker's running counts) holds beyond what was already written."""
    return {
        outcome: total.get(outcome, 0) - written.get(outcome, 0)
        for outcome in OUTCOMES
        if total.get(outcome, 0) > written.get(outcome, 0)
    }


async def read_throughput(
    client: aioredis.Redis, keys: QueueKeys, now_ms: int, minutes: int = CHART_MINUTES
) -> list[ThroughputMinute]:
    """The last ``minutes`` minutes, oldest first, the current one last (one round trip)."""
    last = minute_of(now_ms)
    wanted = list(range(last - minutes + 1, last + 1))
    pipe = client.pipeline(transaction=False)
    for minute in wanted:
        pipe.hgetall(keys.throughput(minute))
    rows = await pipe.execute()
    return [
        ThroughputMinute(
            minute_ms=minute * MINUTE_MS,
            counts={outcome: int(row.get(outcome, 0)) for outcome in OUTCOMES},
        )
        for minute, row in zip(wanted, rows, strict=True)
    ]
