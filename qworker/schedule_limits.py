"""Whether a schedule fires more often than its job type's rate limit lets its jobs run.

Not an error (the jobs would wait, parked, and pile up), so ``schedule add`` warns and still
adds. The fires of the next day are counted from the calendar itself, so a cron expression
that fires in bursts is judged by its busiest hour.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from qworker.clients import ClientContainer
from qworker.jobs.base import JobFactory
from qworker.schedules import Schedule

if TYPE_CHECKING:
    from qworker.config import Settings
    from qworker.rate_limiter import RateLimit

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
# A 5-field cron fires at most once a minute: a day has at most this many due times.
MAX_FIRES_LISTED = 1441


def rate_limit_of(schedule: Schedule, settings: Settings) -> RateLimit | None:
    """The limit a worker would apply to the schedule's job (None: unlimited, or unknown)."""
    job_type = JobFactory.get(schedule.job_type)
    params = JobFactory.parse_payload(schedule.job_type, schedule.payload)
    try:
        return job_type.job_cls(params, settings, ClientContainer(settings)).get_rate_limit()
    except Exception:  # a hook that fails is reported when the job runs, not here
        return None


def _due_times_in_a_day(schedule: Schedule, from_ms: int) -> list[int]:
    calendar = schedule.calendar
    due_times: list[int] = []
    due = calendar.next_after(from_ms)
    while due is not None and due < from_ms + DAY_MS and len(due_times) < MAX_FIRES_LISTED:
        due_times.append(due)
        due = calendar.next_after(due)
    return due_times


def rate_limit_warning(schedule: Schedule, limit: RateLimit | None, now_ms: int) -> str | None:
    """``fires 24 times a day; tweet allows 17 a day`` when it would, else None."""
    if limit is None or limit.is_unlimited:
        return None
    job_type = schedule.job_type
    if schedule.every_ms is not None:
        per_day = DAY_MS // schedule.every_ms
        per_hour = -(-HOUR_MS // schedule.every_ms)
        shortest_ms = schedule.every_ms
    else:
        due_times = _due_times_in_a_day(schedule, now_ms)
        per_day = len(due_times)
        per_hour, end = 0, 0
        for first, start in enumerate(due_times):  # the busiest hour, by a sliding window
            while end < len(due_times) and due_times[end] < start + HOUR_MS:
                end += 1
            per_hour = max(per_hour, end - first)
        gaps = [b - a for a, b in itertools.pairwise(due_times)]
        shortest_ms = min(gaps, default=DAY_MS)
    if limit.max_per_day is not None and per_day > limit.max_per_day:
        return f"fires {per_day} times a day; {job_type} allows {limit.max_per_day} a day"
    if limit.max_per_hour is not None and per_hour > limit.max_per_hour:
        return f"fires {per_hour} times an hour; {job_type} allows {limit.max_per_hour} an hour"
    if limit.min_interval_ms and shortest_ms < limit.min_interval_ms:
        return (
            f"fires {shortest_ms / 60_000:g} minutes apart; {job_type} needs "
            f"{limit.min_interval_ms / 60_000:g} minutes between jobs"
        )
    return None
