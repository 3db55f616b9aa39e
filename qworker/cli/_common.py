"""What every command shares: the global options, settings, a service, and the event loop.

Heavy modules (pydantic-settings, redis, the service) are imported inside these functions, so a
command pays only for what it uses.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from qworker.cli._errors import UsageError
from qworker.errors import ConfigurationError

if TYPE_CHECKING:
    from qworker.config import Settings
    from qworker.service import QueueService

T = TypeVar("T")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# The global options that stand for a setting, to name the option the user typed in an error.
_OPTION_OF_SETTING = {
    "redis_url": "--redis-url",
    "namespace": "--namespace",
    "redis_sentinels": "--sentinels",
    "redis_sentinel_master": "--sentinel-master",
    "redis_tls_ca": "--tls-ca",
    "redis_tls_cert": "--tls-cert",
    "redis_tls_key": "--tls-key",
}


def priority_option(help_text: str) -> Any:
    """``--priority/-p PRIORITY`` (1 to 4), spelled the same by every command that takes one."""
    return typer.Option(
        "--priority",
        "-p",
        min=1,
        max=4,
        metavar="PRIORITY",
        help=help_text,
        show_default=False,
    )


@dataclass
class CliState:
    """The global options, kept on the Typer context for every command."""

    redis_url: str | None = None
    namespace: str | None = None
    debug: bool = False
    allow_eviction: bool = False
    # Sentinel, Cluster and TLS options given on the command line, as Settings fields.
    connection: dict[str, Any] = field(default_factory=dict)

    def settings(self, **overrides: Any) -> Settings:
        """Settings from the environment and ``.env``, with the global options on top."""
        from pydantic import ValidationError

        from qworker.config import Settings

        if self.redis_url is not None:
            overrides["redis_url"] = self.redis_url
        if self.namespace is not None:
            overrides["namespace"] = self.namespace
        if self.allow_eviction:
            overrides["allow_eviction"] = True
        overrides = {**self.connection, **overrides}
        try:
            return Settings(**overrides)
        except ValidationError as exc:
            given = {name for name in overrides if name in _OPTION_OF_SETTING}
            raise ConfigurationError(
                f"invalid settings: {_describe_settings_error(exc, given)}"
            ) from None


def _describe_settings_error(exc: Any, options: set[str] | frozenset[str] = frozenset()) -> str:
    """``QWORKER_LEASE_SECONDS: Input should be a valid number (got 'abc')``: named as the
    variable the user set (aliases such as TWITTER_API_KEY are already upper case), or as the
    option (``--namespace``) for settings in ``options``, given on the command line."""
    parts = []
    for error in exc.errors(include_url=False):
        name = ".".join(str(part) for part in error["loc"])
        if name in options:
            variable = _OPTION_OF_SETTING[name]
        else:
            variable = name if name.isupper() else f"QWORKER_{name.upper()}"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{variable}: {message} (got {error.get('input')!r})")
    return "; ".join(parts)


def state_of(ctx: typer.Context) -> CliState:
    state = ctx.find_object(CliState)
    return state if state is not None else CliState()


def open_service(settings: Settings) -> QueueService:
    """A QueueService for ``settings``; a malformed Redis URL is a usage error."""
    from qworker.config import mask_url
    from qworker.service import QueueService

    try:
        return QueueService(settings=settings)
    except ValueError as exc:
        raise UsageError(f"invalid Redis URL {mask_url(settings.redis_url)}: {exc}") from None


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def with_service(settings: Settings, action: Callable[[QueueService], Awaitable[T]]) -> T:
    """Open a service, run ``action`` with it, close it: one event loop per command."""
    service = open_service(settings)

    async def go() -> T:
        async with service:
            return await action(service)

    return run(go())


def parse_duration_s(text: str, option: str | None = None) -> float:
    """``90``, ``90s``, ``10m``, ``2h``, ``1d``, ``1h30m``, ``500ms`` -> seconds (finite). An
    error names ``option`` (``--for``) when given, so the user knows which value to fix."""
    value = text.strip().lower()
    try:
        total_s = float(value)
    except ValueError:
        total_s = _sum_of_parts(text, value, option)
    if not math.isfinite(total_s):
        raise UsageError(f"{_for(option)}the duration {text!r} is not a finite number of seconds")
    return total_s


def parse_positive_duration_s(text: str, option: str) -> float:
    """A duration above zero (a timeout, a pause, a unique-for time)."""
    total_s = parse_duration_s(text, option)
    if total_s <= 0:
        raise UsageError(f"invalid value for {option}: {text!r} is not a positive duration")
    return total_s


def _for(option: str | None) -> str:
    return f"invalid value for {option}: " if option else ""


def _sum_of_parts(text: str, value: str, option: str | None = None) -> float:
    position, total_s = 0, 0.0
    for match in _DURATION_PART.finditer(value):
        if match.start() != position:
            break
        total_s += float(match.group(1)) * _UNIT_S[match.group(2)]
        position = match.end()
    if position != len(value) or not value:
        raise UsageError(
            f"{_for(option)}cannot read the duration {text!r}; use e.g. 90s, 10m, 2h or 1h30m"
        )
    return total_s


def parse_time_ms(text: str) -> int:
    """An ISO-8601 time (``2024-05-01T09:30``, ``...Z``, ``...+02:00``; local time if no zone)
    as epoch milliseconds, from 1970 on."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"cannot read the time {text!r}; use ISO-8601, e.g. 2025-05-01T09:30:00+02:00"
        ) from None
    try:
        if moment.tzinfo is None:
            moment = moment.astimezone()  # a naive time is the local time of this machine
        at_ms = int(moment.timestamp() * 1000)
    except (OverflowError, ValueError, OSError):
        at_ms = -1  # beyond what this machine's clock functions handle: out of range anyway
    if at_ms < 0:
        raise UsageError(f"the time {text!r} is out of range: use a time from 1970 on")
    return at_ms


def schedule(delay: str | None, at: str | None) -> tuple[float | None, int | None]:
    """``--delay``/``--at`` as the service's ``(delay_s, run_at_ms)``."""
    if delay is not None and at is not None:
        raise UsageError("give --delay or --at, not both")
    delay_s = parse_duration_s(delay, "--delay") if delay is not None else None
    if delay_s is not None and delay_s < 0:
        raise UsageError(f"--delay must not be negative, not {delay!r}")
    return delay_s, parse_time_ms(at) if at is not None else None
