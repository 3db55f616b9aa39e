"""Workflows: jobs that wait for other jobs, composed in Python and enqueued as one whole.

``chain(a, b, c)`` runs each step after the previous one; ``group(a, b, c).then(d)`` runs ``d``
after all of them. A flow only ever points back at steps added before, so it has no cycle by
construction; ``QueueService.add_flow`` stores it in one script call (enqueue_flow.lua): all of
it, or, if Redis fails midway, none of it.

A dependent is ``waiting`` until every dependency is done, and is made ready in the same Lua
step that finished the last one (scheduled instead, if its step has a delay or a start time
still to come). When a dependency ends dead or canceled, the dependent goes to
the dead-letter queue with the reason (``on_dep_fail="fail"``) or runs anyway (``"run"``);
``dlq requeue`` of the failed dependency brings the dependents it took down back to waiting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qworker.errors import ValidationFailed
from qworker.jobs.base import BaseJobParams
from qworker.producing import check_job_id

ON_DEP_FAIL = ("fail", "run")
# A waiting job older than this goes to the dead-letter queue: nothing waits forever.
DEFAULT_DEP_TIMEOUT_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Step:
    """One job of a flow: its params, and how it is queued. ``delay_s``: once its dependencies
    are done (or at once, for a step without any), it is scheduled that long after;
    ``run_at_ms``: it runs no earlier than that time (ms since the epoch). One or the other."""

    params: dict[str, Any] | BaseJobParams
    priority: int = 3
    job_id: str | None = None
    on_dep_fail: str = "fail"
    delay_s: float | None = None
    run_at_ms: int | None = None


StepLike = Step | dict[str, Any] | BaseJobParams


@dataclass(frozen=True)
class FlowNode:
    step: Step
    # Indexes (in the flow) of the steps this one waits for: always earlier ones.
    after: tuple[int, ...]


@dataclass(frozen=True)
class Flow:
    """Steps in enqueue order, each waiting for earlier ones; ``sinks`` are the steps no later
    step waits for (what a following step waits for)."""

    nodes: tuple[FlowNode, ...] = ()
    sinks: tuple[int, ...] = ()

    def then(self, *parts: StepLike | Flow) -> Flow:
        """This flow, then ``parts`` (in parallel) after all of its last steps."""
        return chain(self, group(*parts)) if len(parts) > 1 else chain(self, *parts)

    def __len__(self) -> int:
        return len(self.nodes)


@dataclass(frozen=True)
class FlowIds:
    """What ``add_flow`` returns: the id of every step, in the flow's order."""

    job_ids: list[str] = field(default_factory=list)


def as_step(part: StepLike) -> Step:
    return part if isinstance(part, Step) else Step(part)


def _as_flow(part: StepLike | Flow) -> Flow:
    if isinstance(part, Flow):
        return part
    return Flow((FlowNode(as_step(part), ()),), (0,))


def _shifted(flow: Flow, offset: int, first_after: tuple[int, ...]) -> list[FlowNode]:
    """``flow``'s nodes placed at ``offset``; its first steps wait for ``first_after``."""
    return [
        FlowNode(
            node.step,
            tuple(i + offset for i in node.after) if node.after else first_after,
        )
        for node in flow.nodes
    ]


def chain(*parts: StepLike | Flow) -> Flow:
    """Each part after the previous one (a part that is a group: after all of it)."""
    nodes: list[FlowNode] = []
    sinks: tuple[int, ...] = ()
    for part in parts:
        flow = _as_flow(part)
        offset = len(nodes)
        nodes += _shifted(flow, offset, sinks)
        sinks = tuple(i + offset for i in flow.sinks)
    return Flow(tuple(nodes), sinks)


def group(*parts: StepLike | Flow) -> Flow:
    """The parts side by side (fan-out); ``.then(d)`` runs ``d`` after all of them (fan-in)."""
    nodes: list[FlowNode] = []
    sinks: list[int] = []
    for part in parts:
        flow = _as_flow(part)
        offset = len(nodes)
        nodes += _shifted(flow, offset, ())
        sinks += [i + offset for i in flow.sinks]
    return Flow(tuple(nodes), tuple(sinks))


def check_on_dep_fail(on_dep_fail: str) -> str:
    if on_dep_fail not in ON_DEP_FAIL:
        raise ValidationFailed(f"on-dep-fail must be fail or run, not {on_dep_fail!r}")
    return on_dep_fail


def dep_timeout_ms(dep_timeout_s: float | None) -> int:
    """The dep-timeout in ms (None: 7 days), checked."""
    if dep_timeout_s is None:
        dep_timeout_s = DEFAULT_DEP_TIMEOUT_S
    if not math.isfinite(dep_timeout_s) or dep_timeout_s <= 0:
        raise ValidationFailed(f"dep-timeout must be a positive time, not {dep_timeout_s}")
    return max(int(dep_timeout_s * 1000), 1)


def check_depends_on(depends_on: Sequence[str]) -> tuple[str, ...]:
    """Dependency ids, checked, each once (in the order given)."""
    if isinstance(depends_on, str):
        raise ValidationFailed("depends_on is a list of job ids, not one string")
    ids = tuple(dict.fromkeys(check_job_id(job_id) for job_id in depends_on))
    if not ids:
        raise ValidationFailed("depends_on names no job: give at least one job id")
    return ids


def parse_after(text: str) -> tuple[str, ...]:
    """``--after ID[,ID...]`` to the ids it names."""
    return check_depends_on([part.strip() for part in text.split(",") if part.strip()])
