"""``qworker dlq list|show|requeue``: look at permanently failed jobs and give them another go."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from qworker.cli._common import priority_option, state_of, with_service
from qworker.cli._errors import EXIT_FAILED, UsageError

if TYPE_CHECKING:
    from rich.console import RenderableType

    from qworker.models import JobRecord, RequeueResult
    from qworker.service import QueueService

app = typer.Typer(
    help="Inspect and requeue jobs in the dead-letter queue.",
    no_args_is_help=True,
    epilog="Example: qworker dlq list --limit 5 && qworker dlq requeue --all",
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command("list", epilog="Example: qworker dlq list --limit 50 --json | jq -r '.[].id'")
def dlq_list(
    ctx: typer.Context,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, metavar="N", help="Show at most this many jobs."),
    ] = 20,
    as_json: JsonOption = False,
) -> None:
    """List dead jobs, newest first."""

    async def action(service: QueueService) -> tuple[list[JobRecord], int]:
        jobs = await service.list_dead(limit)
        total = (await service.get_queue_stats()).dead_letter
        return jobs, total

    jobs, total = with_service(state_of(ctx).settings(), action)
    from qworker.cli import _render

    if as_json:
        _render.print_json([job.model_dump(mode="json") for job in jobs])
        return
    _render.show(_jobs_table(jobs, total))


def _jobs_table(jobs: list[JobRecord], total: int) -> RenderableType:
    from qworker.cli._render import Col, empty, format_time, table

    if not jobs:
        return empty("Dead letter", "empty: no job has failed for good")
    rows = [
        (
            job.id,
            job.job_type or "?",
            job.priority,
            job.attempts,
            format_time(job.failed_at_ms),
            _error_line(job),
        )
        for job in jobs
    ]
    shown = f"{len(jobs)} of {total}" if total > len(jobs) else str(len(jobs))
    columns = [
        Col("id", no_wrap=True),
        Col("type", no_wrap=True),
        Col("p", justify="right", no_wrap=True),
        Col("tries", justify="right", no_wrap=True),
        Col("failed at", no_wrap=True),
        Col("error", truncate=True),
    ]
    return table(f"Dead letter ({shown})", columns, rows)


def _error_line(job: JobRecord) -> str:
    if job.error is None:
        return "-"
    # The message says more than the exception type in the width a row has; show has both.
    message = job.error.message.strip()
    return message.splitlines()[0] if message else job.error.type


@app.command("show", epilog="Example: qworker dlq show 3f2a9c0e4b1d4f6e8a7b5c3d2e1f0a9b")
def dlq_show(
    ctx: typer.Context,
    job_id: Annotated[
        str, typer.Argument(metavar="ID", help="The dead job's id (or 6+ characters of it).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Show one dead job in full: payload, error and traceback."""

    async def action(service: QueueService) -> JobRecord:
        return await service.get_dead(await _full_id(service, job_id))

    job = with_service(state_of(ctx).settings(), action)
    from qworker.cli import _render

    if as_json:
        _render.print_json(job.model_dump(mode="json"))
        return
    _render.show(*_record_view(job))


async def _full_id(service: QueueService, given: str) -> str:
    """The id a unique prefix stands for; an id that no job has stays as given, to be reported
    as not in the dead-letter queue."""
    from qworker.job_control import NoSuchJob

    try:
        return await service.resolve_job_id(given)
    except NoSuchJob:
        return given


def _record_view(job: JobRecord) -> list[RenderableType]:
    import json

    from rich.console import Group
    from rich.text import Text

    from qworker.cli._render import Col, format_time, table

    fields = [
        ("id", job.id),
        ("type", job.job_type or "?"),
        ("priority", job.priority),
        ("attempts", job.attempts),
        ("max retries", job.max_retries if job.max_retries is not None else "default"),
        ("enqueued at", format_time(job.enqueued_at_ms)),
        ("failed at", format_time(job.failed_at_ms)),
        ("error", f"{job.error.type}: {job.error.message}" if job.error else "-"),
    ]
    fields += [(f"checkpoint {name}", value) for name, value in job.checkpoints.items()]
    params = job.params
    payload = json.dumps(params, indent=2, ensure_ascii=False) if params else job.payload
    view: list[RenderableType] = [
        table(f"Dead job {job.id}", [Col("field"), Col("value")], fields),
        Group(Text("Payload", style="bold"), Text(payload)),
    ]
    if job.error is not None and job.error.traceback:
        traceback = Text(job.error.traceback.rstrip())
        view.append(Group(Text("Traceback of the last attempt", style="bold"), traceback))
    return view


@app.command(
    "requeue",
    epilog="Example: qworker dlq requeue 3f2a9c0e 9b8c7d6e   (or: qworker dlq requeue --all -p 4)",
)
def dlq_requeue(
    ctx: typer.Context,
    job_ids: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="ID...",
            help="Dead job ids (or 6+ characters of each) to requeue.",
            show_default=False,
        ),
    ] = None,
    requeue_all: Annotated[
        bool, typer.Option("--all", help="Requeue every job in the dead-letter queue.")
    ] = False,
    priority: Annotated[
        int | None,
        priority_option("Put them on this priority instead of their own."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Put dead jobs back on their priority lists with attempts reset; prints how many."""
    ids = list(job_ids or [])
    if requeue_all and ids:
        raise UsageError("give job ids or --all, not both")
    if not requeue_all and not ids:
        raise UsageError("name the dead job ids to requeue, or use --all")

    async def action(service: QueueService) -> RequeueResult:
        full_ids = [await _full_id(service, job_id) for job_id in ids]
        return await service.requeue_dead(full_ids, requeue_all=requeue_all, priority=priority)

    result = with_service(state_of(ctx).settings(), action)
    from qworker.cli import _render

    if as_json:
        _render.print_json(result.model_dump(mode="json"))
    else:
        print(f"requeued {len(result.requeued)} job(s)")
    if result.missing:
        _render.message(f"error: not in the dead-letter queue: {', '.join(result.missing)}")
        raise typer.Exit(EXIT_FAILED)
