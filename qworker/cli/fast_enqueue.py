"""``qworker enqueue tweet TEXT`` and ``qworker enqueue json JOB_JSON`` without Typer or redis-py.

Cron lines start the command line often, and importing Typer and redis-py costs more than the
enqueue itself. This path recognises the plain forms (the global ``--redis-url``,
``--namespace``, ``--allow-eviction`` and ``--debug``; ``--priority``/``-p``, ``--id``,
``--unique-key`` and a tweet's ``--unique``) and does what the full path does with the same
code: the settings (``Settings``), the job type's own validation, the packing of
``producing.prepare``, the eviction check of ``eviction.py`` and the enqueue script call of
``scripts/``, sent over ``resp.py`` with ``EVALSHA`` (``EVAL`` when Redis lacks the script).

Errors have one source, the full path. Anything this path does not recognise (``--help``,
``--json``, ``--delay``, ``--media``, stdin, a ``thread``, Sentinel, Cluster, TLS, durable
replicas), and any failure before the script is sent (invalid input, an unreachable Redis, a
refused login, a Redis that may evict), it leaves to the Typer application, which prints the one
canonical message and exit code; nothing was sent, so nothing can be queued twice. A failure
after the script was sent is ambiguous (the job may be queued): the full path runs again with
the job's id as ``--id``, so it queues nothing if the job is there and reports the error its own
way if not.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qworker.cli._errors import (
    EXIT_DUPLICATE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    WarningLines,
    report,
)
from qworker.cli.enqueue_input import duplicate_line, read_argument, tweet_unique_key

if TYPE_CHECKING:
    from qworker.config import Settings
    from qworker.resp import RespConnection
    from qworker.scripts import EnqueueItem, EnqueueReply, ScriptCall

# What enqueue_fast returns to let the Typer application run on the arguments as given.
AS_GIVEN = None
_GLOBAL_VALUES = {"--redis-url": "redis_url", "--namespace": "namespace"}
_GLOBAL_FLAGS = {"--allow-eviction": "allow_eviction", "--debug": "debug"}
_COMMAND_VALUES = {
    "--priority": "priority",
    "-p": "priority",
    "--id": "job_id",
    "--unique-key": "unique_key",
}
_TWEET_FLAGS = {"--unique": "unique_text"}
# Set by a shell asking click to complete a command line: then nothing runs, click answers.
_COMPLETION_VARIABLE = "_QWORKER_COMPLETE"
# The priorities as Typer reads them without a second thought; "02" or " 2" go the full way.
_PRIORITY = re.compile(r"[1-4]")


class Declined(Exception):
    """Not this path's to do: the Typer application runs instead (nothing was sent)."""


@dataclass
class Request:
    """A plain ``qworker [global options] enqueue tweet|json ARGUMENT [options]``."""

    command: str = ""
    argument: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)

    @property
    def priority(self) -> int:
        return int(self.options.get("priority", "3"))


def enqueue_fast(args: Sequence[str]) -> int | list[str] | None:
    """Run a plain enqueue here: its exit code. Otherwise the arguments the Typer application
    must run with: ``AS_GIVEN`` (None), or ``args`` with the job's id once the script was sent."""
    request = parse(args)
    if request is None or _COMPLETION_VARIABLE in os.environ:
        return AS_GIVEN
    logger, warnings = logging.getLogger("qworker"), WarningLines()
    if not logger.handlers:  # as the Typer application does: a warning is one stderr line
        logger.addHandler(warnings)
    try:
        return _enqueue(request, list(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        logger.removeHandler(warnings)


def parse(args: Sequence[str]) -> Request | None:
    """The request, if ``args`` are a plain enqueue this path knows every part of."""
    request = Request()
    tokens = list(args)
    while tokens and tokens[0] != "enqueue":
        if not _take_option(tokens, request, _GLOBAL_VALUES, _GLOBAL_FLAGS):
            return None
    if len(tokens) < 2 or tokens[1] not in ("tweet", "json"):
        return None
    request.command = tokens[1]
    tokens = tokens[2:]
    flags = _TWEET_FLAGS if request.command == "tweet" else {}
    while tokens:
        token = tokens[0]
        if not token.startswith("-") and request.argument is None:
            request.argument = tokens.pop(0)
        elif not _take_option(tokens, request, _COMMAND_VALUES, flags):
            return None
    if request.argument is None:
        return None
    if "priority" in request.options and not _PRIORITY.fullmatch(request.options["priority"]):
        return None
    return request


def _take_option(
    tokens: list[str], request: Request, values: dict[str, str], flags: dict[str, str]
) -> bool:
    """Move one known option (``--name VALUE``, ``--name=VALUE`` or a flag) from ``tokens``
    into ``request``; False for anything else, or an option given twice."""
    name, equals, value = tokens[0].partition("=")
    if equals and not name.startswith("--"):
        return False  # click reads ``-p=2`` as the value "=2", not 2
    if name in flags and not equals:
        tokens.pop(0)
        if flags[name] in request.flags:
            return False
        request.flags.add(flags[name])
        return True
    if name not in values or values[name] in request.options:
        return False
    if not equals:
        if len(tokens) < 2:
            return False
        value = tokens[1]
        del tokens[1]
    tokens.pop(0)
    if value.startswith("-"):  # the full path decides whether that is a value or a mistake
        return False
    request.options[values[name]] = value
    return True


def _enqueue(request: Request, args: list[str]) -> int | list[str] | None:
    try:
        settings = _settings(request)
        item = _prepare(request, settings)
        connection = _connect(settings)
    except Exception:
        return AS_GIVEN  # the full path reports it, once and in its own words
    with connection:
        try:
            reply = _send(connection, _call(settings, item))
        except Exception:
            # It may have run: the full path again, with this job's id, cannot queue it twice.
            return args if "job_id" in request.options else [*args, "--id", item.job_id]
    holder = reply.duplicates.get(0)
    try:
        sys.stdout.write(f"{item.job_id if holder is None else holder}\n")
        if holder is None:
            return EXIT_OK
        sys.stdout.flush()
        sys.stderr.write(duplicate_line(holder, item.unique_key))
    except BrokenPipeError:
        # The reader of stdout is gone (``| head -0``): exit 1 in silence, as click does.
        sys.stdout, sys.stderr = _Pacified(sys.stdout), _Pacified(sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # no stdout at all (``>&-``): one line, as the full path says it
        return report(exc, debug="debug" in request.flags)
    return EXIT_DUPLICATE


class _Pacified:
    """A standard stream whose reader is gone: the flush at exit says nothing of it."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _settings(request: Request) -> Settings:
    """The settings as the Typer application reads them, if this path handles them all."""
    from qworker.config import Settings
    from qworker.deployment import ConnectionSpec

    overrides: dict[str, Any] = {
        name: request.options[name]
        for name in ("redis_url", "namespace")
        if name in request.options
    }
    if "allow_eviction" in request.flags:
        overrides["allow_eviction"] = True
    settings = Settings(**overrides)
    spec = ConnectionSpec.of(settings)
    spec.check(settings.namespace)
    if settings.durable_replicas or spec.is_sentinel or spec.cluster or spec.scheme == "rediss":
        raise Declined("durable replicas, Sentinel, Cluster and TLS take the full path")
    return settings


def _prepare(request: Request, settings: Settings) -> EnqueueItem:
    """The job as the service stores it: validated by its type, packed by producing.py."""
    from qworker.clients import ClientContainer
    from qworker.clock import SYSTEM_CLOCK
    from qworker.jobs.base import JobFactory, load_job_modules
    from qworker.producing import check_job_id, prepare, run_at_ms, with_unique_key

    assert request.argument is not None
    text = read_argument(request.argument)
    unique_key = request.options.get("unique_key")
    if request.command == "tweet":
        if "unique_text" in request.flags:
            if unique_key is not None:
                raise Declined("--unique and --unique-key: the full path says which to drop")
            unique_key = tweet_unique_key(text)
        job_data: Any = {"job_type": "tweet", "content": text}
    else:
        job_data = json.loads(text)
    job_id = request.options.get("job_id")
    if job_id is not None:
        check_job_id(job_id)
    load_job_modules(list(settings.job_modules))
    params = JobFactory.validate_params(job_data)
    ready_at_ms = run_at_ms(None, None, SYSTEM_CLOCK.now_ms())
    item = prepare(
        params, request.priority, ready_at_ms, job_id, settings, ClientContainer(settings)
    )
    return with_unique_key(item, unique_key, None, "finished")


def _connect(settings: Settings) -> RespConnection:
    """A connection to the settings' Redis, refused (Declined) if that Redis may evict jobs:
    the full path then says so, or warns as ``allow_eviction`` asks."""
    from qworker.eviction import info_problem, parse_info
    from qworker.resp import RespConnection

    connection = RespConnection.from_url(settings.redis_url)
    try:
        if info_problem(parse_info(str(connection.command("INFO", "memory")))) is not None:
            raise Declined("a Redis that may evict keys")
    except BaseException:
        connection.close()
        raise
    return connection


def _call(settings: Settings, item: EnqueueItem) -> ScriptCall[EnqueueReply]:
    from qworker.clock import SYSTEM_CLOCK
    from qworker.keys import QueueKeys
    from qworker.scripts import QueueScripts

    return QueueScripts(QueueKeys(settings.namespace)).enqueue([item], SYSTEM_CLOCK.now_ms())


def _send(connection: RespConnection, call: ScriptCall[EnqueueReply]) -> EnqueueReply:
    """Run the call by EVALSHA; a Redis that lacks the script (NOSCRIPT: nothing ran) is sent
    it by SCRIPT LOAD first (a least-privilege user may load scripts, not EVAL them)."""
    from qworker.resp import RespReplyError

    command = call.command()
    try:
        reply = connection.command(*command)
    except RespReplyError as exc:
        if exc.code != "NOSCRIPT":
            raise
        connection.command("SCRIPT", "LOAD", call.script.source)
        reply = connection.command(*command)
    return call.parse(reply)
