"""``qworker stats``: queues, pauses, totals, rate limiters and live workers, once or
``--watch``ed.

The view is built from one :class:`Snapshot` of what QueueService reports; ``--json`` prints the
snapshot as one object (the seed's ``get_queue_stats()`` keys plus ``canceled``, ``pauses``,
``rate_limits``, ``workers`` and ``redis_memory``), the tables are drawn by :func:`render`, which
the demo reuses. Both views open with the same :func:`_header` line: which Redis (password
masked) and namespace the numbers are about.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qworker.cli._common import open_service, run, state_of
from qworker.cli._errors import UsageError

if TYPE_CHECKING:
    from rich.console import RenderableType

    from qworker.jobs.x_account import MonthSpend
    from qworker.models import Pause, QueueStats, RateLimitStats, RedisMemory, WorkerInfo
    from qworker.schedules import Schedule
    from qworker.service import QueueService

EXAMPLE = "Example: qworker stats --watch --interval 2   (or: qworker stats --json | jq .retry_due)"

PRIORITY_NAMES = {1: "urgent", 2: "high", 3: "normal", 4: "low"}


@dataclass(frozen=True)
class Snapshot:
    stats: QueueStats
    rate_limits: list[RateLimitStats]
    workers: list[WorkerInfo]
    now_ms: int
    # None when Redis does not say (INFO not allowed for this user, or an embedded server).
    memory: RedisMemory | None = None
    # The month's spend on X posts: on pay-per-use, or once any post was counted this month.
    x_spend: MonthSpend | None = None
    schedules: list[Schedule] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        from qworker.schedules import schedule_json

        return {
            **self.stats.model_dump(mode="json"),
            "schedules": [schedule_json(schedule) for schedule in self.schedules],
            "rate_limits": [limit.model_dump(mode="json") for limit in self.rate_limits],
            "workers": [worker.model_dump(mode="json") for worker in self.workers],
            "redis_memory": self.memory.model_dump(mode="json") if self.memory else None,
            "x_spend": dataclasses.asdict(self.x_spend) if self.x_spend else None,
        }


async def collect(service: QueueService) -> Snapshot:
    from qworker.schedule_store import ScheduleStore

    return Snapshot(
        stats=await service.get_queue_stats(),
        rate_limits=await service.get_rate_limit_stats(),
        workers=await service.list_workers(),
        now_ms=service.clock.now_ms(),
        memory=await service.get_memory(),
        x_spend=await _x_spend(service),
        schedules=await ScheduleStore(service).list(),
    )


async def _x_spend(service: QueueService) -> MonthSpend | None:
    from qworker.jobs.x_account import read_month_spend
    from qworker.jobs.x_plan import PAY_PER_USE

    settings = service.settings
    spend = await read_month_spend(service.redis, service.keys, settings, service.clock.now_ms())
    return spend if settings.x_plan == PAY_PER_USE or spend.posts or spend.posts_with_url else None


def stats(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object for scripts.")
    ] = False,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Redraw in place until Ctrl-C.")
    ] = False,
    interval: Annotated[
        float,
        typer.Option("--interval", "-n", min=0.1, metavar="SECONDS", help="Redraw period."),
    ] = 2.0,
) -> None:
    """Show queue lengths, pauses, totals, rate limiters and live workers."""
    if watch and as_json:
        raise UsageError("--watch draws tables; use --json without --watch")
    settings = state_of(ctx).settings()
    service = open_service(settings)
    if watch:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends: exit 0
            run(_watch(service, interval))
        return

    async def once() -> Snapshot:
        async with service:
            return await collect(service)

    snapshot = run(once())
    from qworker.cli import _render

    if as_json:
        _render.print_json(snapshot.to_json())
    else:
        header = _header(service.settings.masked_redis_url(), service)
        _render.show(render(snapshot, header=header))


async def _watch(service: QueueService, interval_s: float) -> None:
    from rich.live import Live

    from qworker.cli import _render
    from qworker.errors import RedisUnavailable

    url = service.settings.masked_redis_url()
    last: Snapshot | None = None
    # Longer than a healthy round trip, shorter than the socket timeout: a paused Redis shows
    # up as "unreachable" within seconds instead of freezing the screen.
    timeout_s = max(interval_s, 3.0)
    async with service:
        with Live(console=_render.stdout_console(), auto_refresh=False) as live:
            while True:
                try:
                    last = await asyncio.wait_for(collect(service), timeout=timeout_s)
                    live.update(render(last, header=_header(url, service, interval_s)))
                except (RedisUnavailable, TimeoutError) as exc:
                    reason = str(exc) or f"no answer from {url} within {timeout_s:.0f}s"
                    live.update(_unreachable(reason, last))
                live.refresh()
                await asyncio.sleep(interval_s)


def _header(url: str, service: QueueService, interval_s: float | None = None) -> str:
    """What the numbers below are about: the Redis (``url``, its password masked), the namespace
    and when they were read; a watch adds its period."""
    from qworker.cli._render import format_time

    namespace = service.keys.namespace or "(none)"
    updated = format_time(service.clock.now_ms())
    line = f"{url}  namespace {namespace}  at {updated}"
    if interval_s is None:
        return line
    return f"{line}, every {interval_s:g}s  (Ctrl-C quits)"


def _unreachable(reason: str, last: Snapshot | None) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    parts: list[RenderableType] = [
        Text("Redis unreachable, retrying", style="bold red"),
        Text(reason),
    ]
    if last is not None:
        parts += [Text("last known state:", style="dim"), render(last)]
    return Group(*parts)


def render(snapshot: Snapshot, header: str | None = None) -> RenderableType:
    """Every table of the stats view, stacked."""
    from rich.console import Group
    from rich.text import Text

    from qworker.cli._render import stack
    from qworker.cli._schedule_view import schedules_table

    # Shown only when some type waits for a worker: a fleet serving every type sees no change.
    unserved = [unserved_table(snapshot.stats)] if snapshot.stats.waiting_without_worker else []
    tables = stack(
        queues_table(snapshot.stats),
        *([schedules_table(snapshot.schedules)] if snapshot.schedules else []),
        *unserved,
        pauses_table(snapshot.stats.pauses, snapshot.now_ms),
        totals_table(snapshot.stats),
        rate_limits_table(snapshot.rate_limits, snapshot.now_ms),
        *([x_spend_table(snapshot.x_spend)] if snapshot.x_spend else []),
        workers_table(snapshot.workers, snapshot.now_ms),
        memory_table(snapshot.memory),
    )
    return Group(Text(header, style="dim"), Text(""), tables) if header else tables


def _scheduled_note(stats: QueueStats) -> str:
    waiting = stats.unknown_type_waiting
    if not waiting:
        return "enqueued with --delay/--at"
    return f"{waiting} of a job type no worker knows yet (rolling deploy?)"


def queues_table(stats: QueueStats) -> RenderableType:
    from qworker.cli._render import Col, table
    from qworker.keys import PRIORITIES, QueueKeys

    bare = QueueKeys()  # QueueStats names the lists without the namespace, as the seed did
    paused = {pause.priority for pause in stats.pauses if pause.priority is not None}
    rows: list[tuple[object, ...]] = [
        (
            _priority(p),
            stats.queues.get(bare.priority(p), 0),
            "paused: workers skip it" if p in paused else "",
        )
        for p in PRIORITIES
    ]
    rows += [
        ("scheduled", stats.scheduled, _scheduled_note(stats)),
        ("retry", stats.retry, f"{stats.retry_due} due now"),
        ("parked", stats.parked, "waiting for a rate limit"),
        ("waiting", stats.waiting, "for other jobs: qworker jobs list --state waiting"),
        ("in flight", stats.in_flight, "claimed by a worker"),
        ("dead letter", stats.dead_letter, "see: qworker dlq list"),
    ]
    columns = [Col("queue"), Col("jobs", justify="right"), Col("note", truncate=True)]
    return table("Queues", columns, rows)


def unserved_table(stats: QueueStats) -> RenderableType:
    """Job types whose jobs wait because no live worker serves them (qworker work
    --job-types): they wait in their lane, at no cost, until one does."""
    from rich.text import Text

    from qworker.cli._render import Col, table

    rows = [
        (Text(job_type), count, f"start a worker with --job-types {job_type} (or without it)")
        for job_type, count in stats.waiting_without_worker.items()
    ]
    columns = [Col("job type"), Col("jobs", justify="right"), Col("note", truncate=True)]
    return table("Waiting: no live worker serves these types", columns, rows)


def totals_table(stats: QueueStats) -> RenderableType:
    from qworker.cli._render import Col, table

    rows = [
        ("processed", stats.total_processed),
        ("failed attempts", stats.total_failed),
        ("dead", stats.total_dead),
        ("canceled", stats.canceled),
        ("dry run (marked done, not done)", stats.dry_run),
        ("recovered from lost workers", stats.recovered),
        ("dropped by dead-letter cap", stats.dead_letter_dropped),
    ]
    return table("Totals", [Col("counter"), Col("count", justify="right")], rows)


def pauses_table(pauses: list[Pause], now_ms: int) -> RenderableType:
    """What workers do not take now, until when, and how many jobs a paused type holds aside."""
    from qworker.cli._render import Col, empty, table

    if not pauses:
        return empty("Paused", "nothing is paused")
    rows = [
        (
            f"job type {pause.job_type}" if pause.priority is None else _priority(pause.priority),
            _pause_end(pause, now_ms),
            "-" if pause.priority is not None else _jobs(pause.held_jobs),
        )
        for pause in pauses
    ]
    columns = [Col("paused", truncate=True), Col("until"), Col("held aside", justify="right")]
    return table("Paused", columns, rows)


def _pause_end(pause: Pause, now_ms: int) -> str:
    from qworker.cli._render import format_time
    from qworker.clock import format_duration

    if pause.until_ms is None:
        return "resumed"
    if not pause.active(now_ms):
        return "now (ended; its held jobs are going back)"
    return f"{format_time(pause.until_ms)} (in {format_duration((pause.until_ms - now_ms) / 1000)})"


def _priority(priority: int) -> str:
    return f"priority {priority} ({PRIORITY_NAMES.get(priority, '?')})"


def _jobs(count: int) -> str:
    return f"{count} job{'' if count == 1 else 's'}"


def memory_table(memory: RedisMemory | None) -> RenderableType:
    """Redis's memory against maxmemory, and whether a full Redis would evict jobs."""
    from rich.text import Text

    from qworker.cli._render import Col, empty, table
    from qworker.memory import format_bytes

    if memory is None:
        return empty("Redis memory", "unknown: INFO not answered (an ACL without +info?)")
    used = format_bytes(memory.used_bytes)
    if memory.max_bytes:
        share = memory.used_bytes / memory.max_bytes
        used += f" of {format_bytes(memory.max_bytes)} ({share:.0%})"
    else:
        used += " (no maxmemory: bounded by the host)"
    policy = Text(memory.policy)
    if memory.evicts:
        policy.append("  evicts keys when full: jobs can be lost; set noeviction", "bold red")
    rows = [("used", used), ("maxmemory-policy", policy)]
    return table("Redis memory", [Col("memory"), Col("value", truncate=True)], rows)


def rate_limits_table(limits: list[RateLimitStats], now_ms: int) -> RenderableType:
    from qworker.cli._render import Col, empty, format_ago, format_limit, format_until, table

    rows = [
        (
            limit.rate_key,
            format_limit(limit.used_last_hour, limit.max_per_hour),
            format_limit(limit.used_last_day, limit.max_per_day),
            f"{limit.min_interval_s:g}s" if limit.min_interval_s else "-",
            format_ago(limit.last_execution_ms, now_ms),
            format_until(limit.next_allowed_ms, now_ms),
        )
        for limit in limits
    ]
    columns = [
        Col("job type"),
        Col("last hour", justify="right"),
        Col("last day", justify="right"),
        Col("min gap", justify="right"),
        Col("last run"),
        Col("next allowed"),
    ]
    if not rows:
        return empty("Rate limits", "no job type has run under a rate limit yet")
    return table("Rate limits", columns, rows)


def x_spend_table(spend: MonthSpend) -> RenderableType:
    """The month's spend on X posts against QWORKER_X_MONTHLY_BUDGET_USD."""
    from qworker.cli._render import Col, table

    budget = "no budget" if spend.budget_usd is None else f"${spend.budget_usd:,.2f}"
    if spend.budget_reached:
        budget += "  reached: tweets wait for next month"
    posts = f"{spend.posts + spend.posts_with_url} ({spend.posts_with_url} with a URL)"
    rows = [(spend.month, posts, f"${spend.spent_usd:,.3f}", budget)]
    columns = [Col("month"), Col("posts"), Col("spent", justify="right"), Col("budget")]
    return table("X spend (pay-per-use)", columns, rows)


def workers_table(workers: list[WorkerInfo], now_ms: int) -> RenderableType:
    from qworker.cli._render import Col, empty, format_ago, table
    from qworker.clock import format_duration

    rows = [
        (
            worker.id[:8],
            worker.host,
            worker.pid,
            format_duration((now_ms - worker.started_at_ms) / 1000),
            format_ago(worker.last_seen_ms, now_ms),
            worker.jobs_done,
            # Written by the worker within a second of a change; current_jobs and jobs_done come
            # with the heartbeat, seconds behind, so the ids are left to --json.
            f"{worker.running}/{worker.concurrency}",
            worker.prefetched,
        )
        for worker in workers
    ]
    if not rows:
        return empty("Workers", "no live workers")
    columns = [
        Col("worker"),
        Col("host"),
        Col("pid", justify="right"),
        Col("uptime", justify="right"),
        Col("heartbeat"),
        Col("done", justify="right"),
        Col("running", justify="right"),
        Col("prefetched", justify="right"),
    ]
    return table("Workers", columns, rows)
