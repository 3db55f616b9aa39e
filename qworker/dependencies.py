"""The service side of workflows: storing a flow, results passed on, the dep-timeout sweep, and
reading a flow back (``job show``, ``job tree``). The moves themselves are Lua
(enqueue_flow.lua, dependencies.lua, repair.lua, dep_timeout.lua); see flows.py for the model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel

from qworker.errors import ValidationFailed
from qworker.flows import Flow, Step, check_depends_on, check_on_dep_fail, dep_timeout_ms
from qworker.producing import check_job_ids, new_job_id, prepare, run_at_ms
from qworker.scripts import FlowItem

if TYPE_CHECKING:
    from qworker.service import QueueService


class FlowMember(BaseModel):
    """One job of a flow as ``job show`` and ``job tree`` list it."""

    id: str
    state: str
    job_type: str | None = None
    reason: str | None = None
    deps: list[str] = []
    dependents: list[str] = []


class FlowGraph(BaseModel):
    """The jobs of one flow (``job tree``), as found from ``job_id``."""

    job_id: str
    jobs: list[FlowMember]
    # False when the flow has more than FLOW_READ_MAX jobs: only those nearest are listed.
    complete: bool = True


class JobLinks(BaseModel):
    """One job's neighbours in its flow (``job show``, the web UI's job page); ``more_*``:
    those left out by a limit."""

    dependencies: list[FlowMember] = []
    dependents: list[FlowMember] = []
    more_dependencies: int = 0
    more_dependents: int = 0


class WaitsFor(BaseModel):
    """What one waiting job waits for (the web UI's list of waiting jobs): its first
    dependencies, as many as a row shows, and how many it has in all."""

    job_id: str
    dependencies: list[FlowMember] = []
    total: int = 0


FLOW_READ_MAX = 5000
# Dependencies read per job for a list of waiting jobs: a page costs what a page costs, even
# for a fan-in step waiting for thousands (its own page lists them all).
WAITS_FOR_SHOWN = 10


# Jobs one dep_timeout call dead-letters at most (the caller loops while it gets this many).
TIMEOUT_BATCH = 500


def _item(
    service: QueueService, step: Step, deps: tuple[str, ...], timeout_ms: int, now_ms: int
) -> FlowItem:
    check_on_dep_fail(step.on_dep_fail)
    # Checked as a job's own delay or start time is; the delay counts from its release.
    run_at_ms(step.delay_s, step.run_at_ms, now_ms)
    ready_delay_ms = int(step.delay_s * 1000) if step.delay_s is not None else 0
    item = prepare(step.params, step.priority, None, step.job_id, service.settings,
                   service._clients)  # fmt: skip
    return FlowItem(item.job_id, item.priority, item.job_type, item.payload, item.max_retries,
                    deps, step.on_dep_fail, timeout_ms, ready_delay_ms,
                    step.run_at_ms or 0)  # fmt: skip


def check_delays_fit(flow: Flow, items: Sequence[FlowItem], now_ms: int, timeout_ms: int) -> None:
    """Refuse a flow whose delays and start times alone keep a step waiting past its
    dep-timeout: that step would be dead-lettered before its dependencies could run."""
    earliest_ms: list[int] = []  # from now, the soonest each step can run
    for number, (node, item) in enumerate(zip(flow.nodes, items, strict=True), start=1):
        waits_ms = max((earliest_ms[i] for i in node.after), default=0)
        if waits_ms >= timeout_ms:
            raise ValidationFailed(
                f"step {number} would wait at least {waits_ms / 3_600_000:g} h for the delays "
                f"and start times of the steps before it, past its dep-timeout of "
                f"{timeout_ms / 3_600_000:g} h: give a longer dep-timeout"
            )
        earliest_ms.append(
            max(
                waits_ms + item.ready_delay_ms,
                item.not_before_ms - now_ms if item.not_before_ms else 0,
            )
        )


async def enqueue_flow(
    service: QueueService,
    flow: Flow,
    *,
    after: Sequence[str] = (),
    dep_timeout_s: float | None = None,
) -> list[str]:
    """Validate every step, then store the whole flow in one script call; returns the ids in
    the flow's order. ``after``: stored jobs the flow's first steps wait for."""
    if not flow.nodes:
        raise ValidationFailed("the flow has no step")
    outside = check_depends_on(after) if after else ()
    timeout_ms = dep_timeout_ms(dep_timeout_s)
    given = [node.step.job_id for node in flow.nodes]
    if any(job_id is not None for job_id in given):
        check_job_ids([job_id or new_job_id() for job_id in given], len(given))
    ids: list[str] = []
    items: list[FlowItem] = []
    now_ms = service.clock.now_ms()
    for node in flow.nodes:
        deps = tuple(ids[i] for i in node.after) if node.after else outside
        item = _item(service, node.step, deps, timeout_ms, now_ms)
        ids.append(item.job_id)
        items.append(item)
    check_delays_fit(flow, items, now_ms, timeout_ms)
    reply = await service._enqueue([service.scripts.enqueue_flow(items, now_ms)], ids)
    outcome = reply[0]
    if outcome.unknown_dep is not None:
        raise ValidationFailed(
            f"no job {outcome.unknown_dep} to wait for: give the id of a stored job "
            "(qworker jobs list)"
        )
    if outcome.taken_id is not None:
        raise ValidationFailed(f"job id {outcome.taken_id} is taken: give another id")
    return ids


async def dependency_results(service: QueueService, deps: Sequence[str]) -> dict[str, Any]:
    """Job id -> its result (decoded JSON; None when it has none: it failed, or returned
    nothing). The records are kept for their dependents whatever the keep time says."""
    async with service.redis.pipeline(transaction=False) as pipe:
        for job_id in deps:
            pipe.hmget(service.keys.job(job_id), "result", "state")
        replies = await pipe.execute()
    results: dict[str, Any] = {}
    for job_id, (result, state) in zip(deps, replies, strict=True):
        results[job_id] = json.loads(result) if result and state == "done" else None
    return results


async def expire_waiting(service: QueueService) -> int:
    """Dead-letter the jobs waiting past their dep-timeout (Redis's clock, or the service's
    clock when a test moves it); returns how many."""
    total = 0
    while True:
        call = service.scripts.dep_timeout(service.clock.script_now_ms(), TIMEOUT_BATCH)
        count = cast(int, await service.run(call))
        total += count
        if count < TIMEOUT_BATCH:
            return total


async def flow_members(service: QueueService, job_ids: Sequence[str]) -> list[FlowMember]:
    """Each job as a flow member: state, type, reason (a dead one's error), its links."""
    k = service.keys
    async with service.redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(k.job(job_id), "state", "job_type", "error", "deps")
            pipe.smembers(k.dependents(job_id))
        replies = await pipe.execute()
    members = []
    for i, job_id in enumerate(job_ids):
        (state, job_type, error, deps), dependents = replies[2 * i], replies[2 * i + 1]
        members.append(
            FlowMember(
                id=job_id,
                state=state or "gone",
                job_type=job_type,
                reason=_message(error) if state == "dead" else None,
                deps=[d for d in (deps or "").split(",") if d],
                dependents=sorted(dependents),
            )
        )
    return members


async def job_links(service: QueueService, job_id: str, limit: int | None = None) -> JobLinks:
    """The jobs ``job_id`` waits for and the jobs waiting for it, each with its state: all of
    them, or the first ``limit`` of each (a page need not read a fan-out of thousands)."""
    [member] = await flow_members(service, [job_id])
    deps, dependents = member.deps[:limit], member.dependents[:limit]
    linked = await flow_members(service, [*deps, *dependents])
    return JobLinks(
        dependencies=linked[: len(deps)],
        dependents=linked[len(deps) :],
        more_dependencies=len(member.deps) - len(deps),
        more_dependents=len(member.dependents) - len(dependents),
    )


async def waits_for(service: QueueService, job_ids: Sequence[str]) -> list[WaitsFor]:
    """For each job, its first WAITS_FOR_SHOWN dependencies with their states: two round
    trips for the whole list."""
    members = await flow_members(service, job_ids) if job_ids else []
    shown = {m.id: m.deps[:WAITS_FOR_SHOWN] for m in members}
    wanted = list(dict.fromkeys(dep for deps in shown.values() for dep in deps))
    found = {m.id: m for m in await flow_members(service, wanted)} if wanted else {}
    return [
        WaitsFor(job_id=m.id, dependencies=[found[dep] for dep in shown[m.id]], total=len(m.deps))
        for m in members
    ]


def _message(error: str | None) -> str | None:
    try:
        return str(json.loads(error).get("message")) if error else None
    except (ValueError, AttributeError):
        return error


async def read_flow(service: QueueService, job_id: str) -> FlowGraph:
    """Every job of the flow ``job_id`` is in, found from it both ways, level by level (one
    round trip a level), up to FLOW_READ_MAX jobs."""
    found: dict[str, FlowMember] = {}
    level = [job_id]
    while level and len(found) < FLOW_READ_MAX:
        members = await flow_members(service, level[: FLOW_READ_MAX - len(found)])
        found.update((m.id, m) for m in members)
        linked = {j for m in members for j in (*m.deps, *m.dependents)}
        level = sorted(linked - found.keys())
    return FlowGraph(job_id=job_id, jobs=list(found.values()), complete=not level)
