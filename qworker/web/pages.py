"""The pages: GET only, each reading one page of its list (never a whole list), each with a
``?format=json`` twin. Stable URLs: ``/``, ``/queues``, ``/jobs/{id}``, ``/dlq``,
``/rate-limits``, ``/workers``, ``/audit`` (and ``/schedules``, in ``schedules.py``)."""

from __future__ import annotations

from typing import Any, cast

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from qworker.dependencies import FlowMember, job_links, waits_for
from qworker.errors import ValidationFailed
from qworker.job_control import MAX_PAGE
from qworker.models import JobRecord
from qworker.service import QueueService
from qworker.throughput import read_throughput
from qworker.web import audit
from qworker.web.app import Ctx, guarded, render
from qworker.web.security import (
    SESSION_COOKIE,
    check_token,
    cookie_options,
    csrf_token,
    csrf_valid,
    encode_session,
    new_session_id,
    session_of,
)

# The states the queues page lists, in the order a job lives them.
QUEUE_STATES = ("queued", "scheduled", "waiting", "retry", "parked", "paused", "running")
# A linked job's own links are left out of a page: a fan-in step can have thousands.
LINK_FIELDS = {"deps", "dependents"}
# The most dependencies, and dependents, a job's page lists (``qworker job show`` lists all).
LINKS_SHOWN = 100
# Dead jobs looked at per DLQ page when filtering by error text (the cursor goes on from there).
TEXT_FILTER_BUDGET = 5_000
TEXT_CHUNK = 200


async def overview_data(service: QueueService) -> dict[str, Any]:
    """The overview's figures: the counts ``stats`` shows, the last hour per minute, workers.
    Constant work whatever the queue holds (lengths, not lists)."""
    now_ms = service.clock.now_ms()
    return {
        "stats": await service.get_queue_stats(),
        "throughput": await read_throughput(service.redis, service.keys, now_ms),
        "workers": await service.list_workers(),
        "updated_ms": now_ms,
    }


async def overview(ctx: Ctx) -> Response:
    return render(ctx, "overview.html", await overview_data(ctx.service))


def page_limit(ctx: Ctx) -> int:
    text = ctx.request.query_params.get("limit", "")
    if not text:
        return ctx.settings.page_size
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise ValidationFailed(f"limit must be 1 to {MAX_PAGE}, not {text!r}")
    return int(text)


def _priority(text: str | None) -> int | None:
    if not text:
        return None
    if text not in ("1", "2", "3", "4"):
        raise ValidationFailed(f"priority must be 1 to 4, not {text!r}")
    return int(text)


async def queues(ctx: Ctx) -> Response:
    params = ctx.request.query_params
    state = params.get("state") or "queued"
    if state not in QUEUE_STATES:
        raise ValidationFailed(f"state must be one of {', '.join(QUEUE_STATES)}, not {state!r}")
    priority = _priority(params.get("priority"))
    limit = page_limit(ctx)
    page = await ctx.service.list_jobs(
        state,
        priority=priority,
        job_type=params.get("job_type") or None,
        limit=limit,
        cursor=params.get("cursor") or None,
    )
    data = {
        "limit": limit,
        "state": state,
        "priority": priority,
        "page": page,
        "stats": await ctx.service.get_queue_stats(),
        "waits_for": await _waits_for(ctx.service, page.jobs) if state == "waiting" else {},
    }
    return render(ctx, "queues.html", data)


async def _waits_for(service: QueueService, jobs: list[JobRecord]) -> dict[str, Any]:
    """Job id -> the first of its dependencies (with their states) and how many it has."""
    return {
        entry.job_id: {"dependencies": linked(entry.dependencies), "total": entry.total}
        for entry in await waits_for(service, [job.id for job in jobs])
    }


def linked(members: list[FlowMember]) -> list[dict[str, Any]]:
    return [member.model_dump(mode="json", exclude=LINK_FIELDS) for member in members]


async def find_job(ctx: Ctx) -> Response:
    """The search box: ``/jobs?id=PREFIX`` goes to the job's page."""
    given = ctx.request.query_params.get("id", "").strip()
    if not given:
        raise ValidationFailed("type a job id (or at least 6 of its first characters)")
    job_id = await ctx.service.resolve_job_id(given)
    return RedirectResponse(f"{ctx.base}/jobs/{job_id}", status_code=303)


async def job(ctx: Ctx) -> Response:
    """The job's record, the jobs of its flow next to it and, for a job a schedule fired, the
    schedule and due time (in the record: ``schedule``, ``scheduled_for_ms``)."""
    record = await ctx.service.find_job(ctx.request.path_params["job_id"])
    links = await job_links(ctx.service, record.id, LINKS_SHOWN)
    data = {
        "job": record,
        "dependencies": linked(links.dependencies),
        "dependents": linked(links.dependents),
        "more_dependencies": links.more_dependencies,
        "more_dependents": links.more_dependents,
    }
    return render(ctx, "job.html", data)


async def dlq(ctx: Ctx) -> Response:
    params = ctx.request.query_params
    job_type = params.get("job_type") or None
    text = params.get("q", "").strip()
    limit = page_limit(ctx)
    cursor = params.get("cursor") or None
    if not text:
        page = await ctx.service.list_jobs("dead", job_type=job_type, limit=limit, cursor=cursor)
        jobs, next_cursor = page.jobs, page.next_cursor
    else:
        jobs, next_cursor = await _dead_matching(ctx.service, job_type, text, limit, cursor)
    data = {
        "jobs": jobs,
        "next_cursor": next_cursor,
        "job_type": job_type or "",
        "q": text,
        "total": (await ctx.service.get_queue_stats()).dead_letter,
        "done": params.get("done", ""),
    }
    return render(ctx, "dlq.html", data)


async def _dead_matching(
    service: QueueService, job_type: str | None, text: str, limit: int, cursor: str | None
) -> tuple[list[JobRecord], str | None]:
    """Dead jobs (newest first) whose error contains ``text`` (case-insensitive). Reads the
    dead-letter set a chunk at a time and stops at the page's last match, so the cursor (the
    form ``list_jobs`` uses) goes on exactly after it; at most TEXT_FILTER_BUDGET jobs are
    looked at per page, however rare the matches."""
    offset = _dead_offset(cursor)
    wanted = text.lower()
    key, looked = service.keys.dead_letter, 0
    found: list[JobRecord] = []
    while len(found) < limit and looked < TEXT_FILTER_BUDGET:
        ids = cast(list[str], await service.redis.zrevrange(key, offset, offset + TEXT_CHUNK - 1))
        if not ids:
            return found, None
        pipe = service.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(service.keys.job(job_id))
        for job_id, fields in zip(ids, await pipe.execute(), strict=True):
            offset, looked = offset + 1, looked + 1
            if not fields:
                continue  # requeued or dropped meanwhile
            record = JobRecord.from_hash(job_id, fields)
            if job_type is not None and record.job_type != job_type:
                continue
            if wanted in _error_text(record):
                found.append(record)
                if len(found) == limit:
                    break
    more = bool(await service.redis.zrevrange(key, offset, offset))
    return found, f"0:{offset}" if more else None


def _dead_offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    source, _, offset = cursor.partition(":")
    if source != "0" or not offset.isdigit():
        raise ValidationFailed(f"{cursor!r} is not a cursor from this list: start without one")
    return int(offset)


def _error_text(record: JobRecord) -> str:
    if record.error is None:
        return ""
    return f"{record.error.type}: {record.error.message}".lower()


async def rate_limits(ctx: Ctx) -> Response:
    limits = await ctx.service.get_rate_limit_stats()
    pauses = await ctx.service.list_pauses()
    return render(ctx, "rate_limits.html", {"rate_limits": limits, "pauses": pauses})


async def workers(ctx: Ctx) -> Response:
    return render(ctx, "workers.html", {"workers": await ctx.service.list_workers()})


async def audit_page(ctx: Ctx) -> Response:
    cursor = ctx.request.query_params.get("cursor") or None
    if not audit.valid_cursor(cursor):
        raise ValidationFailed(f"{cursor!r} is not a cursor from this list: start without one")
    page = await audit.read_page(
        ctx.service.redis, ctx.service.keys, limit=page_limit(ctx), cursor=cursor
    )
    return render(ctx, "audit.html", {"page": page})


async def login_form(request: Request) -> Response:
    return _login_page(request, "")


def _login_page(request: Request, error: str, status: int = 200) -> Response:
    settings = request.app.state.web
    session = session_of(request)
    html = request.app.state.templates.get_template("login.html").render(
        base=str(request.scope.get("root_path", "")).rstrip("/"),
        error=error,
        csrf=csrf_token(settings, session),
        path=request.url.path,
        allow_actions=False,
    )
    response = HTMLResponse(html, status_code=status)
    if session.new:  # the form's CSRF token is bound to this (not yet signed-in) session
        response.set_cookie(
            SESSION_COOKIE,
            encode_session(settings, session.session_id, ""),
            **cookie_options(request),
        )
    return response


async def login(request: Request) -> Response:
    """Check the token; on success a fresh session cookie names its label (who)."""
    settings = request.app.state.web
    form = await request.form()
    session = session_of(request)
    if not csrf_valid(settings, session, str(form.get("csrf") or "")):
        return _login_page(request, "The form expired: try again.", 403)
    who = check_token(settings, str(form.get("token") or ""))
    if who is None:
        return _login_page(request, "That token is not valid.", 401)
    base = str(request.scope.get("root_path", "")).rstrip("/")
    response = RedirectResponse(f"{base}/", status_code=303)
    # A new session id at login: a session fixed before it (the form's) is not carried over.
    cookie = encode_session(settings, new_session_id(), who)
    response.set_cookie(SESSION_COOKIE, cookie, **cookie_options(request))
    return response


def routes() -> list[BaseRoute]:
    return [
        Route("/", guarded(overview)),
        Route("/queues", guarded(queues)),
        Route("/jobs", guarded(find_job)),
        Route("/jobs/{job_id}", guarded(job)),
        Route("/dlq", guarded(dlq)),
        Route("/rate-limits", guarded(rate_limits)),
        Route("/workers", guarded(workers)),
        Route("/audit", guarded(audit_page)),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
    ]
