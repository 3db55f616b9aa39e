"""Recurring schedules: what one is (a model of its Redis hash) and the pure decision of what a
scheduler fires when it finds one due. No Redis here, and no clock of its own.

A due time is *on time* while it is the latest one passed and at most MISFIRE_GRACE_MS old;
every earlier passed one was *missed* (no worker fired it before the next came). The missed
policy says what becomes of those: ``once`` fires one job standing for all of them, ``skip``
fires none, ``all`` fires each (the latest ``max_catchup``). ``no_overlap`` keeps one fire at
most per step; the fire script skips even that one while the previous fire's job is unfinished.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from qworker.cron import MAX_DUE_MS, Calendar, local_text, utc_text
from qworker.errors import ValidationFailed

MissedPolicy = Literal["once", "skip", "all"]
MISSED_POLICIES: tuple[MissedPolicy, ...] = ("once", "skip", "all")
DEFAULT_MAX_CATCHUP = 10
# How late a due time may be fired and still count as on time (when no later one has passed).
MISFIRE_GRACE_MS = 60_000
# Passed due times a plan looks at, at most: a schedule every second after a week without
# workers has 600,000; beyond this many they are counted as this many.
SCAN_LIMIT = 10_000
NAME_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise ValidationFailed(
            f"schedule name {name!r} is not valid: use 1 to 64 characters of A-Z, a-z, 0-9, "
            "'.', '_', ':' and '-'"
        )
    return name


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


class Schedule(BaseModel):
    """One schedule as stored (times in UTC milliseconds)."""

    name: str
    cron: str | None = None
    tz: str = "UTC"
    every_ms: int | None = None
    anchor_ms: int = 0
    start_ms: int | None = None
    end_ms: int | None = None
    job_type: str
    payload: str
    priority: int = 3
    max_retries: int | None = None
    missed: MissedPolicy = "once"
    max_catchup: int = DEFAULT_MAX_CATCHUP
    no_overlap: bool = False
    paused: bool = False
    next_due_ms: int | None = None
    version: int = 0
    created_ms: int | None = None
    updated_ms: int | None = None
    last_due_ms: int | None = None
    last_fire_ms: int | None = None
    last_job_id: str | None = None
    fired: int = 0
    missed_count: int = 0
    overlapped: int = 0

    @property
    def calendar(self) -> Calendar:
        return Calendar(
            cron=self.cron, tz=self.tz, every_ms=self.every_ms, anchor_ms=self.anchor_ms
        )

    @property
    def spec(self) -> str:
        """What it runs on, for people: ``0 9 * * MON (Europe/Berlin)`` or ``every 90s``."""
        return self.calendar.describe()

    @property
    def spec_key(self) -> str:
        """What decides the due times: an update that keeps it keeps the next due time."""
        return f"{self.cron}|{self.tz}|{self.every_ms}|{self.start_ms}|{self.end_ms}"

    def first_due_ms(self, now_ms: int) -> int | None:
        """The first due time after ``now_ms`` (at or after the start, up to the end)."""
        calendar = self.calendar
        due = calendar.next_after(now_ms)
        if self.start_ms is not None and self.start_ms > now_ms:
            due = calendar.first_from(self.start_ms)
        return due if due is not None and due <= self.last_allowed_ms else None

    @property
    def last_allowed_ms(self) -> int:
        return MAX_DUE_MS if self.end_ms is None else self.end_ms

    def to_hash(self) -> dict[str, str]:
        fields = self.model_dump(exclude={"paused", "no_overlap"})
        out = {k: "" if v is None else str(v) for k, v in fields.items()}
        out["paused"] = "1" if self.paused else "0"
        out["no_overlap"] = "1" if self.no_overlap else "0"
        return out

    @classmethod
    def from_hash(cls, fields: dict[str, str]) -> Schedule:
        ints = {
            "every_ms", "start_ms", "end_ms", "max_retries", "next_due_ms", "created_ms",
            "updated_ms", "last_due_ms", "last_fire_ms",
        }  # fmt: skip
        values: dict[str, object] = {}
        for name, value in fields.items():
            if name in ints:
                values[name] = _int(value)
            elif name in ("paused", "no_overlap"):
                values[name] = value == "1"
            elif name in cls.model_fields:
                values[name] = value if value != "" or name not in ("cron", "last_job_id") else None
        return cls.model_validate(values)


@dataclass(frozen=True)
class Fire:
    """One job to enqueue: for ``scheduled_for_ms``, standing for ``covers`` due times from
    ``first_ms`` (more than one when it stands for missed ones: policy ``once``)."""

    scheduled_for_ms: int
    first_ms: int
    covers: int = 1


@dataclass(frozen=True)
class FirePlan:
    fires: list[Fire] = field(default_factory=list)
    missed: int = 0  # due times passed without a fire, by the missed policy
    overlapped: int = 0  # due times skipped by no_overlap here (the script may skip more)
    next_due_ms: int | None = None


def passed_due_times(
    schedule: Schedule, first_due_ms: int, now_ms: int, keep: int
) -> tuple[int, list[int], int | None]:
    """Of the due times from ``first_due_ms`` up to ``now_ms``: how many (at most
    SCAN_LIMIT), the latest ``keep`` of them, and the next due time after them (None: ended).
    Found backwards from now, so a week-long gap costs what one due time costs."""
    calendar = schedule.calendar
    until_ms = min(now_ms, schedule.last_allowed_ms)
    latest: list[int] = []
    due = calendar.latest_at_or_before(until_ms) if first_due_ms <= until_ms else None
    while due is not None and due >= first_due_ms and len(latest) < keep:
        latest.insert(0, due)
        due = calendar.latest_at_or_before(due - 1)
    if not latest:
        next_due: int | None = first_due_ms
        count = 0
    else:
        next_due = calendar.next_after(latest[-1])
        count = calendar.count_between(first_due_ms, latest[-1], SCAN_LIMIT)
    if next_due is not None and next_due > schedule.last_allowed_ms:
        next_due = None
    return count, latest, next_due


def plan_fires(schedule: Schedule, now_ms: int) -> FirePlan:
    """What to fire for a schedule whose stored next due time has come."""
    if schedule.next_due_ms is None or schedule.next_due_ms > now_ms:
        return FirePlan(next_due_ms=schedule.next_due_ms)
    keep = schedule.max_catchup + 1 if schedule.missed == "all" else 1
    count, due_times, next_due_ms = passed_due_times(schedule, schedule.next_due_ms, now_ms, keep)
    if not due_times:  # all past the end
        return FirePlan(next_due_ms=next_due_ms)
    latest = due_times[-1]
    on_time = now_ms - latest <= MISFIRE_GRACE_MS
    missed_count = count - 1 if on_time else count
    fires: list[Fire]
    skipped = 0
    if schedule.missed == "once":
        fires = [Fire(latest, schedule.next_due_ms, count)]
    elif schedule.missed == "skip":
        fires = [Fire(latest, latest)] if on_time else []
        skipped = missed_count
    else:
        missed = due_times[:-1] if on_time else due_times
        kept = missed[-schedule.max_catchup :] if schedule.max_catchup > 0 else []
        skipped = missed_count - len(kept)
        fires = [Fire(due, due) for due in kept]
        if on_time:
            fires.append(Fire(latest, latest))
    overlapped = 0
    if schedule.no_overlap and len(fires) > 1:
        # Every fire but the last would still be queued when the next is made.
        overlapped = sum(fire.covers for fire in fires[:-1])
        fires = fires[-1:]
    return FirePlan(fires, skipped, overlapped, next_due_ms)


# -- the schedule as a document (``qworker schedule --json``, the web UI) ------------------------


def times_of(ms: int | None, tz: str) -> tuple[str, str]:
    """A due time in the schedule's zone and in UTC ("-" for none)."""
    return ("-", "-") if ms is None else (local_text(ms, tz), utc_text(ms))


def schedule_json(schedule: Schedule) -> dict[str, Any]:
    """The stored schedule, plus its due times spelled out (UTC and the schedule's zone)."""
    data = schedule.model_dump(mode="json")
    next_local, next_utc = times_of(None if schedule.paused else schedule.next_due_ms, schedule.tz)
    last_local, last_utc = times_of(schedule.last_fire_ms, schedule.tz)
    data.update(
        spec=schedule.spec,
        params=_params(schedule.payload),
        next_fire=next_utc if next_utc != "-" else None,
        next_fire_local=next_local if next_local != "-" else None,
        last_fire=last_utc if last_utc != "-" else None,
        last_fire_local=last_local if last_local != "-" else None,
    )
    return data


def _params(payload: str) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload
