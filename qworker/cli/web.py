"""``qworker web``: the web admin UI (``pip install 'qworker-redis[web]'``), read-only unless
``--allow-actions``, and refused beyond loopback without ``--token-file``."""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import logging
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qworker.cli._common import open_service, state_of
from qworker.cli._errors import CliError, UsageError
from qworker.errors import ConfigurationError

if TYPE_CHECKING:
    import uvicorn

    from qworker.web.settings import WebSettings

EXAMPLE = "Example: qworker web --port 8080 --allow-actions   (then open http://127.0.0.1:8080/)"
INSTALL_HINT = "the web UI needs its extra: pip install 'qworker-redis[web]'"
WEB_MODULES = ("starlette", "jinja2", "uvicorn", "multipart")

log = logging.getLogger("qworker.web")


def require_web_extra() -> None:
    """One line naming the install command when the extra is missing."""
    missing = [name for name in WEB_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise CliError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")


def web(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", metavar="ADDRESS", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, metavar="PORT", help="Port to listen on.")
    ] = 8080,
    allow_actions: Annotated[
        bool,
        typer.Option(
            "--allow-actions",
            help="Allow requeue, delete, cancel, pause, resume and trigger (default: read-only).",
        ),
    ] = False,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            metavar="FILE",
            help="Require a login with one of these tokens (a line each, LABEL:TOKEN); needed "
            "to listen beyond loopback.",
            show_default=False,
        ),
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option(
            "--secret-file",
            metavar="FILE",
            help="Sign sessions with this secret (32+ characters) instead of a new one per "
            "start: logins then outlast a restart, and hold across web processes given the "
            "same files.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the web admin UI: live overview, queues, jobs, dead letter, rate limits, schedules,
    audit."""
    from qworker.web.settings import (
        WebSettings,
        check_bind,
        load_secret,
        load_tokens,
        session_secret,
    )

    tokens = load_tokens(token_file) if token_file is not None else {}
    secret = load_secret(secret_file) if secret_file is not None else None
    try:
        check_bind(host, tokens)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    require_web_extra()
    state = state_of(ctx)
    queue_settings = state.settings()
    open_service(queue_settings)  # a malformed Redis URL: exit 2 now, not at the first page
    settings = WebSettings(queue=queue_settings, allow_actions=allow_actions, tokens=tokens)
    if secret is not None:
        settings.secret = session_secret(secret, tokens)
    serve(settings, host, port, debug=state.debug)


def serve(settings: WebSettings, host: str, port: int, *, debug: bool = False) -> None:
    """Run uvicorn until SIGINT/SIGTERM, then exit 0; a port in use is one line, exit 2."""
    from qworker.logs import configure_logging

    configure_logging(settings.queue.log_format, logging.DEBUG if debug else logging.INFO)
    server = build_server(settings, host, port, debug=debug)
    log.info(
        "serving the web UI of redis %s, namespace %s, on %s (%s)",
        settings.queue.masked_redis_url(),
        settings.queue.namespace or "(none)",
        url_of(host, port),
        describe(settings),
    )
    with stop_signals_end_quietly():
        server.run()
    log.info("web UI stopped")


def build_server(
    settings: WebSettings, host: str, port: int, *, debug: bool = False
) -> uvicorn.Server:
    """A uvicorn server for the UI, after checking the port is free (uvicorn would exit
    with a traceback-free but multi-line error of its own)."""
    import uvicorn

    from qworker.web import create_app

    check_port_free(host, port)
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level="debug" if debug else "warning",
        # Live streams end within STOP_CHECK_S of a stop; nothing else takes longer.
        timeout_graceful_shutdown=5,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    settings.stopping = lambda: server.should_exit
    return server


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "the address is already in use" if exc.errno == errno.EADDRINUSE else exc
            raise ConfigurationError(
                f"cannot serve the web UI on {host}:{port}: {reason}"
            ) from None


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def describe(settings: WebSettings) -> str:
    mode = "actions allowed" if settings.allow_actions else "read-only"
    login = "token login" if settings.login_required else "no login: loopback only"
    return f"{mode}, {login}"


@contextlib.contextmanager
def stop_signals_end_quietly() -> Iterator[None]:
    """uvicorn catches SIGINT/SIGTERM while it serves, then raises the signal again once it
    has stopped; with these handlers in place that second one is a no-op, so a stop asked for
    ends with exit 0 instead of a KeyboardInterrupt or a death by SIGTERM."""
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
