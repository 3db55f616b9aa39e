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
            await asyncio.sleep(interval_s)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def routes() -> list[BaseRoute]:
    return [Route("/events", guarded(events))]
