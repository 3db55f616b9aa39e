"""``qworker enqueue tweet|json``: validate a job, queue it, print its id.

Cron lines run this often, so it starts fast: no Rich, no worker, no tweepy; the service and
pydantic are imported inside the commands. Output is the bare job id (``id=$(qworker enqueue
tweet hi)``) or, with ``--json``, the whole job record and whether it is new. ``--id`` makes a
retried line safe: while a job with that id exists, enqueueing it again queues nothing.
``--unique-key`` (``--unique`` for a tweet's text) keeps one job per key: a duplicate queues
nothing, prints the holder's id and exits 3.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qworker.cli._common import parse_positive_duration_s, schedule, state_of, with_service
from qworker.cli._errors import EXIT_DUPLICATE, UsageError
from qworker.cli._flow_options import (
    After,
    AfterOption,
    DepTimeoutOption,
    OnDepFail,
    OnDepFailOption,
    after_options,
)
from qworker.cli.enqueue_input import duplicate_line, read_argument, tweet_unique_key
from qworker.errors import ReplicationUnconfirmed

if TYPE_CHECKING:
    from qworker.models import EnqueueResult, JobRecord
    from qworker.service import QueueService

app = typer.Typer(
    help="Put a job on the queue and print its id.",
    no_args_is_help=True,
    epilog='Example: qworker enqueue tweet "Hello from cron" --priority 2',
)

PriorityOption = Annotated[
    int,
    typer.Option(
        "--priority",
        "-p",
        min=1,
        max=4,
        metavar="PRIORITY",
        help="1 (urgent), 2 (high), 3 (normal) or 4 (low).",
    ),
]
DelayOption = Annotated[
    str | None,
    typer.Option(
        "--delay",
        metavar="DURATION",
        help="Make it ready later: 90s, 10m, 2h, 1h30m (with --after: after those jobs).",
    ),
]
AtOption = Annotated[
    str | None,
    typer.Option(
        "--at",
        metavar="TIME",
        help="Make it ready at an ISO-8601 time (local time unless it has a zone).",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the whole job record as JSON instead of the id.")
]
DurableOption = Annotated[
    bool,
    typer.Option(
        "--durable",
        help="Return only once a replica has the job (Redis WAIT; QWORKER_DURABLE_REPLICAS, "
        "at least 1).",
    ),
]
IdOption = Annotated[
    str | None,
    typer.Option(
        "--id",
        metavar="ID",
        help="The job's id (1-64 of A-Z a-z 0-9 . _ : -): while a job with this id exists, "
        "enqueueing it again queues nothing, so a retried command never doubles a job.",
        show_default=False,
    ),
]
UniqueKeyOption = Annotated[
    str | None,
    typer.Option(
        "--unique-key",
        metavar="KEY",
        help="While another job holds this key, queue nothing: print that job's id and exit 3.",
        show_default=False,
    ),
]
UniqueForOption = Annotated[
    str | None,
    typer.Option(
        "--unique-for",
        metavar="DURATION",
        help="Hold the unique key at most this long: 10m, 1h, 1d. Default: no limit.",
        show_default=False,
    ),
]


class UniqueUntil(StrEnum):
    started = "started"
    finished = "finished"


UniqueUntilOption = Annotated[
    UniqueUntil | None,
    typer.Option(
        "--unique-until",
        metavar="started|finished",
        help="Hold the unique key until the job has started, or finished (done, dead or "
        "canceled). Default: finished.",
        show_default=False,
    ),
]
ImportOption = Annotated[
    list[str] | None,
    typer.Option(
        "--import",
        metavar="MODULE",
        help="Import a module that registers job types (repeatable).",
    ),
]


@dataclass(frozen=True)
class Unique:
    """The unique-key options as given (all None: not a unique job)."""

    key: str | None = None
    for_: str | None = None
    until: UniqueUntil | None = None


@dataclass(frozen=True)
class Plan:
    """Where and when the job goes, as the options gave it."""

    priority: int
    delay: str | None
    at: str | None
    job_id: str | None
    durable: bool
    unique: Unique
    after: After = field(default_factory=After)


@app.command(
    "tweet",
    epilog=(
        'Example: qworker enqueue tweet "Release 1.2 is out" -p 2 --delay 10m '
        "(or: echo text | qworker enqueue tweet -)"
    ),
)
def enqueue_tweet(
    ctx: typer.Context,
    text: Annotated[
        str,
        typer.Argument(
            metavar="TEXT", help="The tweet's text, or - to read it from stdin.", show_default=False
        ),
    ],
    priority: PriorityOption = 3,
    media_ids: Annotated[
        list[str] | None,
        typer.Option("--media-id", metavar="ID", help="An uploaded media id (repeatable)."),
    ] = None,
    media_files: Annotated[
        list[Path] | None,
        typer.Option(
            "--media",
            metavar="FILE",
            help="An image to attach, stored with the job (repeatable: up to 4 JPEG, PNG or "
            "WebP images of 5 MB, or 1 GIF of 15 MB).",
            show_default=False,
        ),
    ] = None,
    alts: Annotated[
        list[str] | None,
        typer.Option(
            "--alt",
            metavar="TEXT",
            help="Alt text of the --media file in the same place (repeatable; 1,000 characters).",
            show_default=False,
        ),
    ] = None,
    delay: DelayOption = None,
    at: AtOption = None,
    as_json: JsonOption = False,
    durable: DurableOption = False,
    job_id: IdOption = None,
    unique_text: Annotated[
        bool,
        typer.Option(
            "--unique",
            help="Queue nothing while another tweet with the same text (whitespace and Unicode "
            "form aside) holds its key: --unique-key tweet:HASH, HASH from the text.",
        ),
    ] = False,
    unique_key: UniqueKeyOption = None,
    unique_for: UniqueForOption = None,
    unique_until: UniqueUntilOption = None,
    after: AfterOption = None,
    on_dep_fail: OnDepFailOption = OnDepFail.fail,
    dep_timeout: DepTimeoutOption = None,
) -> None:
    """Queue a tweet; prints the job id."""
    content = read_argument(text)
    if unique_text:
        if unique_key is not None:
            raise UsageError("give --unique or --unique-key, not both")
        unique_key = tweet_unique_key(content)
    job_data: dict[str, Any] = {"job_type": "tweet", "content": content}
    if media_ids:
        job_data["media_ids"] = list(media_ids)
    blobs: list[bytes] = []
    if media_files or alts:
        from qworker.jobs.tweet_media import read_media_files

        refs, blobs = read_media_files(media_files or [], alts or [])
        job_data["media"] = [ref.model_dump(exclude_none=True) for ref in refs]
    unique = Unique(unique_key, unique_for, unique_until)
    waits = After(after, on_dep_fail, dep_timeout)
    plan = Plan(priority, delay, at, job_id, durable, unique, waits)
    _enqueue(ctx, job_data, plan, as_json, [], media=blobs)


@app.command(
    "json",
    epilog=(
        """Example: qworker enqueue json '{"job_type": "tweet", "content": "hi"}' -p 1"""
        " --import myapp.jobs"
    ),
)
def enqueue_json(
    ctx: typer.Context,
    job: Annotated[
        str,
        typer.Argument(
            metavar="JOB_JSON",
            help='The job as a JSON object with a "job_type", or - to read it from stdin.',
            show_default=False,
        ),
    ],
    priority: PriorityOption = 3,
    imports: ImportOption = None,
    delay: DelayOption = None,
    at: AtOption = None,
    as_json: JsonOption = False,
    durable: DurableOption = False,
    job_id: IdOption = None,
    unique_key: UniqueKeyOption = None,
    unique_for: UniqueForOption = None,
    unique_until: UniqueUntilOption = None,
    after: AfterOption = None,
    on_dep_fail: OnDepFailOption = OnDepFail.fail,
    dep_timeout: DepTimeoutOption = None,
) -> None:
    """Queue a job of any registered type (plugins included); prints the job id."""
    raw = read_argument(job)
    try:
        job_data = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"the job is not valid JSON: {exc}") from None
    except RecursionError:
        raise UsageError("the job is not valid JSON: it is nested too deeply") from None
    unique = Unique(unique_key, unique_for, unique_until)
    waits = After(after, on_dep_fail, dep_timeout)
    plan = Plan(priority, delay, at, job_id, durable, unique, waits)
    _enqueue(ctx, job_data, plan, as_json, list(imports or []))


def _unique_options(unique: Unique) -> tuple[float | None, str]:
    """``--unique-for`` in seconds and ``--unique-until``, which need a unique key."""
    if unique.key is None:
        given = "--unique-for" if unique.for_ is not None else "--unique-until"
        if unique.for_ is not None or unique.until is not None:
            raise UsageError(f"{given} needs --unique-key (or --unique for a tweet)")
        return None, UniqueUntil.finished.value
    for_s = parse_positive_duration_s(unique.for_, "--unique-for") if unique.for_ else None
    return for_s, (unique.until or UniqueUntil.finished).value


def _enqueue(
    ctx: typer.Context,
    job_data: Any,
    plan: Plan,
    as_json: bool,
    imports: list[str],
    media: list[bytes] | None = None,
) -> None:
    from qworker.jobs.base import JobFactory, load_job_modules
    from qworker.producing import check_job_id

    delay_s, run_at_ms = schedule(plan.delay, plan.at)
    unique_for_s, unique_until = _unique_options(plan.unique)
    depends_on, dep_timeout_s = after_options(plan.after)
    if depends_on is not None and (media or plan.unique.key):
        raise UsageError("--after takes no --media or unique key yet")
    if plan.job_id is not None:
        check_job_id(plan.job_id)
    settings = state_of(ctx).settings()
    if plan.durable and settings.durable_replicas < 1:
        settings = settings.model_copy(update={"durable_replicas": 1})
    if media and settings.durable_replicas > 0:
        raise UsageError(
            "a tweet with --media cannot be enqueued durably yet (--durable or "
            "QWORKER_DURABLE_REPLICAS); queue it without, e.g. with QWORKER_DURABLE_REPLICAS=0"
        )
    load_job_modules([*settings.job_modules, *imports])
    # Validate before connecting: a bad job is reported the same whether Redis is up or not.
    params = JobFactory.validate_params(job_data)

    async def action(service: QueueService) -> tuple[EnqueueResult, JobRecord | None]:
        if media:  # a tweet's files go into Redis with the job, in one step
            from qworker.jobs.tweet_media import enqueue_with_media

            result = await enqueue_with_media(
                service,
                params,
                media,
                priority=plan.priority,
                delay_s=delay_s,
                run_at_ms=run_at_ms,
                job_id=plan.job_id,
                unique_key=plan.unique.key,
                unique_for_s=unique_for_s,
                unique_until=unique_until,
            )
        else:
            result = await service.enqueue_job(
                params,
                plan.priority,
                delay_s=delay_s,
                run_at_ms=run_at_ms,
                job_id=plan.job_id,
                unique_key=plan.unique.key,
                unique_for_s=unique_for_s,
                unique_until=unique_until,
                depends_on=depends_on,
                on_dep_fail=plan.after.on_dep_fail.value,
                dep_timeout_s=dep_timeout_s,
            )
        return result, (await service.get_job(result.job_id) if as_json else None)

    try:
        result, record = with_service(settings, action)
    except ReplicationUnconfirmed as exc:
        # The job IS queued (on the master only): print its id as usual, so that a script
        # records it instead of enqueueing it again, then fail with the warning.
        sys.stdout.write("".join(f"{queued}\n" for queued in exc.job_ids))
        raise
    if as_json:
        # The record as Redis holds it now: for a job that existed, the earlier one's; for a
        # duplicate, the record of the job holding the unique key.
        shown = record.model_dump(mode="json") if record else {"id": result.job_id}
        outcome = result.model_dump(mode="json")
        sys.stdout.write(json.dumps({**shown, **outcome}, indent=2) + "\n")
    else:
        sys.stdout.write(result.job_id + "\n")
    if result.duplicate:
        sys.stdout.flush()
        sys.stderr.write(duplicate_line(result.job_id, plan.unique.key))
        raise typer.Exit(EXIT_DUPLICATE)
