"""Flows through the faults (``--without flows`` leaves them out): chains of 5 and fan-in
groups of 20 (then one job after all of them), some with a member that always fails, enqueued
whole with ``QueueService.add_flow`` before the workers start. The account: every member ran
only after all of its dependencies were done (it saw each one's result), none ran again but
after a fault, and every flow ended fully done or with each undone member dead-lettered with
its reason (its own failure, or ``dependency X dead`` for a dead X it waited for).
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoslib.flow_job import FLOW_FILE_GLOB, FlowParams
from chaoslib.history import FaultEvent, FinalState
from chaoslib.result import CheckResult
from qworker.flows import Step, chain, group
from qworker.service import QueueService

CHAINS, CHAIN_LENGTH, FAILING_CHAINS = 20, 5, 4
GROUPS, GROUP_SIZE, FAILING_GROUPS = 5, 20, 2
# A fault's effects (a lease running out, Redis loading its file) reach this far past it.
FAULT_SLACK_MS = 15_000


@dataclass
class Member:
    flow: str
    step: str
    deps: list[str]
    fails: bool


@dataclass
class FlowRun:
    members: dict[str, Member] = field(default_factory=dict)
    # After the run: each member's state and error message, as Redis holds them.
    states: dict[str, tuple[str, str]] = field(default_factory=dict)
    starts: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    dones: dict[str, list[int]] = field(default_factory=dict)
    driver_start_ms: int = 0


def _steps(flow: str, count: int, failing: int | None, rng: random.Random) -> list[Step]:
    work = [rng.randint(5, 40) for _ in range(count)]
    return [
        Step(
            FlowParams(flow=flow, step=str(i), fail=i == failing, work_ms=work[i]),
            rng.randint(1, 4),
        )
        for i in range(count)
    ]


async def start_flows(service: QueueService, rng: random.Random) -> FlowRun:
    run = FlowRun()
    for n in range(CHAINS):
        failing = rng.randrange(CHAIN_LENGTH) if n < FAILING_CHAINS else None
        steps = _steps(f"chain{n}", CHAIN_LENGTH, failing, rng)
        _note(run, await service.add_flow(chain(*steps)), chain(*steps))
    for n in range(GROUPS):
        failing = rng.randrange(GROUP_SIZE) if n < FAILING_GROUPS else None
        steps = _steps(f"group{n}", GROUP_SIZE + 1, failing, rng)
        flow = group(*steps[:-1]).then(steps[-1])
        _note(run, await service.add_flow(flow), flow)
    return run


def _note(run: FlowRun, ids: list[str], flow: Any) -> None:
    for job_id, node in zip(ids, flow.nodes, strict=True):
        params = node.step.params
        deps = [ids[i] for i in node.after]
        run.members[job_id] = Member(params.flow, params.step, deps, params.fail)


async def read_flow_states(service: QueueService, run: FlowRun) -> None:
    for job_id in run.members:
        job = await service.get_job(job_id)
        error = job.error.message if job is not None and job.error is not None else ""
        run.states[job_id] = (job.state if job is not None else "gone", error)


def set_flows_aside(final: FinalState, run: FlowRun) -> None:
    """The flows are accounted for here, not by the checks of the planned jobs."""
    ids = set(run.members)
    done = sum(1 for state, _ in run.states.values() if state == "done")
    dead = sum(1 for state, _ in run.states.values() if state == "dead")
    final.counters["processed"] = final.counters.get("processed", 0) - done
    final.counters["dead"] = final.counters.get("dead", 0) - dead
    final.places = {place: [i for i in got if i not in ids] for place, got in final.places.items()}
    final.dead = {i: entry for i, entry in final.dead.items() if i not in ids}
    final.records = {i: record for i, record in final.records.items() if i not in ids}
    final.recent = {s: [i for i in got if i not in ids] for s, got in final.recent.items()}


def read_flow_records(run_dir: Path, run: FlowRun) -> None:
    for path in sorted(run_dir.glob(FLOW_FILE_GLOB)):
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                if record["event"] == "start":
                    run.starts.setdefault(record["job_id"], []).append(
                        (record["at_ms"], record["deps"])
                    )
                else:
                    run.dones.setdefault(record["job_id"], []).append(record["at_ms"])


def _expected(run: FlowRun) -> dict[str, str]:
    """Each member's due end: 'done', 'own' (its own failure), 'cascade' (a dependency's), or
    'lost' (dead-lettered for itself though it never fails: its leases ran out too often
    through the faults, a legitimate end whose dependents then cascade)."""
    expected: dict[str, str] = {}
    for job_id, member in run.members.items():  # dependencies come first in every flow
        state, reason = run.states.get(job_id, ("gone", ""))
        if member.fails:
            expected[job_id] = "own"
        elif any(expected[d] != "done" for d in member.deps):
            expected[job_id] = "cascade"
        elif state == "dead" and not reason.startswith("dependency "):
            expected[job_id] = "lost"
        else:
            expected[job_id] = "done"
    return expected


def check_flows(run: FlowRun, faults: list[FaultEvent]) -> CheckResult:
    result = CheckResult("flows: order, one release, every member ends with its reason")
    expected = _expected(run)
    fault_ms = [run.driver_start_ms + int(f.at_s * 1000) for f in faults]
    again = 0
    for job_id, member in run.members.items():
        state, reason = run.states.get(job_id, ("gone", ""))
        where = f"{member.flow} step {member.step} ({job_id})"
        due = expected[job_id]
        if due == "done" and state != "done":
            result.violations.append(f"{where} is {state}, not done ({reason})")
        if due == "own" and (state != "dead" or reason.startswith("dependency ")):
            result.violations.append(f"{where} should be dead by its own failure: {state} {reason}")
        if due == "cascade":
            dead_deps = [d for d in member.deps if expected[d] != "done"]
            reasons = [f"dependency {d} dead" for d in dead_deps]
            if state != "dead" or reason not in reasons:
                result.violations.append(f"{where} should be dead with {reasons}: {state} {reason}")
        for at_ms, seen in run.starts.get(job_id, []):
            if due == "cascade":
                result.violations.append(f"{where} ran though a dependency failed")
            for dep in member.deps:
                done_at = run.dones.get(dep, [])
                if (
                    seen.get(dep) != {"step": run.members[dep].step}
                    or not done_at
                    or min(done_at) > at_ms
                ):
                    result.violations.append(f"{where} started before dependency {dep} was done")
        starts = sorted(at for at, _ in run.starts.get(job_id, []))
        if len(starts) > 1:
            again += 1
            if not any(starts[0] - FAULT_SLACK_MS <= at <= starts[-1] for at in fault_ms):
                result.violations.append(f"{where} ran {len(starts)} times with no fault between")
    counts: defaultdict[str, int] = defaultdict(int)
    for due in expected.values():
        counts[due] += 1
    flows = {m.flow for m in run.members.values()}
    result.lines.append(
        f"{len(flows)} flows ({CHAINS} chains of {CHAIN_LENGTH}, {GROUPS} groups of {GROUP_SIZE} "
        f"then 1), {len(run.members)} members: {counts['done']} done, {counts['own']} failing "
        f"for good, {counts['cascade']} dead-lettered after a dependency, {counts['lost']} lost "
        f"to the faults; {again} ran again after a fault"
    )
    return result
