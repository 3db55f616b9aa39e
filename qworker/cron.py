"""The calendar of a schedule: cron expressions in an IANA zone, and fixed intervals.

The only module that knows the cron library (cronsim), so it can be replaced in one place. All
times in and out are UTC milliseconds; zones matter only inside. cronsim follows Debian cron on
DST days for expressions with a fixed minute and hour: a time that does not exist (spring
forward) fires at the first minute that does, and a time that occurs twice (fall back) fires at
its first occurrence only. ``zoneinfo`` reads the ``tzdata`` package where the host has no zone
database.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from qworker.errors import ValidationFailed

# The latest due time a schedule may have: the end of the year 9999, as for delayed jobs.
MAX_DUE_MS = 253_402_300_799_999
_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


def parse_every(text: str) -> int:
    """``90s``, ``15m``, ``2h``, ``1d`` -> milliseconds; at least one second, whole seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValidationFailed(
            f"--every {text!r} is not a duration: use a number and a unit, e.g. 90s, 15m, 2h, 1d"
        )
    every_ms = float(match[1]) * _UNITS_MS[match[2]]
    if not math.isfinite(every_ms) or every_ms < 1000 or every_ms % 1000:
        raise ValidationFailed(
            f"--every {text!r} must be a whole number of seconds, at least 1s (e.g. 90s, 15m)"
        )
    if every_ms > 366 * 86_400_000:
        raise ValidationFailed(f"--every {text!r} is over a year: use a cron expression")
    return int(every_ms)


def format_every(every_ms: int) -> str:
    """The shortest exact spelling: 86400000 -> ``1d``, 90000 -> ``90s``."""
    for unit in ("d", "h", "m"):
        if every_ms % _UNITS_MS[unit] == 0:
            return f"{every_ms // _UNITS_MS[unit]}{unit}"
    return f"{every_ms // 1000}s"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            f"unknown time zone {name!r}: use an IANA name such as UTC, Europe/Berlin or "
            "America/New_York"
        ) from None


def check_cron(expression: str) -> str:
    """The expression, whitespace normalised, if it is valid cron of 5 fields."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValidationFailed(
            f"cron expression {expression!r} has {len(fields)} fields, not 5 "
            "(minute hour day-of-month month day-of-week)"
        )
    normalised = " ".join(fields)
    try:
        CronSim(normalised, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ValidationFailed(f"cron expression {expression!r} is invalid: {exc}") from None
    return normalised


def _from_ms(ms: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz)


def _to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class Calendar:
    """When a schedule is due: a cron expression in a zone, or every ``every_ms`` on a grid
    anchored at ``anchor_ms`` (due times are ``anchor + k * every``: computed from the grid,
    never from the previous fire, so they never creep)."""

    cron: str | None = None
    tz: str = "UTC"
    every_ms: int | None = None
    anchor_ms: int = 0

    def next_after(self, after_ms: int) -> int | None:
        """The first due time strictly after ``after_ms`` (None: none before the year 9999)."""
        if self.every_ms is not None:
            steps = (after_ms - self.anchor_ms) // self.every_ms + 1
            due_ms = self.anchor_ms + max(steps, 0) * self.every_ms
            if due_ms <= after_ms:  # after_ms before the anchor: the anchor itself is first
                due_ms += self.every_ms
        else:
            assert self.cron is not None
            try:
                due_ms = _to_ms(next(CronSim(self.cron, _from_ms(after_ms, zone(self.tz)))))
            except StopIteration:  # no match within 50 years (e.g. 30 February)
                return None
        return due_ms if due_ms <= MAX_DUE_MS else None

    def latest_at_or_before(self, at_ms: int) -> int | None:
        """The last due time at or before ``at_ms`` (None: none in the 50 years before)."""
        if self.every_ms is not None:
            if at_ms < self.anchor_ms:
                return None
            return self.anchor_ms + (at_ms - self.anchor_ms) // self.every_ms * self.every_ms
        assert self.cron is not None
        # Reverse iteration yields times before the (whole-second) start: start a second on.
        start = _from_ms(at_ms - at_ms % 1000 + 1000, zone(self.tz))
        try:
            return _to_ms(next(CronSim(self.cron, start, reverse=True)))
        except StopIteration:
            return None

    def count_between(self, first_ms: int, last_ms: int, limit: int) -> int:
        """Due times from ``first_ms`` to ``last_ms`` (both due times): exact for an interval,
        at most ``limit`` for cron (counted one by one)."""
        if self.every_ms is not None:
            return (last_ms - first_ms) // self.every_ms + 1
        count, due = 1, first_ms
        while count < limit and (due := self.next_after(due) or last_ms + 1) <= last_ms:
            count += 1
        return count

    def first_from(self, from_ms: int) -> int | None:
        """The first due time at or after ``from_ms``."""
        return self.next_after(from_ms - 1)

    def describe(self) -> str:
        if self.every_ms is not None:
            return f"every {format_every(self.every_ms)}"
        return f"{self.cron} ({self.tz})"


@dataclass(frozen=True)
class PreviewTime:
    due_ms: int
    local: datetime
    # Set when the UTC offset differs from the previous due time's: a DST change between them.
    offset_change: str | None


def preview(calendar: Calendar, after_ms: int, count: int) -> list[PreviewTime]:
    """The next ``count`` due times, each marked where the zone's UTC offset changed."""
    tz = zone(calendar.tz)
    times: list[PreviewTime] = []
    previous = _from_ms(after_ms, tz).utcoffset()
    due = calendar.next_after(after_ms)
    while due is not None and len(times) < count:
        local = _from_ms(due, tz)
        offset = local.utcoffset()
        change = None
        if offset != previous and offset is not None and previous is not None:
            change = f"UTC{_offset(previous)} -> UTC{_offset(offset)}"
        times.append(PreviewTime(due, local, change))
        previous = offset
        due = calendar.next_after(due)
    return times


def _offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def local_text(ms: int, tz_name: str) -> str:
    """``2026-03-29 03:00 CEST``: a due time as people in the zone read it."""
    local = _from_ms(ms, zone(tz_name))
    seconds = f":{local.second:02d}" if local.second else ""
    return f"{local:%Y-%m-%d %H:%M}{seconds} {local.tzname()}"


def utc_text(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
