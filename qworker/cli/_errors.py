"""The one place that turns an exception into one stderr line and an exit code.

Exit codes: 0 success, 1 the operation failed (Redis unreachable, ids not found), 2 bad usage or
validation, 3 a unique enqueue found the job that holds its key (nothing new was queued).
Tracebacks are shown only with ``--debug``. Nothing here imports Rich: errors are plain text, so
they print the same on a terminal, in a pipe and in a cron mail.
"""

from __future__ import annotations

import logging
import sys
import traceback

from qworker.errors import (
    ConfigurationError,
    JobNotFound,
    QworkerError,
    RedisUnavailable,
    ValidationFailed,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DUPLICATE = 3
EXIT_INTERRUPTED = 130

# Checked in order: the first matching class decides the exit code.
_EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (ValidationFailed, EXIT_USAGE),
    (ConfigurationError, EXIT_USAGE),
    (JobNotFound, EXIT_FAILED),
    (RedisUnavailable, EXIT_FAILED),
    (QworkerError, EXIT_FAILED),
)


class CliError(Exception):
    """A failure the CLI itself reports (not from the core): message plus exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(CliError):
    """Bad arguments found after parsing (conflicting flags, an unparseable duration)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


def one_line(text: str) -> str:
    """Collapse a possibly multi-line message into one line."""
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def describe(exc: BaseException) -> tuple[str, int]:
    """The message and the exit code for ``exc``."""
    if isinstance(exc, CliError):
        return one_line(str(exc)), exc.exit_code
    if type(exc).__name__ == "Abort":  # Typer's (click's) Ctrl-C or end of input at a prompt
        return "aborted", EXIT_FAILED
    click_error = _click_error(exc)
    if click_error is not None:
        return click_error
    for cls, code in _EXIT_CODES:
        if isinstance(exc, cls):
            return one_line(str(exc)) or type(exc).__name__, code
    if _is_redis_error(exc):
        return f"Redis error: {one_line(str(exc)) or type(exc).__name__}", EXIT_FAILED
    detail = one_line(str(exc))
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return f"unexpected error: {text} (run with --debug for the traceback)", EXIT_FAILED


def _click_error(exc: BaseException) -> tuple[str, int] | None:
    """Typer's (click's) own errors, recognised by shape: Typer has shipped click both as a
    dependency and vendored, so their classes live in different modules across versions."""
    format_message = getattr(exc, "format_message", None)
    exit_code = getattr(exc, "exit_code", None)
    if not callable(format_message) or not isinstance(exit_code, int):
        return None
    message = one_line(str(format_message()))
    ctx = getattr(exc, "ctx", None)
    if exit_code == EXIT_USAGE and ctx is not None:
        message = message.rstrip(".") + f" (see '{ctx.command_path} --help')"
    return message, exit_code


def _is_redis_error(exc: BaseException) -> bool:
    # redis is imported only by commands that talk to Redis; look it up instead of importing it.
    redis_exceptions = sys.modules.get("redis.exceptions")
    return redis_exceptions is not None and isinstance(exc, redis_exceptions.RedisError)


def report(exc: BaseException, *, debug: bool = False) -> int:
    """Print ``exc`` to stderr as one line (and its traceback with --debug); return the code."""
    message, code = describe(exc)
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    return code


class WarningLines(logging.Handler):
    """qworker's warnings as ``warning: ...`` lines on stderr, for commands that configure no
    logging of their own (``qworker work`` replaces it with its log format). It looks up
    ``sys.stderr`` at each line, so a swapped stderr (a test runner's) still gets them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"warning: {one_line(record.getMessage())}\n")
        except Exception:
            self.handleError(record)
