"""``qworker enqueue thread``: an X thread, one tweet job per post, each answering the one
before (qworker/jobs/tweet_thread.py). Prints the posts' job ids, one a line, in order."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qworker.cli._common import state_of, with_service
from qworker.cli._errors import UsageError
from qworker.cli.enqueue import PriorityOption

if TYPE_CHECKING:
    from qworker.service import QueueService


EXAMPLE = (
    'Example: qworker enqueue thread "1/ We shipped" "2/ Here is how"  '
    "(or: --from-file thread.txt, one post a paragraph)"
)


def enqueue_thread(
    ctx: typer.Context,
    posts: Annotated[
        list[str] | None,
        typer.Argument(metavar="TEXT...", help="The posts, in order.", show_default=False),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            metavar="FILE",
            help="Read the posts from a UTF-8 file: one post per paragraph (blank-line separated).",
            show_default=False,
        ),
    ] = None,
    priority: PriorityOption = 3,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"job_ids": [...]} instead of one id a line.')
    ] = False,
) -> None:
    """Queue an X thread: each post replies to the previous post, in order; a post that fails
    for good stops the rest (dead-lettered with the reason) until it is requeued."""
    from qworker.jobs.tweet_thread import paragraphs, thread_flow

    if from_file is not None:
        if posts:
            raise UsageError("give the posts as arguments or --from-file, not both")
        try:
            posts = paragraphs(from_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read --from-file {from_file}: {exc}") from None
    flow = thread_flow(list(posts or []), priority)

    async def action(service: QueueService) -> list[str]:
        return await service.add_flow(flow)

    job_ids = with_service(state_of(ctx).settings(), action)
    if as_json:
        sys.stdout.write(json.dumps({"job_ids": job_ids}, indent=2) + "\n")
    else:
        sys.stdout.write("".join(f"{job_id}\n" for job_id in job_ids))
