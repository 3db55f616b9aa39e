"""``qworker job show|tree|wait|cancel|run``: one job, named by its id or a prefix of it.

An id may be shortened to any prefix of at least 6 characters that only one job has (as git takes
commit ids): the service resolves it, an unknown id exits 1 and an ambiguous prefix exits 2 with
the ids it matches. The service does the waiting (it blocks on Redis; nothing here polls).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qworker.cli._common import (
    parse_duration_s,
    parse_positive_duration_s,
    state_of,
    with_service,
)
from qworker.cli._errors import CliError, UsageError

if TYPE_CHECKING:
    from rich.console import RenderableType

    from qworker.dependencies import FlowMember, JobLinks
    from qworker.models import CancelResult, JobRecord
    from qworker.service import QueueService

app = typer.Typer(
    help="Look at one job, wait for it, cancel it or run it now.",
    no_args_is_help=True,
    epilog="Example: qworker job show 3f2a9c && qworker job wait 3f2a9c --timeout 30s",
)

IdArgument = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        help="The job's id, or a prefix of at least 6 characters that only this job's id has.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

# What a waiting job's ``until`` time means, by its state.
_UNTIL_LABEL = {
    "scheduled": "due at",
    "retry": "due at",
    "parked": "reopens at",
    "waiting": "dead-lettered (dep-timeout) at",
}


def job_json(job: JobRecord) -> dict[str, Any]:
    """The record as ``model_dump`` gives it, plus the result decoded and whether it ended."""
    try:
        result = job.result
    except ValueError:  # not JSON: a hand-written record; result_json still shows it
        result = None
    return {**job.model_dump(mode="json"), "result": result, "finished": job.finished}


# -- show --------------------------------------------------------------------------------------


@app.command(
    "show",
    epilog="Example: qworker job show 3f2a9c   (or: qworker job show 3f2a9c --json | jq .state)",
)
def job_show(
    ctx: typer.Context,
    job_id: IdArgument,
    traceback: Annotated[
        bool, typer.Option("--traceback", help="Also print the last failed attempt's traceback.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Where a job stands and why: state, times, attempts, error, result, what it waits for."""

    async def action(service: QueueService) -> tuple[JobRecord, JobLinks]:
        from qworker.dependencies import job_links

        job = await service.find_job(job_id)
        return job, await job_links(service, job.id)

    job, links = with_service(state_of(ctx).settings(), action)
    from qworker.cli import _render

    deps, dependents = links.dependencies, links.dependents
    if as_json:
        linked = {
            "dependencies": [
                m.model_dump(mode="json", exclude={"deps", "dependents"}) for m in deps
            ],
            "dependents": [
                m.model_dump(mode="json", exclude={"deps", "dependents"}) for m in dependents
            ],
        }
        _render.print_json({**job_json(job), **linked})
        return
    view = _job_view(job, _render.now_ms(), traceback=traceback)
    _render.show(*view[:1], *_links_view(deps, dependents), *view[1:])


def _links_view(deps: list[FlowMember], dependents: list[FlowMember]) -> list[RenderableType]:
    """The jobs this one waits for and those waiting for it, with their states."""
    from qworker.cli._render import Col, table

    rows = [("waits for", m.id, m.state, m.reason or "") for m in deps]
    rows += [("waited on by", m.id, m.state, m.reason or "") for m in dependents]
    if not rows:
        return []
    columns = [Col("link", no_wrap=True), Col("job", no_wrap=True), Col("state"), Col("reason")]
    return [table("Flow", columns, rows)]


@app.command(
    "tree",
    epilog="Example: qworker job tree 3f2a9c   (or: qworker job tree 3f2a9c --json | jq)",
)
def job_tree(ctx: typer.Context, job_id: IdArgument, as_json: JsonOption = False) -> None:
    """Draw the whole flow a job belongs to: each job under the jobs it waits for."""

    async def action(service: QueueService) -> Any:
        from qworker.dependencies import read_flow

        return await read_flow(service, await service.resolve_job_id(job_id))

    graph = with_service(state_of(ctx).settings(), action)
    from qworker.cli import _render
    from qworker.cli.flow_tree import flow_tree

    if as_json:
        _render.print_json(graph.model_dump(mode="json"))
        return
    _render.show(flow_tree(graph))


def _job_view(job: JobRecord, now_ms: int, *, traceback: bool) -> list[RenderableType]:
    from rich.console import Group
    from rich.text import Text

    from qworker.cli._render import Col, format_moment, table

    fields: list[tuple[str, object]] = [("id", job.id), ("state", job.state)]
    if job.waiting is not None:
        fields.append(("waiting", waiting_line(job, now_ms)))
    if (note := cancel_note(job, now_ms)) is not None:
        fields.append(("cancel", note))
    fields += [
        ("type", job.job_type or "?"),
        ("priority", job.priority),
        ("attempts", attempts_text(job)),
    ]
    fields += [(label, format_moment(at_ms, now_ms)) for label, at_ms in _times(job) if at_ms]
    fields += [
        (label, value)
        for label, value in (
            ("worker", job.worker_id),
            ("unique key", job.unique_key),
            ("rate key", job.rate_key),
        )
        if value is not None
    ]
    if job.schedule is not None:
        fields += _origin(job)
    if job.error is not None:
        fields.append(("error", f"{job.error.type}: {job.error.message}"))
    fields += [(f"checkpoint {name}", value) for name, value in job.checkpoints.items()]
    view: list[RenderableType] = [
        table(f"Job {job.id}", [Col("field", no_wrap=True), Col("value")], fields)
    ]
    if job.result_json is not None:
        view.append(Group(Text("Result", style="bold"), Text(_pretty(job.result_json))))
    view.append(Group(Text("Payload", style="bold"), Text(_pretty(job.payload))))
    if traceback and job.error is not None and job.error.traceback:
        lines = Text(job.error.traceback.rstrip())
        view.append(Group(Text("Traceback of the last failed attempt", style="bold"), lines))
    return view


def _origin(job: JobRecord) -> list[tuple[str, object]]:
    """The schedule that enqueued the job and the due time (UTC) it is for."""
    from qworker.clock import format_iso

    due = format_iso(job.scheduled_for_ms)
    if job.schedule_covers:
        due += f" (standing for {job.schedule_covers} missed due times)"
    return [("schedule", job.schedule), ("scheduled for", due)]


def _times(job: JobRecord) -> list[tuple[str, int | None]]:
    return [
        ("enqueued", job.enqueued_at_ms),
        ("state since", job.state_at_ms),
        ("run at", job.run_at_ms),
        ("due at", job.due_at_ms),
        ("started", job.started_at_ms),
        ("failed", job.failed_at_ms),
        ("finished", job.finished_at_ms),
        ("cancel requested", job.cancel_requested_at_ms),
        ("DRY RUN (not done)", job.dry_run_at_ms),
    ]


def attempts_text(job: JobRecord) -> str:
    """``1 of 4``: attempts made, of the most it may make (its retries plus the first)."""
    if job.max_retries is None:
        return f"{job.attempts} (retries: the worker's default)"
    return f"{job.attempts} of {job.max_retries + 1}"


def waiting_line(job: JobRecord, now_ms: int) -> str:
    """Why the job waits and until when: ``retry after attempt 1 failed; due at T (in 5m)``."""
    from qworker.cli._render import format_moment

    waiting = job.waiting
    if waiting is None:
        return "-"
    label = _UNTIL_LABEL.get(job.state, "until")
    if waiting.until_ms is not None:
        return f"{waiting.reason}; {label} {format_moment(waiting.until_ms, now_ms)}"
    if "paused" in waiting.reason:
        return f"{waiting.reason}; until resumed"
    return waiting.reason


def cancel_note(job: JobRecord, now_ms: int) -> str | None:
    """A cancel that came too late to stop the job, said plainly."""
    from qworker.cli._render import format_moment

    if job.cancel_requested_at_ms is None or not job.finished or job.state == "canceled":
        return None
    return (
        f"cancel requested at {format_moment(job.cancel_requested_at_ms, now_ms)} arrived after "
        f"the job could no longer be stopped; it finished {job.state}"
    )


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


# -- wait --------------------------------------------------------------------------------------


@app.command(
    "wait",
    epilog="Example: qworker job wait 3f2a9c --timeout 30s && echo posted",
)
def job_wait(
    ctx: typer.Context,
    job_id: IdArgument,
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout",
            metavar="DURATION",
            help="Give up (exit 1) after this long: 30s, 10m. Default: wait as long as it takes.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Block until the job ends: exit 0 if it is done, 1 if it is dead or canceled."""
    timeout_s = parse_positive_duration_s(timeout, "--timeout") if timeout is not None else None

    async def action(service: QueueService) -> JobRecord:
        full_id = await service.resolve_job_id(job_id)
        return await service.wait_for_job(full_id, timeout_s)

    job = with_service(state_of(ctx).settings(), action)
    if as_json:
        from qworker.cli._render import print_json

        print_json(job_json(job))
    if job.state != "done":
        raise CliError(end_line(job))
    if not as_json:
        result = "" if job.result_json is None else f"; result {job.result_json}"
        print(f"job {job.id} done{result}")


def end_line(job: JobRecord) -> str:
    """How a job that did not succeed ended, in one line."""
    if job.state == "dead":
        error = f": {job.error.type}: {job.error.message}" if job.error else ""
        return f"job {job.id} is dead after {job.attempts} attempt(s){error}"
    if job.state == "canceled":
        return f"job {job.id} was canceled"
    return f"job {job.id} ended {job.state}"


# -- cancel ------------------------------------------------------------------------------------


@app.command(
    "cancel",
    epilog="Example: qworker job cancel 3f2a9c   (or, for a running job: --wait 10s)",
)
def job_cancel(
    ctx: typer.Context,
    job_id: IdArgument,
    wait: Annotated[
        str,
        typer.Option(
            "--wait",
            metavar="DURATION",
            help="For a running job: wait this long for its worker to stop it (0: do not wait).",
        ),
    ] = "5s",
    as_json: JsonOption = False,
) -> None:
    """Cancel a job: a waiting one never runs; a running one is stopped by its worker. Exit 1 if
    it had finished (or finished before the cancel reached it)."""
    wait_s = parse_duration_s(wait, "--wait")
    if wait_s < 0:
        raise UsageError(f"invalid value for --wait: {wait!r} must not be negative")

    async def action(service: QueueService) -> CancelResult:
        full_id = await service.resolve_job_id(job_id)
        return await service.cancel_job(full_id, wait_s=wait_s)

    result = with_service(state_of(ctx).settings(), action)
    if as_json:
        from qworker.cli._render import print_json

        print_json(result.model_dump(mode="json"))
    line, canceled = cancel_outcome(result)
    if not canceled:
        raise CliError(line)
    if not as_json:
        print(line)


def cancel_outcome(result: CancelResult) -> tuple[str, bool]:
    """The line that says what the cancel did, and whether it did (or will) stop the job."""
    job_id = result.job_id
    if result.outcome == "canceled":
        return f"canceled job {job_id} (was {result.previous_state})", True
    if result.outcome == "finished":
        return f"job {job_id} already finished ({result.state})", False
    if result.state == "canceled":
        return f"canceled job {job_id} while it ran", True
    if result.state in ("done", "dead"):
        return f"job {job_id} finished {result.state} before the cancel reached it", False
    return f"cancel requested for job {job_id}; its worker stops it within a second", True


# -- run ---------------------------------------------------------------------------------------


@app.command("run", epilog="Example: qworker job run 3f2a9c")
def job_run(ctx: typer.Context, job_id: IdArgument, as_json: JsonOption = False) -> None:
    """Run a scheduled, retry or parked job next: move it to the front of its priority list."""

    async def action(service: QueueService) -> tuple[str, str, JobRecord | None]:
        full_id = await service.resolve_job_id(job_id)
        left = await service.run_job_now(full_id)
        return full_id, left, await service.get_job(full_id)

    full_id, left, job = with_service(state_of(ctx).settings(), action)
    if as_json:
        from qworker.cli._render import print_json

        state = job.state if job is not None else None
        print_json({"job_id": full_id, "previous_state": left, "state": state})
        return
    where = f"priority {job.priority}" if job is not None else "its priority list"
    print(f"moved job {full_id} (was {left}) to the front of {where}")
