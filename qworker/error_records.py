"""Error records: why an attempt failed (exception type, message, the end of its traceback), as
stored on the job and kept in the dead-letter queue. Whatever a job raised, a record stays small:
a 1 MB exception message must not make a 1 MB dead-letter entry.
"""

from __future__ import annotations

import json
import traceback

from qworker.models import JobError as JobErrorRecord

ERROR_RECORD_MAX_BYTES = 8192
ERROR_TYPE_MAX_CHARS = 200
ERROR_MESSAGE_MAX_CHARS = 2000
ERROR_MESSAGE_MAX_BYTES = 3000
TRACEBACK_ENTRIES = 12
TRACEBACK_ENTRY_MAX_CHARS = 1000
ONE_LINE_MAX_CHARS = 300


def error_json(kind: str, message: str, trace: str = "") -> str:
    """The error record of a failed attempt as JSON, at most ``ERROR_RECORD_MAX_BYTES``: the
    head of the type and message, the tail of the traceback (the frames nearest the raise)."""
    kind = _fit(_clean(_head(kind, ERROR_TYPE_MAX_CHARS)), ERROR_TYPE_MAX_CHARS * 2, tail=False)
    message = _fit(
        _clean(_head(message, ERROR_MESSAGE_MAX_CHARS)), ERROR_MESSAGE_MAX_BYTES, tail=False
    )
    without_trace = JobErrorRecord(type=kind, message=message).model_dump_json()
    room = ERROR_RECORD_MAX_BYTES - len(without_trace.encode())
    trace = _fit(_clean(trace[-ERROR_RECORD_MAX_BYTES:]), room, tail=True)
    return JobErrorRecord(type=kind, message=message, traceback=trace).model_dump_json()


def _clean(text: str) -> str:
    """Without lone surrogates (bytes a job decoded with ``surrogateescape``): JSON has none."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _fit(text: str, max_bytes: int, *, tail: bool) -> str:
    """The head (or tail) of ``text`` whose JSON string takes at most ``max_bytes``: control
    characters escape to six bytes, others take one to four."""
    while text:
        size = len(json.dumps(text, ensure_ascii=False).encode()) - 2  # without the quotes
        if size <= max_bytes:
            break
        keep = max(len(text) * max_bytes // size - 1, 0)
        text = text[len(text) - keep :] if tail else text[:keep]
    return text


def _head(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]} ... ({len(text) - max_chars} more characters)"


def traceback_tail(exc: BaseException) -> str:
    """The last entries of the traceback, each cut short: a huge message must not crowd out
    the frames that say where it was raised."""
    try:
        entries = traceback.format_exception(exc)[-TRACEBACK_ENTRIES:]
    except Exception:  # a job's exception whose __str__ itself raises
        return ""
    return "".join(
        entry
        if len(entry) <= TRACEBACK_ENTRY_MAX_CHARS
        else _head(entry, TRACEBACK_ENTRY_MAX_CHARS)
        for entry in entries
    )


def text_of(exc: BaseException) -> str:
    """``str(exc)``, which is job code too: it may raise."""
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__name__} whose str() raised>"


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``, short enough for a log line."""
    text = text_of(exc)
    first = _head(text.splitlines()[0], ONE_LINE_MAX_CHARS) if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
