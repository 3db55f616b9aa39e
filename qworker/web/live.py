"""The overview's live part: Server-Sent Events carrying the rendered figures once a second,
which ``static/live.js`` swaps into the page. Each tick reads what the overview reads (lengths
and counters, not lists), so a million queued jobs cost what ten do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from qworker.errors import RedisUnavailable
from qworker.web.app import Ctx, guarded
from qworker.web.pages import overview_data

STOP_CHECK_S = 0.1


def sse_event(name: str, data: str) -> str:
    """One event; every line of ``data`` gets its own ``data:`` field, as SSE requires."""
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {name}\n{lines}\n"


async def events(ctx: Ctx) -> Response:
    template = ctx.request.app.state.templates.get_template("_live.html")
    interval_s = ctx.settings.live_interval_s
    base = ctx.base

    async def stream() -> AsyncIterator[str]:
        # Tells the browser how soon to reconnect if the server goes away.
        yield "retry: 2000\n\n"
        while not await ctx.request.is_disconnected():
            try:
                data = await overview_data(ctx.service)
                html = template.render(**data, base=base, now_ms=data["updated_ms"])
                yield sse_event("stats", html)
            except RedisUnavailable as exc:
                yield sse_event("down", str(exc))
            if await _stopping_within(ctx, interval_s):
                return

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


async def _stopping_within(ctx: Ctx, interval_s: float) -> bool:
    """Wait ``interval_s``, looking often whether the server stops (it waits only briefly
    for open streams before it cuts them off)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + interval_s
    while loop.time() < until:
        if ctx.settings.stopping():
            return True
        await asyncio.sleep(min(STOP_CHECK_S, max(until - loop.time(), 0)))
    return ctx.settings.stopping()


def routes() -> list[BaseRoute]:
    return [Route("/events", guarded(events))]
