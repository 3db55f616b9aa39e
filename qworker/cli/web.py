"""``qworker web``: the web admin UI (``pip install 'qworker[web]'``), read-only unless
``--allow-actions``, and refused beyond loopback without ``--token-file``."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qworker.cli._common import open_service, state_of
from qworker.cli._errors import CliError, UsageError
from qworker.errors import ConfigurationError

if TYPE_CHECKING:
    from qworker.web.settings import WebSettings

EXAMPLE = "Example: qworker web --port 8080 --allow-actions   (then open http://127.0.0.1:8080/)"
INSTALL_HINT = "the web UI needs its extra: pip install 'qworker[web]'"
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
            help="Allow requeue, delete, cancel, pause and resume (default: read-only).",
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
) -> None:
    """Serve the web admin UI: live overview, queues, jobs, dead letter, rate limits, audit."""
    from qworker.web.settings import WebSettings, check_bind, load_tokens

    tokens = load_tokens(token_file) if token_file is not None else {}
    try:
        check_bind(host, tokens)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    require_web_extra()
    state = state_of(ctx)
    queue_settings = state.settings()
    open_service(queue_settings)  # a malformed Redis URL: exit 2 now, not at the first page
    settings = WebSettings(queue=queue_settings, allow_actions=allow_actions, tokens=tokens)
    serve(settings, host, port, debug=state.debug)


def serve(settings: WebSettings, host: str, port: int, *, debug: bool = False) -> None:
    """Run uvicorn until SIGINT/SIGTERM (exit 0); a port in use is one line, exit 2."""
    import uvicorn

    from qworker.logs import configure_logging
    from qworker.web import create_app

    configure_logging(settings.queue.log_format, logging.DEBUG if debug else logging.INFO)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="debug" if debug else "warning",
        # Live pages hold a connection open: do not wait for them at shutdown.
        timeout_graceful_shutdown=1,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    mode = "actions allowed" if settings.allow_actions else "read-only"
    login = "token login" if settings.login_required else "no login (loopback only)"
    shown_host = f"[{host}]" if ":" in host else host
    log.info(
        "serving the web UI of redis %s, namespace %s, on http://%s:%d/ (%s, %s)",
        settings.queue.masked_redis_url(),
        settings.queue.namespace or "(none)",
        shown_host,
        port,
        mode,
        login,
    )
    server.run()
    if not server.started:
        raise ConfigurationError(f"cannot serve the web UI on {host}:{port} (address in use?)")
