"""How ``qworker schedule`` shows schedules: a table for people, JSON for scripts."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.text import Text

from qworker.cli import _render
from qworker.cli._render import Col
from qworker.cron import PreviewTime, local_text, utc_text
from qworker.schedules import Schedule, times_of


def _next(schedule: Schedule) -> tuple[str, str]:
    if schedule.paused:
        return ("paused", "-")
    if schedule.next_due_ms is None:
        return ("ended", "-")
    return times_of(schedule.next_due_ms, schedule.tz)


def schedules_table(schedules: list[Schedule]) -> RenderableType:
    title = f"Schedules ({len(schedules)})"
    if not schedules:
        return _render.empty(title, "none: add one with qworker schedule add")
    rows = []
    for s in schedules:
        next_local, next_utc = _next(s)
        last = "-" if s.last_fire_ms is None else local_text(s.last_fire_ms, s.tz)
        rows.append(
            (
                s.name,
                s.spec,
                next_local,
                next_utc,
                last,
                (s.last_job_id or "-")[:8],
                "yes" if s.paused else "no",
            )
        )
    # The name, the job id and the flag are kept whole; the times and the spec wrap at their
    # spaces in a narrow terminal (cut short, every cell would be unreadable at 80 columns).
    columns: list[Col | str] = [
        Col("name", no_wrap=True),
        "spec",
        "next fire",
        "next (UTC)",
        "last fire",
        Col("last job", no_wrap=True),
        Col("paused", no_wrap=True),
    ]
    return _render.table(title, columns, rows)


def schedule_detail(schedule: Schedule) -> RenderableType:
    s = schedule
    next_local, next_utc = _next(s)
    last_local, last_utc = times_of(s.last_fire_ms, s.tz)
    window = [
        ("starts", None if s.start_ms is None else utc_text(s.start_ms)),
        ("ends", None if s.end_ms is None else utc_text(s.end_ms)),
    ]
    rows: list[tuple[str, object]] = [
        ("spec", s.spec),
        ("job type", s.job_type),
        ("params", Text(s.payload)),
        ("priority", s.priority),
        (
            "missed fires",
            f"{s.missed}" + (f" (at most {s.max_catchup})" if s.missed == "all" else ""),
        ),
        ("overlap", "skip while the last job is unfinished" if s.no_overlap else "allowed"),
        *[(label, value) for label, value in window if value],
        ("next fire", f"{next_local}  {next_utc}" if next_utc != "-" else next_local),
        ("last fire", f"{last_local}  {last_utc}" if last_utc != "-" else "-"),
        ("last due time fired", "-" if s.last_due_ms is None else utc_text(s.last_due_ms)),
        ("last job", s.last_job_id or "-"),
        ("jobs fired", s.fired),
        ("due times missed", s.missed_count),
        ("skipped (overlap)", s.overlapped),
        ("paused", "yes" if s.paused else "no"),
    ]
    return _render.table(f"Schedule {s.name}", ["field", "value"], rows)


def preview_table(title: str, times: list[PreviewTime], tz: str) -> RenderableType:
    rows = [
        (str(i), local_text(t.due_ms, tz), utc_text(t.due_ms), t.offset_change or "")
        for i, t in enumerate(times, 1)
    ]
    return _render.table(title, [Col("#", justify="right"), "local", "UTC", "DST change"], rows)


def preview_json(times: list[PreviewTime], tz: str) -> list[dict[str, Any]]:
    return [
        {
            "due": utc_text(t.due_ms),
            "due_ms": t.due_ms,
            "local": t.local.isoformat(),
            "local_text": local_text(t.due_ms, tz),
            "dst_change": t.offset_change,
        }
        for t in times
    ]
