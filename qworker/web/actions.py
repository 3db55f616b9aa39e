"""The actions: POST only, each refused (403) on a read-only server or without the session's
CSRF token, each one Lua script in the core, each recorded in the audit stream.

``POST /dlq/requeue`` and ``/dlq/delete`` (form field ``ids``, one or more; ``all=1`` requeues
every dead job), ``POST /jobs/{id}/cancel``, ``POST /queues/pause`` and ``/queues/resume``
(``priority`` or ``job_type``; a pause may last ``for_s`` seconds).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from starlette.datastructures import FormData
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from qworker.errors import ValidationFailed
from qworker.web import audit
from qworker.web.app import Ctx, error_response, guarded, jsonable
from qworker.web.security import SESSION_COOKIE, csrf_valid

# The most ids one form may name (a page of the DLQ is at most this).
MAX_IDS = 1000

Action = Callable[[Ctx, FormData], Awaitable[Response]]


def action(handler: Action) -> Callable[[Ctx], Awaitable[Response]]:
    """Refuse before anything is read or changed: read-only server, or no valid CSRF token
    (a bearer token is not a cookie another site can make a browser send: no CSRF there)."""

    async def checked(ctx: Ctx) -> Response:
        if not ctx.settings.allow_actions:
            return _refused(ctx, "this server is read-only (start it with --allow-actions)")
        form = await ctx.request.form()
        bearer = bool(ctx.request.headers.get("authorization"))
        if not bearer and not csrf_valid(ctx.settings, ctx.session, _one(form, "csrf")):
            return _refused(ctx, "missing or invalid CSRF token: reload the page and try again")
        return await handler(ctx, form)

    return checked


def _refused(ctx: Ctx, message: str) -> Response:
    return error_response(ctx.request, message, 403)


def _one(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _ids(form: FormData) -> list[str]:
    ids: list[str] = []
    for value in form.getlist("ids"):
        if isinstance(value, str):
            ids.extend(part for part in value.replace(",", " ").split() if part)
    if len(ids) > MAX_IDS:
        raise ValidationFailed(f"at most {MAX_IDS} ids at a time, not {len(ids)}")
    return list(dict.fromkeys(ids))


async def record(ctx: Ctx, what: str, job_ids: Sequence[str], detail: str = "") -> None:
    await audit.record(
        ctx.service.redis,
        ctx.service.keys,
        who=ctx.session.who,
        action=what,
        job_ids=job_ids,
        detail=detail,
        max_entries=ctx.settings.audit_max_entries,
    )


def answer(ctx: Ctx, result: Any, back: str) -> Response:
    """JSON for scripts, else back to the page the form was on (303: the browser GETs it)."""
    if ctx.wants_json:
        return JSONResponse(jsonable(result))
    return RedirectResponse(f"{ctx.base}{back}", status_code=303)


async def dlq_requeue(ctx: Ctx, form: FormData) -> Response:
    everything = _one(form, "all") == "1"
    ids = [] if everything else _ids(form)
    if not everything and not ids:
        raise ValidationFailed("choose the dead jobs to requeue")
    result = await ctx.service.requeue_dead(ids, requeue_all=everything)
    detail = "all dead jobs" if everything else ""
    await record(ctx, "dlq.requeue", result.requeued, detail)
    back = "/dlq?" + urlencode({"done": f"requeued {len(result.requeued)}"})
    return answer(ctx, result, back)


async def dlq_delete(ctx: Ctx, form: FormData) -> Response:
    ids = _ids(form)
    if not ids:
        raise ValidationFailed("choose the dead jobs to delete")
    deleted = await ctx.service.delete_dead(ids)
    await record(ctx, "dlq.delete", deleted)
    back = "/dlq?" + urlencode({"done": f"deleted {len(deleted)}"})
    gone = set(deleted)
    missing = [job_id for job_id in ids if job_id not in gone]
    return answer(ctx, {"deleted": deleted, "missing": missing}, back)


async def cancel(ctx: Ctx, form: FormData) -> Response:
    job_id = ctx.request.path_params["job_id"]
    result = await ctx.service.cancel_job(job_id)
    await record(ctx, "job.cancel", [job_id], result.outcome)
    return answer(ctx, result, f"/jobs/{quote(job_id)}")


def _target(form: FormData) -> tuple[int | None, str | None]:
    priority = _one(form, "priority")
    job_type = _one(form, "job_type")
    if priority and priority not in ("1", "2", "3", "4"):
        raise ValidationFailed(f"priority must be 1 to 4, not {priority!r}")
    return (int(priority) if priority else None), (job_type or None)


async def pause(ctx: Ctx, form: FormData) -> Response:
    priority, job_type = _target(form)
    for_text = _one(form, "for_s")
    try:
        for_s = float(for_text) if for_text else None
    except ValueError:
        raise ValidationFailed(f"for_s must be a number of seconds, not {for_text!r}") from None
    result = await ctx.service.pause(priority=priority, job_type=job_type, for_s=for_s)
    await record(ctx, "queue.pause", [], result.target)
    return answer(ctx, result, "/rate-limits")


async def resume(ctx: Ctx, form: FormData) -> Response:
    priority, job_type = _target(form)
    was_paused = await ctx.service.resume(priority=priority, job_type=job_type)
    target = f"priority {priority}" if priority is not None else f"job type {job_type}"
    await record(ctx, "queue.resume", [], target)
    return answer(ctx, {"resumed": was_paused}, "/rate-limits")


async def logout(ctx: Ctx) -> Response:
    form = await ctx.request.form()
    if not csrf_valid(ctx.settings, ctx.session, _one(form, "csrf")):
        return _refused(ctx, "missing or invalid CSRF token")
    response = RedirectResponse(f"{ctx.base}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def routes() -> list[BaseRoute]:
    post = ["POST"]
    return [
        Route("/dlq/requeue", guarded(action(dlq_requeue)), methods=post),
        Route("/dlq/delete", guarded(action(dlq_delete)), methods=post),
        Route("/jobs/{job_id}/cancel", guarded(action(cancel)), methods=post),
        Route("/queues/pause", guarded(action(pause)), methods=post),
        Route("/queues/resume", guarded(action(resume)), methods=post),
        Route("/logout", guarded(logout), methods=post),
    ]
