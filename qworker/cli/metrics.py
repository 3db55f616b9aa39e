"""``qworker metrics``: the queue's Prometheus metrics, read from Redis.

``qworker metrics`` prints the exposition text once (for node_exporter's textfile collector or
a cron line; exit 1 when Redis could not be read, with ``qworker_up 0`` still printed).
``qworker metrics serve`` answers scrapes until SIGTERM/SIGINT: run one per deployment, not
per worker (each worker exports its own metrics with ``qworker work --metrics-port``).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Annotated

import typer

from qworker.cli._common import state_of
from qworker.cli._errors import EXIT_FAILED, EXIT_OK

EXAMPLE = "Example: qworker metrics serve --port 9808   (once, to stdout: qworker metrics)"
DEFAULT_PORT = 9808

log = logging.getLogger("qworker.metrics")

app = typer.Typer(
    help="The queue's Prometheus metrics: print them once, or serve them (metrics serve).",
    epilog=EXAMPLE,
    invoke_without_command=True,
    no_args_is_help=False,
)


@app.callback()
def metrics(ctx: typer.Context) -> None:
    """Print the queue's metrics once in the Prometheus text format."""
    if ctx.invoked_subcommand is not None:
        return
    from prometheus_client import generate_latest

    from qworker.metrics.queue import open_collector, queue_registry

    collector = open_collector(state_of(ctx).settings())
    try:
        text = generate_latest(queue_registry(collector)).decode()
    finally:
        collector.client.close()
    sys.stdout.write(text)
    sys.stdout.flush()
    if collector.last_error is not None:
        raise typer.Exit(EXIT_FAILED)


@app.command("serve", epilog=EXAMPLE)
def serve(
    ctx: typer.Context,
    port: Annotated[
        int,
        typer.Option("--port", min=0, max=65535, metavar="PORT", help="Port to answer scrapes on."),
    ] = DEFAULT_PORT,
    host: Annotated[
        str,
        typer.Option("--host", metavar="ADDRESS", help="Address to listen on (0.0.0.0: all)."),
    ] = "127.0.0.1",
) -> None:
    """Answer Prometheus scrapes with the queue's metrics, read from Redis at each scrape."""
    from qworker.logs import configure_logging
    from qworker.metrics.http import serve as serve_http
    from qworker.metrics.queue import open_collector, queue_registry

    state = state_of(ctx)
    settings = state.settings()
    configure_logging(settings.log_format, logging.DEBUG if state.debug else logging.INFO)
    collector = open_collector(settings)
    server = serve_http(queue_registry(collector), port, host)
    log.info(
        "serving the queue metrics of redis %s, namespace %s, on %s",
        settings.masked_redis_url(),
        settings.namespace or "(none)",
        server.url,
    )
    try:
        wait_for_stop_signal()
    finally:
        server.close()
        collector.client.close()
    log.info("metrics server stopped")
    raise typer.Exit(EXIT_OK)


def wait_for_stop_signal(announce: str = "") -> None:
    """Block until SIGTERM or SIGINT (a stop asked for, not an error: exit 0 follows);
    ``announce`` goes to stderr once the signals are caught."""
    stop = threading.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in signals}
    if announce:
        sys.stderr.write(f"{announce}\n")
        sys.stderr.flush()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
