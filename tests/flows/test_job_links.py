"""A job's neighbours in its flow (``job show``, the web UI's job page): what it waits for and
what waits for it, each with its state, all of them or the first few of each."""

from __future__ import annotations

from pathlib import Path

from qworker.dependencies import job_links
from qworker.flows import chain, group
from qworker.service import QueueService
from tests.flows.jobtypes import step


async def test_links_name_both_sides_with_their_states(service: QueueService, log: Path) -> None:
    first, *fanned, last = await service.add_flow(
        chain(step(log, "first"), group(*(step(log, f"b{n}") for n in range(5))), step(log, "z"))
    )

    links = await job_links(service, first)
    assert links.dependencies == []
    assert sorted(m.id for m in links.dependents) == sorted(fanned)
    assert {m.state for m in links.dependents} == {"waiting"}
    assert (links.more_dependencies, links.more_dependents) == (0, 0)

    middle = await job_links(service, fanned[0])
    assert [(m.id, m.state) for m in middle.dependencies] == [(first, "queued")]
    assert [m.id for m in middle.dependents] == [last]

    everything = await job_links(service, last)
    shown = await job_links(service, last, limit=2)
    assert [m.id for m in everything.dependencies] == fanned  # in the order enqueued
    assert [m.id for m in shown.dependencies] == fanned[:2]
    assert (shown.more_dependencies, shown.more_dependents) == (3, 0)
    few = await job_links(service, first, limit=1)
    assert (len(few.dependents), few.more_dependents) == (1, 4)
