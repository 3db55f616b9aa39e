"""One renderer for every command: a Rich table for people, or JSON for scripts.

Consoles are made when a command runs (so they see the real stdout, its width and ``NO_COLOR``).
Every cell that may hold user text goes through :func:`cell`, which makes a ``rich.text.Text``:
a tweet saying ``[red]`` is shown as typed, never read as markup.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.table import Table
from rich.text import Text

from qworker.clock import format_duration, format_iso


def stdout_console() -> Console:
    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    return Console(file=sys.stderr, highlight=False, soft_wrap=False)


def print_json(data: Any) -> None:
    """One JSON document on stdout (plain ``json``: never wrapped, never coloured)."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def message(text: str) -> None:
    """A line for people on stderr (what happened, not data)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def cell(value: object) -> Text:
    """A table cell; user text stays literal."""
    if isinstance(value, Text):
        return value
    return Text("-" if value is None else str(value))


@dataclass(frozen=True)
class Col:
    """A column: its header and how it behaves when the terminal is narrow."""

    header: str
    justify: JustifyMethod = "left"
    no_wrap: bool = False
    # The column that gives way when the terminal is narrow: its cells are cut short ("…").
    truncate: bool = False


def table(title: str, columns: Sequence[Col | str], rows: Iterable[Sequence[object]]) -> Table:
    """A table that fits the console: plain box, one header row, cells as literal text."""
    cols = [Col(column) if isinstance(column, str) else column for column in columns]
    result = Table(
        title=Text(title, style="bold"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),  # two spaces between columns, none at the edges
    )
    for col in cols:
        # Rich narrows wrappable columns first, so the truncating column stays wrappable while
        # its cells refuse to wrap: it is the one that shrinks, one line per row.
        result.add_column(
            col.header,
            justify=col.justify,
            no_wrap=col.no_wrap,
            overflow="ellipsis" if col.truncate else "fold",
        )
    for row in rows:
        cells = [cell(value) for value in row]
        for col, text in zip(cols, cells, strict=True):
            if col.truncate:
                text.no_wrap = True
                text.overflow = "ellipsis"
        result.add_row(*cells)
    return result


def empty(title: str, note: str) -> RenderableType:
    """A table with no rows: its title and a dim note instead of an empty grid."""
    return Group(Text(title, style="bold"), Text(note, style="dim"))


def stack(*renderables: RenderableType) -> Group:
    """Renderables one under the other, a blank line between them."""
    parts: list[RenderableType] = []
    for renderable in renderables:
        if parts:
            parts.append(Text(""))
        parts.append(renderable)
    return Group(*parts)


def show(*renderables: RenderableType) -> None:
    stdout_console().print(stack(*renderables))


# -- formatting ----------------------------------------------------------------------------


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def format_time(at_ms: int | None) -> str:
    """Local time, to the second; the date too unless it is today."""
    if at_ms is None:
        return "-"
    moment = time.localtime(at_ms / 1000)
    if time.strftime("%Y-%m-%d", moment) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M:%S", moment)
    return time.strftime("%Y-%m-%d %H:%M:%S", moment)


def format_ago(at_ms: int | None, now: int | None = None) -> str:
    if at_ms is None:
        return "-"
    return f"{format_duration(((now or now_ms()) - at_ms) / 1000)} ago"


def format_until(at_ms: int | None, now: int | None = None) -> str:
    """``now`` if the time has come, else ``in 5m 3s (14:02:11)``."""
    if at_ms is None:
        return "-"
    remaining_s = (at_ms - (now or now_ms())) / 1000
    if remaining_s <= 0:
        return "now"
    return f"in {format_duration(remaining_s)} ({format_time(at_ms)})"


def format_relative(at_ms: int, now: int | None = None) -> str:
    """``3m 5s ago``, ``in 2h``, ``now`` (to the nearest second; a zero last part dropped)."""
    delta_s = round((at_ms - (now or now_ms())) / 1000)
    if delta_s == 0:
        return "now"
    text = re.sub(r" 0[smh]$", "", format_duration(abs(delta_s)))
    return f"in {text}" if delta_s > 0 else f"{text} ago"


def format_moment(at_ms: int | None, now: int | None = None) -> str:
    """``2026-12-06T17:42:43Z (3m ago)``."""
    if at_ms is None:
        return "-"
    return f"{format_iso(at_ms)} ({format_relative(at_ms, now)})"


def format_limit(used: int, limit: int | None) -> str:
    return f"{used} / {'no limit' if limit is None else limit}"
