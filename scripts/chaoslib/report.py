"""The account of a run, as plain text: the setup, the faults, each invariant, the verdict."""

from __future__ import annotations

from collections import Counter

from chaoslib.history import History, RunFacts
from chaoslib.plan import WORKER_PAUSE, Config
from chaoslib.result import SHOWN_VIOLATIONS, CheckResult


def render(
    cfg: Config,
    history: History,
    facts: RunFacts,
    results: list[CheckResult],
    setup: list[str],
) -> str:
    lines = [f"qworker chaos run: seed {cfg.seed}"]
    lines += [f"  {line}" for line in setup]
    lines += _jobs(history)
    lines += _faults(history, facts)
    lines += _cancels(history, facts)
    lines += _throughput(cfg, facts)
    lines.append("invariants:")
    for result in results:
        lines.append(f"  [{'PASS' if result.ok else 'FAIL'}] {result.name}")
        lines += [f"         {line}" for line in result.lines]
        for violation in result.violations[:SHOWN_VIOLATIONS]:
            lines.append(f"         ! {violation}")
        if len(result.violations) > SHOWN_VIOLATIONS:
            lines.append(f"         ! ... {len(result.violations) - SHOWN_VIOLATIONS} more")
    failed = [result.name for result in results if not result.ok]
    verdict = "PASS" if not failed else f"FAIL ({len(failed)} of {len(results)} invariants broken)"
    lines.append(f"result: {verdict}; replay with --seed {cfg.seed}")
    return "\n".join(lines)


def _jobs(history: History) -> list[str]:
    kinds = Counter(meta.kind for meta in history.jobs.values())
    priorities = Counter(meta.priority for meta in history.jobs.values())
    return [
        f"jobs: {len(history.jobs)} enqueued before the workers started; "
        + ", ".join(f"p{p} {priorities[p]}" for p in sorted(priorities))
        + "; "
        + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
    ]


def _faults(history: History, facts: RunFacts) -> list[str]:
    lines = [f"faults ({len(history.faults)}), with the in-flight set around each:"]
    for event in sorted(history.faults, key=lambda event: event.at_s):
        detail = event.detail
        if event.kind == WORKER_PAUSE and event.pid is not None:
            # The zombie's own log: each line is an ack or move Redis refused it.
            refused = facts.lease_lost_by_pid.get(event.pid, 0)
            detail += f"; its log (whole life): {refused} lease-lost refusal(s)"
        lines.append(
            f"  t+{event.at_s:6.1f}s {event.kind:<20} {len(event.touched):3d} in flight  {detail}"
        )
    return lines


def _cancels(history: History, facts: RunFacts) -> list[str]:
    """The cancels asked, by what the plan aimed at; the cancel check tells how they ended."""
    if not history.cancels and not facts.skipped_cancels:
        return ["cancels: none planned"]
    targets = Counter(request.target for request in history.cancels)
    first = min((request.at_s for request in history.cancels), default=0.0)
    last = max((request.at_s for request in history.cancels), default=0.0)
    return [
        f"cancels: {len(history.cancels)} asked through QueueService.cancel_job between "
        f"t+{first:.1f}s and t+{last:.1f}s, aimed at "
        + ", ".join(f"{target} {n}" for target, n in sorted(targets.items()))
        + (f"; {facts.skipped_cancels} skipped (no candidate, or all final)")
    ]


def _throughput(cfg: Config, facts: RunFacts) -> list[str]:
    if facts.stopped_early:
        return [f"throughput: none; {facts.stopped_early}"]
    if facts.elapsed_s is None:
        return ["throughput: the run timed out before every job was final"]
    rate = cfg.jobs / facts.elapsed_s if facts.elapsed_s else 0.0
    return [
        f"throughput: {cfg.jobs} jobs final in {facts.elapsed_s:.1f}s under faults = "
        f"{rate:.0f} jobs/s ({cfg.workers} workers x concurrency {cfg.concurrency}, "
        f"jobs sleep 0-{2 * cfg.work_ms} ms)"
    ]
