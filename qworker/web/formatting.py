"""How the pages show times, durations and JSON: Jinja filters, all pure functions."""

from __future__ import annotations

import json
import time
from typing import Any

from jinja2 import Environment

from qworker.throughput import OUTCOMES, ThroughputMinute

CHART_WIDTH = 600
CHART_HEIGHT = 120
OUTCOME_COLOURS = {
    "done": "#2e7d32",
    "retried": "#f9a825",
    "dead": "#c62828",
    "canceled": "#757575",
}


def clock_time(ms: int | None) -> str:
    """``2025-05-01 09:30:00`` (UTC), or a dash."""
    if ms is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + " UTC"


def duration(seconds: float) -> str:
    """``4s``, ``3m 20s``, ``2h 5m``, ``3d 4h``."""
    s = int(abs(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def relative(ms: int | None, now_ms: int) -> str:
    """``12s ago`` or ``in 3m 5s``."""
    if ms is None:
        return "-"
    delta_s = (ms - now_ms) / 1000
    return f"in {duration(delta_s)}" if delta_s > 0 else f"{duration(delta_s)} ago"


def pretty_json(text: str | None) -> str:
    """Indented JSON (the text as it is when it does not parse)."""
    if text is None:
        return "-"
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=True)
    except ValueError:
        return text


def chart_bars(minutes: list[ThroughputMinute]) -> list[dict[str, Any]]:
    """Stacked bars for an inline SVG: one per minute, one rectangle per outcome."""
    if not minutes:
        return []
    peak = max((m.total for m in minutes), default=0) or 1
    width = CHART_WIDTH / len(minutes)
    bars = []
    for index, minute in enumerate(minutes):
        y = float(CHART_HEIGHT)
        for outcome in OUTCOMES:
            count = minute.counts.get(outcome, 0)
            if not count:
                continue
            height = CHART_HEIGHT * count / peak
            y -= height
            bars.append(
                {
                    "x": round(index * width, 2),
                    "y": round(y, 2),
                    "w": round(max(width - 1, 1), 2),
                    "h": round(height, 2),
                    "colour": OUTCOME_COLOURS[outcome],
                    "title": f"{clock_time(minute.minute_ms)[11:16]} {outcome}: {count}",
                }
            )
    return bars


def install(env: Environment) -> None:
    env.filters["clock"] = clock_time
    env.filters["duration"] = duration
    env.filters["pretty_json"] = pretty_json
    env.globals["relative"] = relative
    env.globals["chart_bars"] = chart_bars
    env.globals["OUTCOMES"] = OUTCOMES
    env.globals["OUTCOME_COLOURS"] = OUTCOME_COLOURS
    env.globals["CHART_WIDTH"] = CHART_WIDTH
    env.globals["CHART_HEIGHT"] = CHART_HEIGHT
