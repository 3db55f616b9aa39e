"""The ASGI app: ``create_app(settings)`` for ``qworker web``, or to mount in your own app.

Every page is a GET that only reads, answered as HTML or, with ``?format=json``, as JSON (its
twin, for scripts). Every action is a POST (``actions.py``) refused unless the settings allow
actions. Sessions, login and CSRF live in ``security.py``; the live parts in ``live.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from qworker.connection import CONNECTION_ERRORS, unavailable
from qworker.errors import JobNotFound, QworkerError, RedisUnavailable, ValidationFailed
from qworker.schedule_store import ScheduleBusy, ScheduleNotFound
from qworker.service import QueueService
from qworker.web import formatting
from qworker.web.security import (
    SESSION_COOKIE,
    Session,
    bearer_user,
    cookie_options,
    csrf_token,
    encode_session,
    session_of,
)
from qworker.web.settings import WebSettings


@dataclass
class Ctx:
    """What a page handler gets: the request, who asks, and the queue."""

    request: Request
    session: Session
    settings: WebSettings
    service: QueueService

    @property
    def wants_json(self) -> bool:
        return self.request.query_params.get("format") == "json" or "application/json" in (
            self.request.headers.get("accept", "")
        )

    @property
    def base(self) -> str:
        """The path the app is mounted at ('' when it is the whole site)."""
        return str(self.request.scope.get("root_path", "")).rstrip("/")


Handler = Callable[[Ctx], Awaitable[Response]]


def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("qworker.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    formatting.install(env)
    return env


def guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A page or action that needs a signed-in user (or a loopback server without tokens);
    others are sent to the login form (a JSON or bearer client gets 401)."""

    async def endpoint(request: Request) -> Response:
        settings: WebSettings = request.app.state.web
        session = session_of(request)
        if not session.authenticated:
            who = bearer_user(request)
            if who is None:
                return _unauthenticated(request)
            session = Session(session.session_id, who, True)
        ctx = Ctx(request, session, settings, request.app.state.service)
        response = await handler(ctx)
        if session.new and not request.headers.get("authorization"):
            # The CSRF tokens in the page are bound to this session: keep it.
            response.set_cookie(
                SESSION_COOKIE,
                encode_session(settings, session.session_id, session.who),
                **cookie_options(request),
            )
        return response

    return endpoint


def _unauthenticated(request: Request) -> Response:
    base = str(request.scope.get("root_path", "")).rstrip("/")
    if request.method == "GET" and request.query_params.get("format") != "json":
        return RedirectResponse(f"{base}/login", status_code=303)
    return JSONResponse({"error": "log in first (or send Authorization: Bearer TOKEN)"}, 401)


def render(ctx: Ctx, template: str, data: dict[str, Any], status: int = 200) -> Response:
    """The page as HTML, or its data as JSON for ``?format=json``."""
    if ctx.wants_json:
        return JSONResponse(jsonable(data), status_code=status)
    env: Environment = ctx.request.app.state.templates
    html = env.get_template(template).render(
        **data,
        base=ctx.base,
        who=ctx.session.who,
        login_required=ctx.settings.login_required,
        allow_actions=ctx.settings.allow_actions,
        csrf=csrf_token(ctx.settings, ctx.session),
        path=ctx.request.url.path,
        now_ms=ctx.service.clock.now_ms(),
    )
    return HTMLResponse(html, status_code=status)


def jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


async def _error_page(request: Request, exc: Exception) -> Response:
    """Known errors as a short page (or JSON): 400 bad input, 404 no such job or schedule, 409
    a schedule that kept changing while it was resumed, 503 no Redis."""
    status = 500
    if isinstance(exc, ValidationFailed):
        status = 400
    elif isinstance(exc, JobNotFound | ScheduleNotFound):
        status = 404
    elif isinstance(exc, ScheduleBusy):
        status = 409
    elif isinstance(exc, RedisUnavailable):
        status = 503
    return error_response(request, str(exc), status)


async def _redis_down(request: Request, exc: Exception) -> Response:
    """Redis unreachable on a direct read (the service wraps its own, as RedisUnavailable;
    the schedule store reads through its client): 503 with the reason, not a 500."""
    settings: WebSettings = request.app.state.web
    return error_response(request, str(unavailable(settings.queue.redis_url, exc)), 503)


def error_response(request: Request, message: str, status: int) -> Response:
    """A short HTML page for a browser, JSON for a script (``?format=json``, or a client that
    does not ask for HTML)."""
    wants_html = "text/html" in request.headers.get("accept", "")
    if request.query_params.get("format") == "json" or not wants_html:
        return JSONResponse({"error": message}, status_code=status)
    env: Environment = request.app.state.templates
    base = str(request.scope.get("root_path", "")).rstrip("/")
    html = env.get_template("error.html").render(
        message=message, status=status, base=base, path=request.url.path, allow_actions=False
    )
    return HTMLResponse(html, status_code=status)


def create_app(settings: WebSettings | None = None) -> Starlette:
    """The web UI as an ASGI app; mount it in your own app with ``Mount("/queue", app)``."""
    from qworker.web import actions, live, pages, schedules

    web = settings or WebSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service = app.state.service
        try:
            yield
        finally:
            if web.service_factory is None:  # a service made by its factory is its owner's
                await service.close()

    routes: list[BaseRoute] = [
        *pages.routes(),
        *actions.routes(),
        *schedules.routes(),
        *live.routes(),
        Mount("/static", app=StaticFiles(packages=[("qworker.web", "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            QworkerError: _error_page,
            **dict.fromkeys(CONNECTION_ERRORS, _redis_down),
        },
    )
    app.state.web = web
    app.state.templates = templates()
    app.state.service = (
        web.service_factory() if web.service_factory else QueueService(settings=web.queue)
    )
    return app
