"""Claim order: priority 1 before 4, and first in, first out within a priority, also when a
worker runs several jobs at once."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from qworker.service import QueueService
from tests.jobtypes import probe, read_events

RunBurst = Callable[..., Awaitable[Any]]

JOBS = 48


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_start_order_respects_priority_then_fifo(
    service: QueueService, run_burst: RunBurst, probe_log: Path, concurrency: int
) -> None:
    rng = random.Random(7)
    expected: list[tuple[int, int]] = []  # (priority, enqueue sequence) of every job
    for seq in range(JOBS):
        priority = rng.choice([1, 2, 3, 4])
        # A few milliseconds of work, uneven, so that concurrent jobs finish out of order.
        sleep_s = rng.choice([0.0, 0.002, 0.005])
        await service.add_job(probe(probe_log, tag=f"{priority}:{seq}", sleep_s=sleep_s), priority)
        expected.append((priority, seq))
    expected.sort()
    assert {p for p, _ in expected} == {1, 2, 3, 4}

    await run_burst(concurrency=concurrency)

    started = [e.tag for e in read_events(probe_log, "start")]
    assert sorted(started) == sorted(f"{p}:{s}" for p, s in expected)  # each ran once
    expected_position = {f"{p}:{s}": i for i, (p, s) in enumerate(expected)}
    # With N jobs running at once, a job may start at most N-1 places away from its place in
    # the strict order (a slot that frees early takes the next job before an earlier one
    # started); with one at a time the order is exact.
    displaced = {
        tag: position - expected_position[tag]
        for position, tag in enumerate(started)
        if abs(position - expected_position[tag]) >= concurrency
    }
    assert displaced == {}, f"started out of order: {started}"
    assert len(read_events(probe_log, "done")) == JOBS
