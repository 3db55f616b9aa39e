"""The options of ``qworker enqueue`` that make a job wait for others: ``--after``,
``--on-dep-fail`` and ``--dep-timeout`` (qworker/flows.py has the model)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import typer

from qworker.cli._common import parse_positive_duration_s
from qworker.cli._errors import UsageError

AfterOption = Annotated[
    str | None,
    typer.Option(
        "--after",
        metavar="ID[,ID...]",
        help="Wait (state: waiting) until these jobs are done, then queue at its priority "
        "(with --delay, that long after; with --at, not before then).",
        show_default=False,
    ),
]


class OnDepFail(StrEnum):
    fail = "fail"
    run = "run"


OnDepFailOption = Annotated[
    OnDepFail,
    typer.Option(
        "--on-dep-fail",
        metavar="fail|run",
        help="When a job it waits for ends dead or canceled: go to the dead-letter queue with "
        "the reason (fail), or run anyway without that result (run).",
    ),
]
DepTimeoutOption = Annotated[
    str | None,
    typer.Option(
        "--dep-timeout",
        metavar="DURATION",
        help="Waiting longer than this sends it to the dead-letter queue. Default: 7d.",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class After:
    """The dependency options as given (ids None: the job waits for nothing)."""

    ids: str | None = None
    on_dep_fail: OnDepFail = OnDepFail.fail
    dep_timeout: str | None = None


def after_options(after: After) -> tuple[tuple[str, ...] | None, float | None]:
    """``--after`` ids (checked) and ``--dep-timeout`` in seconds, which need ``--after``."""
    if after.ids is None:
        if after.dep_timeout is not None or after.on_dep_fail != OnDepFail.fail:
            given = "--dep-timeout" if after.dep_timeout is not None else "--on-dep-fail"
            raise UsageError(f"{given} needs --after ID")
        return None, None
    from qworker.flows import parse_after

    timeout_s = (
        parse_positive_duration_s(after.dep_timeout, "--dep-timeout") if after.dep_timeout else None
    )
    return parse_after(after.ids), timeout_s
