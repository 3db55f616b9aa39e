"""``qworker retry-drain``: move retries back to their priority lists without waiting."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from qworker.cli._common import state_of, with_service

if TYPE_CHECKING:
    from qworker.service import QueueService

EXAMPLE = "Example: qworker retry-drain --all --dry-run"


def retry_drain(
    ctx: typer.Context,
    include_not_due: Annotated[
        bool, typer.Option("--all", help="Also the retries whose backoff has not run out.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count them; move nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Move due retries (or all of them) back to their priority lists; prints how many."""

    async def action(service: QueueService) -> int:
        return await service.retry_drain(include_not_due=include_not_due, dry_run=dry_run)

    moved = with_service(state_of(ctx).settings(), action)
    if as_json:
        from qworker.cli._render import print_json
        from qworker.models import RetryDrainResult

        # In a dry run "moved" counts what would move, and "would_move" says so.
        print_json(RetryDrainResult(moved=moved, would_move=dry_run).model_dump(mode="json"))
        return
    which = "retry job(s)" if include_not_due else "due retry job(s)"
    if dry_run:
        print(f"would move {moved} {which} (dry run: nothing moved)")
    else:
        print(f"moved {moved} {which} back to their priority lists")
