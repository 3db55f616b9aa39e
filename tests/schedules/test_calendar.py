"""The calendar (qworker/cron.py), pure: DST both ways in two zones, month ends, 29 February,
interval grids that never creep, and the input it refuses."""

from __future__ import annotations

import pytest

from qworker.cron import (
    Calendar,
    check_cron,
    format_every,
    local_text,
    parse_every,
    preview,
    utc_text,
    zone,
)
from qworker.errors import ValidationFailed
from tests.schedules.conftest import ms


def due_times(calendar: Calendar, after: str, count: int) -> list[str]:
    return [utc_text(p.due_ms) for p in preview(calendar, ms(after), count)]


BERLIN_0230 = Calendar(cron="30 2 * * *", tz="Europe/Berlin")
NEW_YORK_0230 = Calendar(cron="30 2 * * *", tz="America/New_York")


def test_berlin_spring_forward_fires_once_at_the_first_minute_that_exists() -> None:
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
    assert due_times(BERLIN_0230, "2026-03-27T12:00:00", 3) == [
        "2026-03-28T01:30:00Z",  # 02:30 CET
        "2026-03-29T01:00:00Z",  # 03:00 CEST: the first minute after the gap
        "2026-03-30T00:30:00Z",  # 02:30 CEST
    ]


def test_berlin_fall_back_fires_once_at_the_first_of_the_two_0230s() -> None:
    # 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    assert due_times(BERLIN_0230, "2026-10-23T12:00:00", 3) == [
        "2026-10-24T00:30:00Z",
        "2026-10-25T00:30:00Z",  # 02:30 CEST, the first one; not again at 01:30Z (CET)
        "2026-10-26T01:30:00Z",
    ]


def test_new_york_spring_forward_and_fall_back() -> None:
    # 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
    assert due_times(NEW_YORK_0230, "2026-03-07T00:00:00", 3) == [
        "2026-03-07T07:30:00Z",
        "2026-03-08T07:00:00Z",  # 03:00 EDT
        "2026-03-09T06:30:00Z",
    ]
    at_0130 = Calendar(cron="30 1 * * *", tz="America/New_York")
    assert due_times(at_0130, "2026-10-31T12:00:00", 2) == [
        "2026-11-01T05:30:00Z",  # 01:30 EDT, the first of two 01:30s
        "2026-11-02T06:30:00Z",
    ]


def test_preview_marks_the_dst_change_and_shows_local_time() -> None:
    times = preview(BERLIN_0230, ms("2026-03-27T12:00:00"), 3)
    assert [t.offset_change for t in times] == [None, "UTC+01:00 -> UTC+02:00", None]
    assert local_text(times[1].due_ms, "Europe/Berlin") == "2026-03-29 03:00 CEST"


def test_every_minute_walks_through_the_fall_back_hour_in_real_time() -> None:
    hourly = Calendar(cron="0 * * * *", tz="Europe/Berlin")
    assert due_times(hourly, "2026-10-24T23:30:00", 4) == [
        "2026-10-25T00:00:00Z",  # 02:00 CEST
        "2026-10-25T01:00:00Z",  # 02:00 CET: an hour later in real time, not skipped
        "2026-10-25T02:00:00Z",
        "2026-10-25T03:00:00Z",
    ]


def test_month_ends_and_29_february() -> None:
    on_the_31st = Calendar(cron="0 12 31 * *")
    assert due_times(on_the_31st, "2026-01-31T13:00:00", 2) == [
        "2026-03-31T12:00:00Z",  # no 31 February
        "2026-05-31T12:00:00Z",  # no 31 April
    ]
    leap_day = Calendar(cron="0 0 29 2 *")
    assert due_times(leap_day, "2026-01-01T00:00:00", 2) == [
        "2028-02-29T00:00:00Z",
        "2032-02-29T00:00:00Z",
    ]
    last_day = Calendar(cron="0 0 L * *")
    assert due_times(last_day, "2028-02-01T00:00:00", 2) == [
        "2028-02-29T00:00:00Z",
        "2028-03-31T00:00:00Z",
    ]


def test_an_interval_grid_never_creeps() -> None:
    every_90s = Calendar(every_ms=90_000, anchor_ms=ms("2026-01-05T08:00:00"))
    # Asked late, or from an odd moment, the next due time is still on the grid.
    assert utc_text(every_90s.next_after(ms("2026-01-05T08:00:00"))) == "2026-01-05T08:01:30Z"
    assert every_90s.next_after(ms("2026-01-05T08:01:30") + 7) == ms("2026-01-05T08:03:00")
    late = every_90s.next_after(ms("2026-01-06T08:00:00") + 123)
    assert late is not None
    assert (late - ms("2026-01-05T08:00:00")) % 90_000 == 0
    due = ms("2026-01-05T08:00:00")
    for _ in range(10_000):  # 10,000 steps later: exactly 10,000 x 90 s
        next_due = every_90s.next_after(due)
        assert next_due is not None
        due = next_due
    assert due == ms("2026-01-05T08:00:00") + 10_000 * 90_000


def test_a_daily_interval_is_24_hours_of_real_time_across_dst() -> None:
    daily = Calendar(every_ms=86_400_000, anchor_ms=ms("2026-03-28T07:00:00"))
    assert due_times(daily, "2026-03-28T07:00:00", 2) == [
        "2026-03-29T07:00:00Z",
        "2026-03-30T07:00:00Z",
    ]


@pytest.mark.parametrize(
    ("text", "every_ms"),
    [("90s", 90_000), ("15m", 900_000), ("2h", 7_200_000), ("1d", 86_400_000), ("1.5m", 90_000)],
)
def test_durations(text: str, every_ms: int) -> None:
    assert parse_every(text) == every_ms


def test_durations_round_trip() -> None:
    assert [format_every(parse_every(t)) for t in ("90s", "15m", "2h", "1d", "60s")] == [
        "90s",
        "15m",
        "2h",
        "1d",
        "1m",
    ]


@pytest.mark.parametrize("text", ["0", "0s", "-5s", "1.5s", "500ms", "10", "soon", "400d", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValidationFailed, match="--every"):
        parse_every(text)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("61 * * * *", "Bad minute"),
        ("* 24 * * *", "Bad hour"),
        ("0 0 32 * *", "Bad day-of-month"),
        ("0 0 * 13 *", "Bad month"),
        ("0 0 * * 8", "Bad day-of-week"),
        ("0 0 30 2 *", "Bad day-of-month"),
        ("* * * *", "4 fields, not 5"),
        ("0 * * * * *", "6 fields, not 5"),
    ],
)
def test_invalid_cron_says_the_librarys_reason(expression: str, reason: str) -> None:
    with pytest.raises(ValidationFailed, match=reason):
        check_cron(expression)


def test_unknown_zone() -> None:
    with pytest.raises(ValidationFailed, match="unknown time zone 'Mars/Olympus'"):
        zone("Mars/Olympus")
    with pytest.raises(ValidationFailed, match="unknown time zone"):
        zone("../etc/passwd")
