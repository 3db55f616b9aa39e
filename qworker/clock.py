"""Time as a dependency: the worker and the limiter ask a Clock, so tests can move it by hand.

Decisions that several hosts must agree on (lease expiry, rate limits, due times) are made by
the Lua scripts with Redis's own clock (TIME), so a host whose clock is off cannot break them.
A script is given a time only by a clock that tests move by hand.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock milliseconds since the epoch, for what this process decides alone."""
        ...

    def script_now_ms(self) -> int | None:
        """The time a Lua script should use: None for Redis's own clock."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def script_now_ms(self) -> None:
        return None


class ManualClock:
    """A clock that only moves when told to; the scripts follow it instead of Redis's."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now_ms = start_ms

    def now_ms(self) -> int:
        return self._now_ms

    def script_now_ms(self) -> int:
        return self._now_ms

    def advance(self, seconds: float) -> None:
        self._now_ms += int(seconds * 1000)

    def set_ms(self, now_ms: int) -> None:
        self._now_ms = now_ms


SYSTEM_CLOCK = SystemClock()


def format_duration(seconds: float) -> str:
    """``45s``, ``12m 5s``, ``3h 2m``, ``2d 4h``."""
    seconds = max(int(seconds), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def format_iso(at_ms: int | None) -> str:
    """ISO-8601 UTC to the second (``2026-12-06T20:00:00Z``): the same on every machine."""
    if at_ms is None:
        return "-"
    return datetime.fromtimestamp(at_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
