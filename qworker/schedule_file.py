"""Schedules declared in a TOML file (``qworker schedule sync FILE``), for deploys and version
control. Every schedule in the file is checked before any is stored, so a file with one bad
entry changes nothing.

.. code-block:: toml

    [schedules.weekly-digest]
    cron = "0 9 * * MON"
    tz = "Europe/Berlin"
    job = { job_type = "tweet", content = "This week's digest" }
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qworker.errors import ValidationFailed
from qworker.schedule_store import build_schedule
from qworker.schedules import DEFAULT_MAX_CATCHUP, Schedule

if TYPE_CHECKING:
    from qworker.config import Settings

KNOWN_KEYS = {
    "cron", "tz", "every", "job", "priority", "missed", "max_catchup", "no_overlap", "start",
    "end",
}  # fmt: skip


def read_schedule_file(path: Path, settings: Settings) -> list[Schedule]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationFailed(f"cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"{path} is not valid TOML: {exc}") from None
    extra = set(document) - {"schedules"}
    if extra:
        raise ValidationFailed(
            f"{path}: unknown top-level key(s) {sorted(extra)}; use [schedules.NAME]"
        )
    tables = document.get("schedules", {})
    if not isinstance(tables, dict):
        raise ValidationFailed(f"{path}: 'schedules' must be tables: [schedules.NAME]")
    return [_schedule(path, name, entry, settings) for name, entry in tables.items()]


def _schedule(path: Path, name: str, entry: Any, settings: Settings) -> Schedule:
    where = f"{path}: schedule {name!r}"
    if not isinstance(entry, dict):
        raise ValidationFailed(f"{where} must be a table")
    unknown = set(entry) - KNOWN_KEYS
    if unknown:
        raise ValidationFailed(
            f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}"
        )
    job = entry.get("job")
    if not isinstance(job, dict):
        raise ValidationFailed(f'{where} needs job = {{ job_type = "...", ... }}')
    try:
        return build_schedule(
            settings,
            name,
            job,
            cron=_typed(where, entry, "cron", str, None),
            tz=_typed(where, entry, "tz", str, "UTC"),
            every=_typed(where, entry, "every", str, None),
            priority=_typed(where, entry, "priority", int, 3),
            missed=_typed(where, entry, "missed", str, "once"),
            max_catchup=_typed(where, entry, "max_catchup", int, DEFAULT_MAX_CATCHUP),
            no_overlap=_typed(where, entry, "no_overlap", bool, False),
            start_ms=_time_ms(where, entry.get("start"), "start"),
            end_ms=_time_ms(where, entry.get("end"), "end"),
        )
    except ValidationFailed as exc:
        raise ValidationFailed(f"{where}: {exc}") from None


def _typed(where: str, entry: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = entry.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValidationFailed(f"{where}: {key} must be a {kind.__name__}, not {value!r}")
    return value


def _time_ms(where: str, value: Any, key: str) -> int | None:
    """A TOML date-time or an ISO-8601 string, with its UTC offset."""
    if value is None:
        return None
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValidationFailed(
            f"{where}: {key} must be a date-time with its UTC offset, e.g. 2026-12-01T09:00:00Z"
        )
    return int(moment.timestamp() * 1000)
