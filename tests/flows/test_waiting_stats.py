"""Jobs waiting for their dependencies are counted by ``get_queue_stats`` (one ZCARD in the
pipeline stats already sends: no round trip more), by the metrics exporter (a ``queue`` label),
and listed with what each waits for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from qworker.connection import sync_client
from qworker.dependencies import WAITS_FOR_SHOWN, waits_for
from qworker.flows import chain, group
from qworker.metrics.queue import QueueCollector, read_snapshot
from qworker.service import QueueService
from tests.flows.jobtypes import step

RunBurst = Callable[..., Awaitable[Any]]


class RoundTrips:
    """Counts what an async client sends: each pipeline's execute and each single command."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.count = 0
        pipeline, execute_command = client.pipeline, client.execute_command

        def counted_pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = pipeline(*args, **kwargs)
            execute = pipe.execute

            async def counted(*a: Any, **k: Any) -> Any:
                self.count += 1
                return await execute(*a, **k)

            pipe.execute = counted  # type: ignore[method-assign]
            return pipe

        async def counted_command(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await execute_command(*args, **kwargs)

        client.pipeline = counted_pipeline  # type: ignore[method-assign]
        client.execute_command = counted_command  # type: ignore[method-assign]


async def test_stats_count_the_waiting_jobs_in_the_same_round_trips(
    service: QueueService, run_burst: RunBurst, log: Path
) -> None:
    trips = RoundTrips(service.redis)
    empty = await service.get_queue_stats()
    assert empty.waiting == 0
    # The pipeline of lengths and counters, then the HKEYS of the lanes (routing.py).
    assert trips.count == 2

    await service.add_flow(chain(step(log, "a"), step(log, "b"), step(log, "c")))
    await service.add_flow(group(step(log, "d"), step(log, "e")).then(step(log, "f")))
    trips.count = 0
    stats = await service.get_queue_stats()
    assert trips.count == 2
    assert (stats.waiting, stats.total_jobs) == (3, 3)
    assert stats.model_dump()["waiting"] == 3

    await run_burst(concurrency=2)
    stats = await service.get_queue_stats()
    assert (stats.waiting, stats.total_jobs, stats.total_processed) == (0, 0, 6)


async def test_the_exporter_labels_them_as_a_queue(service: QueueService, log: Path) -> None:
    await service.add_flow(chain(step(log, "a"), step(log, "b"), step(log, "c")))
    client = sync_client(service.settings)
    try:
        snapshot = read_snapshot(client, service.keys, service.clock.now_ms())
        families = list(QueueCollector(client, service.keys, service.clock.now_ms).collect())
    finally:
        client.close()
    assert snapshot.queues["waiting"] == 2
    assert snapshot.queues["priority_3"] == 1
    [queue] = [family for family in families if family.name == "qworker_queue_jobs"]
    values = {sample.labels["queue"]: sample.value for sample in queue.samples}
    assert values["waiting"] == 2
    assert {"scheduled", "retry", "parked", "running", "dead"} <= set(values)


async def test_each_waiting_job_names_what_it_waits_for(
    service: QueueService, run_burst: RunBurst, log: Path
) -> None:
    a, b, c = await service.add_flow(chain(step(log, "a"), step(log, "b"), step(log, "c")))
    fan = [step(log, f"m{n}") for n in range(WAITS_FOR_SHOWN + 2)]
    *members, last = await service.add_flow(group(*fan).then(step(log, "last")))

    page = await service.list_jobs("waiting", limit=10)
    listed = {entry.job_id: entry for entry in await waits_for(service, [j.id for j in page.jobs])}
    assert set(listed) == {b, c, last}
    assert [(m.id, m.state) for m in listed[b].dependencies] == [(a, "queued")]
    assert [(m.id, m.state) for m in listed[c].dependencies] == [(b, "waiting")]
    # A fan-in step shows its first dependencies and how many it has.
    assert [m.id for m in listed[last].dependencies] == members[:WAITS_FOR_SHOWN]
    assert listed[last].total == len(members)
    assert await waits_for(service, []) == []
