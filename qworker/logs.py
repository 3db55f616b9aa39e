"""Worker logging: one line per job outcome, human-readable or JSON lines, always to stderr."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

# Attributes every LogRecord has; anything else was passed in ``extra`` and belongs in JSON.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRS:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``2026-11-28T21:45:41.123 INFO    message``; the date part is formatted once a second,
    since a busy worker writes thousands of lines a second."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(message)s")
        self._second = -1
        self._second_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.timestamp(record.created)

    def timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(second))
        return f"{self._second_text}.{int((created - second) * 1000):03d}"


class _JobLines:
    """Where job-outcome lines go when qworker configured the logging itself.

    A busy worker writes thousands of these a second; going through ``logging`` (a LogRecord,
    handler locks, a formatter) cost as much as running the job. Lines written here look
    exactly like the handler's own, and go to the same stream."""

    def __init__(self) -> None:
        self.handler: logging.StreamHandler[TextIO] | None = None
        self.json = False
        self.text = TextFormatter()


_job_lines = _JobLines()
_QWORKER_LOGGER = logging.getLogger("qworker")


def log_job_outcome(logger: logging.Logger, message: str, fields: dict[str, Any]) -> None:
    """One line for one job outcome: ``message`` for people, ``fields`` for JSON lines."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _job_lines.handler
    if handler is None or handler not in _QWORKER_LOGGER.handlers:
        logger.info(message, extra=fields)
        return
    now = time.time()
    if _job_lines.json:
        entry = {"ts": round(now, 3), "level": "info", "logger": logger.name, "msg": message}
        line = json.dumps(entry | fields, default=str)
    else:
        record_time = _job_lines.text.timestamp(now)
        line = f"{record_time} INFO    {message}"
    try:
        handler.stream.write(line + "\n")
    except (ValueError, OSError):  # the stream was closed under us: let logging report it
        logger.info(message, extra=fields)


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    """Send qworker's logs to stderr in the chosen format (replacing earlier handlers).

    Meant for a process qworker runs (``qworker work``): it also turns off what the log lines
    never show (caller, thread and process lookups), a large share of a busy worker's time."""
    logging._srcfile = None  # documented in logging's source: skips findCaller()
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logger = logging.getLogger("qworker")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    _job_lines.handler = handler
    _job_lines.json = log_format == "json"
