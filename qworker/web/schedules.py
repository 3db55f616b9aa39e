"""The schedules page and its actions, over the same ``ScheduleStore`` the command line uses.

``GET /schedules`` lists them by name, a page at a time (``cursor``: the last name shown);
its ``?format=json`` twin gives each schedule as ``qworker schedule list --json`` does.
``POST /schedules/{name}/pause``, ``/resume`` and ``/trigger`` are actions like the others:
refused on a read-only server or without the session's CSRF token, recorded in the audit
stream.
"""

from __future__ import annotations

import bisect
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from qworker.errors import ValidationFailed
from qworker.schedule_store import ScheduleNotFound, ScheduleStore
from qworker.schedules import Schedule, check_name, schedule_json
from qworker.web.actions import action, answer, record
from qworker.web.app import Ctx, guarded, render
from qworker.web.pages import page_limit


async def _page(
    store: ScheduleStore, limit: int, cursor: str | None
) -> tuple[list[Schedule], str | None, int]:
    """A page of schedules by name after ``cursor``, the next cursor, and how many there are.
    The set holds names only (scored by due time, which changes as they fire): its names are
    read and sorted so that the order, and so the cursor, stays put while schedules fire."""
    if cursor:
        try:
            check_name(cursor)
        except ValidationFailed:
            raise ValidationFailed(
                f"{cursor!r} is not a cursor from this list: start without one"
            ) from None
    names = sorted(await store.names())
    start = bisect.bisect_right(names, cursor) if cursor else 0
    chosen = names[start : start + limit]
    schedules: list[Schedule] = []
    for name in chosen:
        try:
            schedules.append(await store.get(name))
        except ScheduleNotFound:
            continue  # removed between the two reads
    more = start + limit < len(names)
    return schedules, (chosen[-1] if more and chosen else None), len(names)


async def schedules_page(ctx: Ctx) -> Response:
    params = ctx.request.query_params
    limit = page_limit(ctx)
    cursor = params.get("cursor") or None
    schedules, next_cursor, total = await _page(ScheduleStore(ctx.service), limit, cursor)
    data = {
        "schedules": [schedule_json(s) for s in schedules],
        "next_cursor": next_cursor,
        "limit": limit,
        "total": total,
        "done": params.get("done", ""),
    }
    return render(ctx, "schedules.html", data)


def _name(ctx: Ctx) -> str:
    return check_name(str(ctx.request.path_params["name"]))


def _back(done: str) -> str:
    return "/schedules?" + urlencode({"done": done})


async def pause(ctx: Ctx, form: FormData) -> Response:
    return await _set_paused(ctx, paused=True)


async def resume(ctx: Ctx, form: FormData) -> Response:
    return await _set_paused(ctx, paused=False)


async def _set_paused(ctx: Ctx, *, paused: bool) -> Response:
    name = _name(ctx)
    store = ScheduleStore(ctx.service)
    changed = await store.set_paused(name, paused=paused)
    word = "paused" if paused else "resumed"
    state = "paused" if paused else "running"
    note = "" if changed else f" (already {state})"
    await record(ctx, f"schedule.{'pause' if paused else 'resume'}", [], name + note)
    schedule = await store.get(name)
    done = (
        f"{word} {name}" if changed else f"{name} was already {'paused' if paused else 'running'}"
    )
    return answer(ctx, {"changed": changed, **schedule_json(schedule)}, _back(done))


async def trigger(ctx: Ctx, form: FormData) -> Response:
    name = _name(ctx)
    job_id = await ScheduleStore(ctx.service).trigger(name)
    await record(ctx, "schedule.trigger", [job_id], name)
    return answer(ctx, {"name": name, "job_id": job_id}, _back(f"triggered {name}: job {job_id}"))


def routes() -> list[BaseRoute]:
    post = ["POST"]
    return [
        Route("/schedules", guarded(schedules_page)),
        Route("/schedules/{name}/pause", guarded(action(pause)), methods=post),
        Route("/schedules/{name}/resume", guarded(action(resume)), methods=post),
        Route("/schedules/{name}/trigger", guarded(action(trigger)), methods=post),
    ]
