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
from qworker.producing import check_job_ids, new_job_id, prepare
from qworker.scripts import FlowItem

if TYPE_CHECKING:
    from qworker.service import QueueService

class FlowMember(BaseModel):
    """One job of a flow as ``job show`` and ``job tree`` list it."""

    id: str
    state: str
    job_type: str | None = None
    reason: str | None = None


# Jobs one dep_timeout call dead-letters at most (the caller loops while it gets this many).
TIMEOUT_BATCH = 500


def _item(service: QueueService, step: Step, deps: tuple[str, ...], timeout_ms: int) -> FlowItem:
    check_on_dep_fail(step.on_dep_fail)
    item = prepare(step.params, step.priority, None, step.job_id, service.settings,
                   service._clients)  # fmt: skip
    return FlowItem(item.job_id, item.priority, item.job_type, item.payload, item.max_retries,
                    deps, step.on_dep_fail, timeout_ms)  # fmt: skip


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
    for node in flow.nodes:
        deps = tuple(ids[i] for i in node.after) if node.after else outside
        item = _item(service, node.step, deps, timeout_ms)
        ids.append(item.job_id)
        items.append(item)
    reply = await service._enqueue([service.scripts.enqueue_flow(items, service.clock.now_ms())], ids)
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


async def flow_links(service: QueueService, job_id: str) -> tuple[list[str], list[str]]:
    """(the job's dependencies, its dependents)."""
    k = service.keys
    async with service.redis.pipeline(transaction=False) as pipe:
        pipe.hget(k.job(job_id), "deps")
        pipe.smembers(k.dependents(job_id))
        deps, dependents = await pipe.execute()
    return ([d for d in (deps or "").split(",") if d], sorted(dependents))


async def flow_members(service: QueueService, job_ids: Sequence[str]) -> list[FlowMember]:
    """Each job's id, type, state and reason (the error message of a dead one)."""
    async with service.redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(service.keys.job(job_id), "state", "job_type", "error")
        replies = await pipe.execute()
    members = []
    for job_id, (state, job_type, error) in zip(job_ids, replies, strict=True):
        reason = json.loads(error).get("message") if error else None
        members.append(FlowMember(id=job_id, state=state or "gone", job_type=job_type, reason=reason))
    return members
