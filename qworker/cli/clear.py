"""``qworker clear``: delete chosen queues, after saying what goes and asking.

Without a terminal to ask on, it refuses unless ``--yes`` is given: a cron line or a pipe never
deletes by accident. In-flight jobs are deleted only with ``--all``; keys outside qworker's
namespace are never touched (QueueService.clear_queue only knows qworker's own keys).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from qworker.cli._common import priority_option, state_of, with_service
from qworker.cli._errors import EXIT_FAILED, CliError, UsageError

if TYPE_CHECKING:
    from qworker.models import QueueStats
    from qworker.service import QueueService

EXAMPLE = "Example: qworker clear --dlq --retry   (in a script: qworker clear --priority 4 --yes)"


def clear(
    ctx: typer.Context,
    priorities: Annotated[
        list[int] | None,
        priority_option("Clear this priority list (repeatable)."),
    ] = None,
    retry: Annotated[bool, typer.Option("--retry", help="Clear the retry queue.")] = False,
    dead_letter: Annotated[
        bool, typer.Option("--dlq", help="Clear the dead-letter queue.")
    ] = False,
    scheduled: Annotated[
        bool, typer.Option("--scheduled", help="Clear jobs scheduled for later.")
    ] = False,
    parked: Annotated[
        bool, typer.Option("--parked", help="Clear jobs parked by a rate limit.")
    ] = False,
    everything: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Everything in the namespace: every queue, in-flight jobs, counters, "
            "rate-limit history and worker records.",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete queued jobs; says what it will delete and asks first."""
    chosen = sorted(set(priorities or []))
    if not (chosen or retry or dead_letter or scheduled or parked or everything):
        raise UsageError(
            "choose what to clear: --priority N, --retry, --scheduled, --parked, --dlq or --all"
        )
    settings = state_of(ctx).settings()

    async def read_stats(service: QueueService) -> QueueStats:
        return await service.get_queue_stats()

    stats = with_service(settings, read_stats)
    plan = _plan(stats, chosen, retry, dead_letter, scheduled, parked, everything)
    where = f"{settings.masked_redis_url()} namespace {settings.namespace or '(none)'}"
    if not yes and not sys.stdin.isatty():
        raise UsageError(
            f"refusing to delete ({'; '.join(plan)}) from {where} without a terminal to "
            "confirm on; add --yes"
        )
    sys.stderr.write(f"will delete from {where}:\n")
    sys.stderr.writelines(f"  {line}\n" for line in plan)
    if not yes and not typer.confirm("Delete them?", default=False, err=True):
        raise CliError("nothing deleted", EXIT_FAILED)

    async def delete(service: QueueService) -> int:
        return await service.clear_queue(
            chosen,
            retry=retry,
            scheduled=scheduled,
            parked=parked,
            dead_letter=dead_letter,
            everything=everything,
        )

    deleted = with_service(settings, delete)
    print(f"deleted {deleted} job(s)")


def _plan(
    stats: QueueStats,
    priorities: list[int],
    retry: bool,
    dead_letter: bool,
    scheduled: bool,
    parked: bool,
    everything: bool,
) -> list[str]:
    """One line per queue that will be emptied, with how many jobs it holds now."""
    from qworker.keys import PRIORITIES, QueueKeys

    if everything:
        priorities = list(PRIORITIES)
        retry = dead_letter = scheduled = parked = True
    # QueueStats names the lists as keys without the namespace, as the seed did.
    bare = QueueKeys()
    lines = [f"priority {p}: {stats.queues.get(bare.priority(p), 0)} job(s)" for p in priorities]
    for wanted, name, count in (
        (retry, "retry", stats.retry),
        (scheduled, "scheduled", stats.scheduled),
        (parked, "parked", stats.parked),
        (dead_letter, "dead letter", stats.dead_letter),
    ):
        if wanted:
            lines.append(f"{name}: {count} job(s)")
    if everything:
        lines.append(f"in flight: {stats.in_flight} job(s) (workers running them will fail)")
        lines.append("counters, rate-limit history and worker records")
    return lines
