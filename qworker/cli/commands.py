"""The ``qworker`` Typer application: every command group, wired in this one place.

Each command group lives in its own module, errors are mapped in ``_errors.py`` and tables are
drawn in ``_render.py``. Nothing heavy is imported here (cron lines run ``qworker enqueue``
often), so every command imports what it needs when it runs. ``qworker.cli.main`` builds this
application only for what the fast enqueue path (``fast_enqueue.py``) leaves to it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from qworker import __version__
from qworker.cli import (
    clear,
    demo,
    dlq,
    enqueue,
    job,
    jobs,
    metrics,
    pause,
    retry,
    schedule,
    stats,
    thread,
    web,
    work,
)
from qworker.cli._common import CliState
from qworker.cli._errors import EXIT_INTERRUPTED, EXIT_OK, WarningLines, report
from qworker.cli._help import plain_placeholders

# The order commands are listed in --help: the life of a job.
COMMAND_ORDER = (
    "enqueue",
    "work",
    "stats",
    "job",
    "jobs",
    "pause",
    "resume",
    "metrics",
    "web",
    "retry-drain",
    "dlq",
    "clear",
    "demo",
)
HELP_OPTION_NAMES = ["-h", "--help"]


class QworkerGroup(TyperGroup):
    """Runs the command line and turns anything that escapes a command into one stderr line and
    an exit code (``_errors.py``), also under ``typer.testing.CliRunner``."""

    def list_commands(self, ctx: Any) -> list[str]:
        rank = {name: index for index, name in enumerate(COMMAND_ORDER)}
        return sorted(super().list_commands(ctx), key=lambda name: rank.get(name, len(rank)))

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        plain_placeholders(self, HELP_OPTION_NAMES)
        state = CliState()
        extra.setdefault("obj", state)
        logger, warnings = logging.getLogger("qworker"), WarningLines()
        if not logger.handlers:
            logger.addHandler(warnings)
        try:
            result = super().main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )
            code = result if isinstance(result, int) else EXIT_OK
        except KeyboardInterrupt:
            code = EXIT_INTERRUPTED
        except Exception as exc:
            help_code = _show_help(exc)
            code = report(exc, debug=state.debug) if help_code is None else help_code
        finally:
            logger.removeHandler(warnings)
        if standalone_mode:
            sys.exit(code)
        return code


def _show_help(exc: Exception) -> int | None:
    """``qworker`` or ``qworker dlq`` alone: print that group's help, as click would."""
    if type(exc).__name__ != "NoArgsIsHelpError":
        return None
    show = getattr(exc, "show", None)
    if callable(show):
        show()
    return 2


app = typer.Typer(
    name="qworker",
    cls=QworkerGroup,
    help="qworker: a Redis job queue. Enqueue jobs, run workers, watch and repair the queues.",
    epilog='Example: qworker enqueue tweet "Hello" --priority 2 && qworker stats',
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": HELP_OPTION_NAMES},
)


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"qworker {__version__}\n")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    redis_url: Annotated[
        str | None,
        typer.Option(
            "--redis-url",
            metavar="URL",
            help="Redis to use. Default: QWORKER_REDIS_URL or REDIS_URL, then "
            "redis://localhost:6379/0.",
            show_default=False,
        ),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            metavar="NAME",
            help="Key prefix shared by producers and workers. Default: QWORKER_NAMESPACE.",
            show_default=False,
        ),
    ] = None,
    sentinels: Annotated[
        str | None,
        typer.Option(
            "--sentinels",
            metavar="HOST:PORT,...",
            help="Find the master through these sentinels (QWORKER_REDIS_SENTINELS).",
            show_default=False,
        ),
    ] = None,
    sentinel_master: Annotated[
        str | None,
        typer.Option(
            "--sentinel-master",
            metavar="NAME",
            help="The master the sentinels watch (QWORKER_REDIS_SENTINEL_MASTER).",
            show_default=False,
        ),
    ] = None,
    cluster: Annotated[
        bool | None,
        typer.Option(
            "--cluster/--no-cluster",
            help="The URL names a Redis Cluster node (QWORKER_REDIS_CLUSTER).",
            show_default=False,
        ),
    ] = None,
    tls_ca: Annotated[
        str | None,
        typer.Option("--tls-ca", metavar="FILE", help="CA for rediss:// (QWORKER_REDIS_TLS_CA)."),
    ] = None,
    tls_cert: Annotated[
        str | None,
        typer.Option("--tls-cert", metavar="FILE", help="Client certificate for rediss://."),
    ] = None,
    tls_key: Annotated[
        str | None,
        typer.Option("--tls-key", metavar="FILE", help="Key of the client certificate."),
    ] = None,
    allow_eviction: Annotated[
        bool,
        typer.Option(
            "--allow-eviction",
            help="Run on a Redis whose maxmemory-policy may evict keys (jobs can then be lost "
            "without a trace), with a warning instead of refusing (QWORKER_ALLOW_EVICTION).",
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and debug logs on errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    state = ctx.ensure_object(CliState)
    state.redis_url = redis_url
    state.namespace = namespace
    state.debug = debug
    state.allow_eviction = allow_eviction
    given = {
        "redis_sentinels": sentinels,
        "redis_sentinel_master": sentinel_master,
        "redis_cluster": cluster,
        "redis_tls_ca": tls_ca,
        "redis_tls_cert": tls_cert,
        "redis_tls_key": tls_key,
    }
    state.connection = {name: value for name, value in given.items() if value is not None}


enqueue.app.command("thread", epilog=thread.EXAMPLE)(thread.enqueue_thread)
app.add_typer(enqueue.app, name="enqueue")
app.command("work", epilog=work.EXAMPLE)(work.work)
app.command("stats", epilog=stats.EXAMPLE)(stats.stats)
app.add_typer(job.app, name="job")
app.add_typer(jobs.app, name="jobs")
app.command("pause", epilog=pause.PAUSE_EXAMPLE)(pause.pause)
app.command("resume", epilog=pause.RESUME_EXAMPLE)(pause.resume)
app.add_typer(metrics.app, name="metrics")
app.command("web", epilog=web.EXAMPLE)(web.web)
app.command("retry-drain", epilog=retry.EXAMPLE)(retry.retry_drain)
app.add_typer(dlq.app, name="dlq")
app.add_typer(schedule.app, name="schedule")
app.command("clear", epilog=clear.EXAMPLE)(clear.clear)
app.command("demo", epilog=demo.EXAMPLE)(demo.demo)
