"""``qworker schedule``: recurring jobs. Add (or replace) a cron or interval schedule, list and
inspect them, pause, resume, remove, trigger one by hand, preview a cron expression's due times
(no Redis needed), and sync the schedules of a TOML file. Every worker fires them; each due
time exactly once."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from qworker.cli._common import parse_time_ms, priority_option, state_of
from qworker.cli._common import with_service as _with_service
from qworker.cli._errors import UsageError

if TYPE_CHECKING:
    from qworker.config import Settings
    from qworker.schedule_store import ScheduleStore, UpsertResult
    from qworker.schedules import Schedule
    from qworker.service import QueueService

T = TypeVar("T")

app = typer.Typer(
    help="Recurring jobs: cron or interval schedules that every worker fires, once per due time.",
    no_args_is_help=True,
    epilog='Example: qworker schedule add digest --cron "0 9 * * MON" --tz Europe/Berlin '
    '\'{"job_type": "tweet", "content": "Weekly digest"}\'',
)


class Missed(StrEnum):
    once = "once"
    skip = "skip"
    all = "all"


NameArgument = Annotated[
    str, typer.Argument(metavar="NAME", help="The schedule's name.", show_default=False)
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
CronOption = Annotated[
    str | None,
    typer.Option("--cron", metavar="EXPR", help='5-field cron, e.g. "0 9 * * MON".'),
]
TzOption = Annotated[
    str, typer.Option("--tz", metavar="ZONE", help="IANA time zone of --cron, e.g. Europe/Berlin.")
]
EveryOption = Annotated[
    str | None,
    typer.Option("--every", metavar="DURATION", help="A fixed interval instead: 90s, 15m, 2h, 1d."),
]
PriorityOption = Annotated[int, priority_option("1 (urgent) to 4 (low); default 3.")]
MissedOption = Annotated[
    Missed,
    typer.Option(
        "--missed",
        metavar="once|skip|all",
        help="Due times no worker fired: once (one job for all), skip, or all (each).",
    ),
]
CatchupOption = Annotated[
    int, typer.Option("--max-catchup", metavar="N", help="With --missed all: at most N.")
]
OverlapOption = Annotated[
    bool,
    typer.Option("--no-overlap", help="Skip a fire while the previous fire's job is unfinished."),
]
StartOption = Annotated[
    str | None, typer.Option("--start", metavar="TIME", help="First due time from (ISO-8601).")
]
EndOption = Annotated[
    str | None, typer.Option("--end", metavar="TIME", help="No due time after (ISO-8601).")
]
ImportOption = Annotated[
    list[str] | None,
    typer.Option("--import", metavar="MODULE", help="Import a module of job types (repeatable)."),
]


def with_service(settings: Settings, action: Callable[[QueueService], Awaitable[T]]) -> T:
    """``_common.with_service``, with a Redis that cannot be reached said as every other
    command says it: the store reads through the client itself, past the service's wrapper
    (which would give "Redis error: Error 111 connecting to ...")."""
    from qworker.connection import CONNECTION_ERRORS, unavailable

    try:
        return _with_service(settings, action)
    except CONNECTION_ERRORS as exc:
        raise unavailable(settings.redis_url, exc) from None


def _store(service: QueueService) -> ScheduleStore:
    from qworker.schedule_store import ScheduleStore

    return ScheduleStore(service)


def _settings(ctx: typer.Context, imports: list[str] | None = None) -> Settings:
    from qworker.jobs.base import load_job_modules

    settings = state_of(ctx).settings()
    load_job_modules([*settings.job_modules, *(imports or [])])
    return settings


@app.command("add")
def schedule_add(
    ctx: typer.Context,
    name: NameArgument,
    job: Annotated[
        str,
        typer.Argument(
            metavar="JOB_JSON", help='The job: JSON with a "job_type".', show_default=False
        ),
    ],
    cron: CronOption = None,
    tz: TzOption = "UTC",
    every: EveryOption = None,
    priority: PriorityOption = 3,
    missed: MissedOption = Missed.once,
    max_catchup: CatchupOption = 10,
    no_overlap: OverlapOption = False,
    start: StartOption = None,
    end: EndOption = None,
    imports: ImportOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create or replace a schedule (prints added or updated)."""
    try:
        job_data = json.loads(job)
    except ValueError as exc:
        raise UsageError(f"JOB_JSON is not valid JSON: {exc}") from None
    options = dict(locals())
    _add(ctx, job_data, **{k: options[k] for k in _ADD_OPTIONS})


@app.command("tweet")
def schedule_tweet(
    ctx: typer.Context,
    name: NameArgument,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The tweet.", show_default=False)],
    cron: CronOption = None,
    tz: TzOption = "UTC",
    every: EveryOption = None,
    priority: PriorityOption = 3,
    missed: MissedOption = Missed.once,
    max_catchup: CatchupOption = 10,
    no_overlap: OverlapOption = False,
    start: StartOption = None,
    end: EndOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create or replace a schedule that posts TEXT (the tweet job)."""
    options = dict(locals())
    options["imports"] = None
    _add(ctx, {"job_type": "tweet", "content": text}, **{k: options[k] for k in _ADD_OPTIONS})


_ADD_OPTIONS = (
    "name", "cron", "tz", "every", "priority", "missed", "max_catchup", "no_overlap", "start",
    "end", "imports", "as_json",
)  # fmt: skip


def _add(ctx: typer.Context, job_data: Any, **o: Any) -> None:
    from qworker.schedule_store import build_schedule

    if o["cron"] is None and o["tz"] != "UTC":
        raise UsageError("--tz applies to --cron only (an --every interval is real time)")
    settings = _settings(ctx, o["imports"])
    schedule = build_schedule(
        settings,
        o["name"],
        job_data,
        cron=o["cron"],
        tz=o["tz"],
        every=o["every"],
        priority=o["priority"],
        missed=o["missed"].value,
        max_catchup=o["max_catchup"],
        no_overlap=o["no_overlap"],
        start_ms=parse_time_ms(o["start"]) if o["start"] else None,
        end_ms=parse_time_ms(o["end"]) if o["end"] else None,
    )
    _refuse_if_over(schedule, o["end"])

    async def action(service: QueueService) -> tuple[UpsertResult, Schedule]:
        result = await _store(service).upsert(schedule)
        return result, await _store(service).get(schedule.name)

    result, stored = with_service(settings, action)
    _warn_over_rate_limit(schedule, settings)  # after: it says "stored all the same"
    _print_upsert(result, stored, o["as_json"])


def _refuse_if_over(schedule: Schedule, end: str | None) -> None:
    """An --end already past: a schedule that would never fire is a typo, not a wish (to stop
    one, pause or remove it)."""
    from qworker.cli import _render

    if schedule.end_ms is not None and schedule.end_ms <= _render.now_ms():
        raise UsageError(
            f"--end {end} is past: the schedule would never fire (to stop one: qworker "
            "schedule pause or remove NAME)"
        )


def _warn_over_rate_limit(schedule: Schedule, settings: Settings) -> None:
    """A schedule that fires more often than its job's rate limit allows is stored all the
    same (its jobs would wait, parked): say so on stderr, with both numbers."""
    from qworker.cli import _render
    from qworker.schedule_limits import rate_limit_of, rate_limit_warning

    warning = rate_limit_warning(schedule, rate_limit_of(schedule, settings), _render.now_ms())
    if warning:
        _render.message(f"warning: schedule {schedule.name} {warning} (stored all the same)")


def _print_upsert(result: UpsertResult, stored: Schedule, as_json: bool) -> None:
    from qworker.cli import _render
    from qworker.cron import local_text, utc_text
    from qworker.schedules import schedule_json

    if as_json:
        _render.print_json({"outcome": result.outcome, **schedule_json(stored)})
        return
    due = result.next_due_ms
    if stored.paused:
        when = "paused"
    elif due is None:
        when = "no due time left"
    else:
        when = f"next fire {local_text(due, stored.tz)} ({utc_text(due)})"
    print(f"{result.outcome} {stored.name}: {stored.spec}, {when}")


@app.command("list")
def schedule_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every schedule: spec and zone, next fire (local and UTC), last fire and job, paused."""

    async def action(service: QueueService) -> list[Schedule]:
        return await _store(service).list()

    schedules = with_service(state_of(ctx).settings(), action)
    from qworker.cli import _render
    from qworker.cli._schedule_view import schedules_table
    from qworker.schedules import schedule_json

    if as_json:
        _render.print_json([schedule_json(s) for s in schedules])
    else:
        _render.show(schedules_table(schedules))


@app.command("show")
def schedule_show(ctx: typer.Context, name: NameArgument, as_json: JsonOption = False) -> None:
    """One schedule in full, with its counts of fired, missed and skipped due times."""

    async def action(service: QueueService) -> Schedule:
        return await _store(service).get(name)

    schedule = with_service(state_of(ctx).settings(), action)
    from qworker.cli import _render
    from qworker.cli._schedule_view import schedule_detail
    from qworker.schedules import schedule_json

    if as_json:
        _render.print_json(schedule_json(schedule))
    else:
        _render.show(schedule_detail(schedule))


def _set_paused(ctx: typer.Context, name: str, *, paused: bool, as_json: bool) -> None:
    async def action(service: QueueService) -> tuple[bool, Schedule]:
        changed = await _store(service).set_paused(name, paused=paused)
        return changed, await _store(service).get(name)

    changed, schedule = with_service(state_of(ctx).settings(), action)
    word = "paused" if paused else "resumed"
    if as_json:
        from qworker.cli import _render
        from qworker.schedules import schedule_json

        _render.print_json({"changed": changed, **schedule_json(schedule)})
    elif changed:
        print(f"{word} {name}")
    else:
        print(f"{name} was already {'paused' if paused else 'running'}")


@app.command("pause")
def schedule_pause(ctx: typer.Context, name: NameArgument, as_json: JsonOption = False) -> None:
    """Fire nothing until resumed (the due times meanwhile are not caught up)."""
    _set_paused(ctx, name, paused=True, as_json=as_json)


@app.command("resume")
def schedule_resume(ctx: typer.Context, name: NameArgument, as_json: JsonOption = False) -> None:
    """Fire again, from the next due time after now."""
    _set_paused(ctx, name, paused=False, as_json=as_json)


@app.command("remove")
def schedule_remove(ctx: typer.Context, name: NameArgument) -> None:
    """Delete a schedule (the jobs it already enqueued stay)."""

    async def action(service: QueueService) -> None:
        await _store(service).remove(name)

    with_service(state_of(ctx).settings(), action)
    print(f"removed {name}")


@app.command("trigger")
def schedule_trigger(ctx: typer.Context, name: NameArgument) -> None:
    """Enqueue one job of the schedule now; the next due time stays. Prints the job id."""

    async def action(service: QueueService) -> str:
        return await _store(service).trigger(name)

    print(with_service(state_of(ctx).settings(), action))


@app.command("preview")
def schedule_preview(
    expression: Annotated[str, typer.Argument(metavar="EXPR", help="5-field cron.")],
    tz: TzOption = "UTC",
    count: Annotated[
        int, typer.Option("-n", min=1, max=1000, metavar="N", help="How many (1-1000).")
    ] = 10,
    from_: Annotated[
        str | None,
        typer.Option("--from", metavar="TIME", help="Start after this time (ISO-8601), not now."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The next due times of a cron expression, DST changes marked; no Redis needed."""
    from qworker.cli import _render
    from qworker.cli._schedule_view import preview_json, preview_table
    from qworker.cron import Calendar, check_cron, preview, zone

    expression = check_cron(expression)
    zone(tz)
    after_ms = parse_time_ms(from_) if from_ else _render.now_ms()
    times = preview(Calendar(cron=expression, tz=tz), after_ms, count)
    if as_json:
        _render.print_json(preview_json(times, tz))
    else:
        _render.show(preview_table(f"{expression} ({tz}): next {len(times)}", times, tz))


@app.command("sync")
def schedule_sync(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A TOML file of [schedules.NAME].")],
    prune: Annotated[bool, typer.Option("--prune", help="Remove schedules not in FILE.")] = False,
    imports: ImportOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add or update every schedule in FILE (all checked before any is stored)."""
    from qworker.schedule_file import read_schedule_file

    settings = _settings(ctx, imports)
    schedules = read_schedule_file(file, settings)
    if prune and not schedules:
        # An empty file (a template rendered empty, a wrong path) would remove every schedule.
        raise UsageError(
            f"{file} declares no schedule: --prune would remove them all; declare at least one, "
            "or remove them with qworker schedule remove NAME"
        )
    wanted = {s.name for s in schedules}

    async def action(service: QueueService) -> list[tuple[str, str]]:
        from qworker.schedule_store import ScheduleNotFound

        store = _store(service)
        done = [(s.name, (await store.upsert(s)).outcome) for s in schedules]
        if prune:
            for name in sorted(set(await store.names()) - wanted):
                with contextlib.suppress(ScheduleNotFound):  # removed meanwhile: gone all the same
                    await store.remove(name)
                done.append((name, "removed"))
        return done

    done = with_service(settings, action)
    for schedule in schedules:
        _warn_over_rate_limit(schedule, settings)
    if as_json:
        from qworker.cli import _render

        _render.print_json([{"name": name, "outcome": outcome} for name, outcome in done])
        return
    for name, outcome in done:
        sys.stdout.write(f"{outcome} {name}\n")
    if not done:
        sys.stdout.write("nothing to do\n")
