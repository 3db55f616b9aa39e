"""``qworker pause|resume``: stop workers taking a priority's or a job type's jobs, and let them
go on. Nothing is lost while paused: the jobs wait in their lists (a paused type's jobs are set
aside as they reach the front, and go back in order on resume)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from qworker.cli._common import parse_positive_duration_s, priority_option, state_of, with_service
from qworker.cli._errors import CliError, UsageError

if TYPE_CHECKING:
    from qworker.models import Pause
    from qworker.service import QueueService

PAUSE_EXAMPLE = "Example: qworker pause --job-type tweet --for 2h   (then: qworker resume -t tweet)"
RESUME_EXAMPLE = "Example: qworker resume --priority 4"

PriorityOption = Annotated[
    int | None,
    priority_option("A priority: 1 (urgent) to 4 (low)."),
]
JobTypeOption = Annotated[
    str | None,
    typer.Option("--job-type", "-t", metavar="TYPE", help="A job type.", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def pause(
    ctx: typer.Context,
    priority: PriorityOption = None,
    job_type: JobTypeOption = None,
    for_: Annotated[
        str | None,
        typer.Option(
            "--for",
            metavar="DURATION",
            help="End the pause by itself after this long: 30m, 2h, 1d. Default: until resumed.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Stop workers taking the jobs of a priority or of a job type, until resumed (or --for)."""
    _one_target(priority, job_type)
    for_s = parse_positive_duration_s(for_, "--for") if for_ is not None else None

    async def action(service: QueueService) -> Pause:
        return await service.pause(priority=priority, job_type=job_type, for_s=for_s)

    paused = with_service(state_of(ctx).settings(), action)
    from qworker.cli import _render

    if as_json:
        _render.print_json(paused.model_dump(mode="json"))
        return
    until = "resumed" if paused.until_ms is None else _render.format_moment(paused.until_ms)
    print(f"paused {target_name(priority, job_type)} until {until}")


def resume(
    ctx: typer.Context,
    priority: PriorityOption = None,
    job_type: JobTypeOption = None,
    as_json: JsonOption = False,
) -> None:
    """End a pause now: workers take the jobs again, held ones first, in their order."""
    _one_target(priority, job_type)

    async def action(service: QueueService) -> bool:
        return await service.resume(priority=priority, job_type=job_type)

    resumed = with_service(state_of(ctx).settings(), action)
    if as_json:
        from qworker.cli._render import print_json

        print_json({"priority": priority, "job_type": job_type, "resumed": resumed})
    name = target_name(priority, job_type)
    if not resumed:
        raise CliError(f"{name} is not paused")
    if not as_json:
        print(f"resumed {name}")


def _one_target(priority: int | None, job_type: str | None) -> None:
    if (priority is None) == (job_type is None):
        raise UsageError("give --priority or --job-type (one of them)")


def target_name(priority: int | None, job_type: str | None) -> str:
    return f"priority {priority}" if priority is not None else f"job type {job_type}"
