"""``qworker jobs list``: one page of the jobs in one state, with the cursor to the next.

The service reads a page, never the whole list, so this stays quick with a million jobs queued;
the line that names the next page goes to stderr, so ``--json | jq`` always parses.
"""

from __future__ import annotations

import shlex
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from qworker.cli._common import priority_option, state_of, with_service

if TYPE_CHECKING:
    from rich.console import RenderableType

    from qworker.models import JobPage, JobRecord
    from qworker.service import QueueService

app = typer.Typer(
    help="List jobs by state.",
    no_args_is_help=True,
    epilog="Example: qworker jobs list --state retry --limit 20",
)

DEFAULT_LIMIT = 50


class State(StrEnum):
    queued = "queued"
    scheduled = "scheduled"
    waiting = "waiting"
    running = "running"
    retry = "retry"
    parked = "parked"
    paused = "paused"
    done = "done"
    dead = "dead"
    canceled = "canceled"


# The time each state's table shows, and what it calls it.
_TIME_COLUMN = {
    "queued": "enqueued",
    "scheduled": "due",
    "waiting": "since",
    "running": "started",
    "retry": "due",
    "parked": "due",
    "paused": "since",
    "done": "finished",
    "dead": "failed",
    "canceled": "canceled",
}


@app.command(
    "list",
    epilog="Example: qworker jobs list --state dead --type tweet --json | jq -r '.jobs[].id'",
)
def jobs_list(
    ctx: typer.Context,
    state: Annotated[
        State,
        typer.Option(
            "--state",
            "-s",
            metavar="STATE",
            help="The state to list: queued, scheduled, waiting, running, retry, parked, "
            "paused, done, dead or canceled.",
            case_sensitive=False,
        ),
    ] = State.queued,
    job_type: Annotated[
        str | None,
        typer.Option("--type", metavar="TYPE", help="Only jobs of this type.", show_default=False),
    ] = None,
    priority: Annotated[
        int | None,
        priority_option("Only jobs of this priority."),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit", "-n", min=1, max=1000, metavar="N", help="Show at most this many jobs."
        ),
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        typer.Option(
            "--cursor",
            metavar="CURSOR",
            help="Go on where the previous page stopped (its 'more:' line or next_cursor).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List the jobs in one state: queued next first, waiting ones by due time, finished ones
    newest first."""

    async def action(service: QueueService) -> JobPage:
        return await service.list_jobs(
            state.value, job_type=job_type, priority=priority, limit=limit, cursor=cursor
        )

    page = with_service(state_of(ctx).settings(), action)
    from qworker.cli import _render

    if as_json:
        _render.print_json(page.model_dump(mode="json"))
    else:
        _render.show(_jobs_table(page, state.value, _render.now_ms()))
    if page.next_cursor is not None:
        options = [("--state", state.value), ("--type", job_type), ("--priority", priority)]
        if limit != DEFAULT_LIMIT:
            options.append(("--limit", limit))
        command = ["qworker", "jobs", "list"]
        command += [f"{name} {shlex.quote(str(value))}" for name, value in options if value]
        command += ["--json"] if as_json else []
        command.append(f"--cursor {shlex.quote(page.next_cursor)}")
        _render.message("more: " + " ".join(command))


def _jobs_table(page: JobPage, state: str, now_ms: int) -> RenderableType:
    from qworker.cli._render import Col, empty, table

    title = f"{state.capitalize()} jobs"
    if not page.jobs:
        return empty(title, f"none {state}")
    rows = [
        (
            job.id,
            job.job_type or "?",
            job.priority,
            job.attempts,
            _time_cell(job, state, now_ms),
            _detail(job, state),
        )
        for job in page.jobs
    ]
    more = ", more with --cursor" if page.next_cursor else ""
    columns = [
        Col("id", no_wrap=True),
        Col("type", no_wrap=True),
        Col("p", justify="right", no_wrap=True),
        Col("tries", justify="right", no_wrap=True),
        Col(_TIME_COLUMN[state], no_wrap=True),
        Col("detail", truncate=True),
    ]
    return table(f"{title} ({len(page.jobs)}{more})", columns, rows)


def _time_cell(job: JobRecord, state: str, now_ms: int) -> str:
    from qworker.cli._render import format_time, format_until

    if state in ("scheduled", "retry", "parked"):
        return format_until(job.run_at_ms if state == "scheduled" else job.due_at_ms, now_ms)
    at_ms = {
        "queued": job.enqueued_at_ms,
        "running": job.started_at_ms,
        "dead": job.failed_at_ms,
        "done": job.finished_at_ms,
        "canceled": job.finished_at_ms,
    }.get(state, job.state_at_ms)
    return format_time(at_ms)


def _detail(job: JobRecord, state: str) -> str:
    """What says most about the job in this state, in one line: its error, result or worker,
    else its parameters."""
    if state in ("retry", "dead") and job.error is not None:
        lines = job.error.message.strip().splitlines()
        return f"{job.error.type}: {lines[0]}" if lines else job.error.type
    if state == "done" and job.result_json is not None:
        return f"result {job.result_json}"
    if state == "running" and job.worker_id is not None:
        return f"worker {job.worker_id}"
    if state == "parked" and job.rate_key is not None:
        return f"rate key {job.rate_key}"
    return " ".join(job.payload.split())
