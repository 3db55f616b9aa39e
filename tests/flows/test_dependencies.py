"""Dependencies on a real redis-server: order, fan-in, results passed on, the fail and run
policies, the cascade, repair by requeue, the dep-timeout, and what enqueue refuses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from qworker.clock import ManualClock
from qworker.errors import ValidationFailed
from qworker.flows import chain, group
from qworker.service import QueueService
from qworker.worker import Worker
from tests.flows.conftest import JOB_MODULES
from tests.flows.jobtypes import ran, step

RunBurst = Callable[..., Awaitable[Any]]


async def state(service: QueueService, job_id: str) -> str:
    job = await service.get_job(job_id)
    return "gone" if job is None else job.state


async def reason(service: QueueService, job_id: str) -> str:
    job = await service.get_job(job_id)
    assert job is not None and job.error is not None
    return job.error.message


async def test_chain_runs_in_order_and_passes_each_result_on(
    service: QueueService, run_burst: RunBurst, log: Path
) -> None:
    a, b, c = await service.add_flow(
        chain(step(log, "a", result=1), step(log, "b", result={"n": 2}), step(log, "c"))
    )
    assert [await state(service, j) for j in (a, b, c)] == ["queued", "waiting", "waiting"]

    await run_burst(concurrency=4)

    assert [line["name"] for line in ran(log)] == ["a", "b", "c"]
    assert [line["deps"] for line in ran(log)] == [{}, {a: 1}, {b: {"n": 2}}]
    assert [await state(service, j) for j in (a, b, c)] == ["done", "done", "done"]


async def test_fan_in_waits_for_the_slowest_member(
    service: QueueService, run_burst: RunBurst, log: Path
) -> None:
    ids = await service.add_flow(
        group(step(log, "a"), step(log, "slow", sleep_s=0.3), step(log, "c")).then(step(log, "d"))
    )

    await run_burst(concurrency=4)

    names = [line["name"] for line in ran(log)]
    assert names[-1] == "d" and sorted(names[:3]) == ["a", "c", "slow"]
    assert set(ran(log)[-1]["deps"]) == set(ids[:3])


async def test_a_dependency_done_already_releases_at_once(
    service: QueueService, run_burst: RunBurst, log: Path
) -> None:
    first = await service.add_job(step(log, "first", result="r"))
    await run_burst()
    second = await service.add_job(step(log, "second"), depends_on=[first])
    assert await state(service, second) == "queued"
    await run_burst()
    assert ran(log)[-1]["deps"] == {first: "r"}


async def test_unknown_dependency_is_refused_and_nothing_is_queued(
    service: QueueService, log: Path
) -> None:
    known = await service.add_job(step(log, "known"))
    with pytest.raises(ValidationFailed, match="no job nosuchjob to wait for"):
        await service.add_job(step(log, "x"), depends_on=[known, "nosuchjob"])
    stats = await service.get_queue_stats()
    assert stats.total_jobs == 1
    assert await service.redis.zcard(service.keys.waiting) == 0
    assert await service.redis.exists(service.keys.dependents(known)) == 0


async def test_fail_cascades_three_levels_with_reasons(
    service: QueueService, run_burst: RunBurst, log: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.touch()
    a, b, c, d = await service.add_flow(
        chain(
            step(log, "a", fail_while=str(broken)), step(log, "b"), step(log, "c"), step(log, "d")
        )
    )

    await run_burst()

    assert ran(log) == []
    assert [await state(service, j) for j in (a, b, c, d)] == ["dead"] * 4
    assert await reason(service, b) == f"dependency {a} dead"
    assert await reason(service, c) == f"dependency {b} dead"
    assert await reason(service, d) == f"dependency {c} dead"
    assert await service.redis.zcard(service.keys.dead_letter) == 4
    assert await service.redis.zcard(service.keys.waiting) == 0


async def test_run_policy_runs_anyway_and_sees_the_missing_result(
    service: QueueService, run_burst: RunBurst, log: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.touch()
    a = await service.add_job(step(log, "a", fail_while=str(broken)))
    ok = await service.add_job(step(log, "ok", result=7))
    b = await service.add_job(step(log, "b"), depends_on=[a, ok], on_dep_fail="run")

    await run_burst()

    assert await state(service, b) == "done"
    assert ran(log)[-1] == {"name": "b", "id": b, "deps": {a: None, ok: 7}}


async def test_requeuing_the_cause_repairs_the_whole_flow(
    service: QueueService, run_burst: RunBurst, log: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.touch()
    a, b, c = await service.add_flow(
        chain(
            step(log, "a", result="A"),
            step(log, "b", fail_while=str(broken), result="B"),
            step(log, "c"),
        )
    )
    await run_burst()
    assert [await state(service, j) for j in (a, b, c)] == ["done", "dead", "dead"]

    broken.unlink()
    requeued = await service.requeue_dead([b])
    assert requeued.requeued == [b]
    assert [await state(service, j) for j in (b, c)] == ["queued", "waiting"]
    await run_burst()

    assert [line["name"] for line in ran(log)] == ["a", "b", "c"]
    assert ran(log)[1]["deps"] == {a: "A"} and ran(log)[2]["deps"] == {b: "B"}
    assert await service.redis.zcard(service.keys.dead_letter) == 0


async def test_a_dependent_with_another_failed_dependency_stays_dead(
    service: QueueService, run_burst: RunBurst, log: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.touch()
    flaky = str(broken)
    a, b, d = await service.add_flow(
        group(step(log, "a", fail_while=flaky), step(log, "b", fail_while=flaky)).then(
            step(log, "d")
        )
    )
    await run_burst()
    broken.unlink()
    await service.requeue_dead([a])
    assert await state(service, d) == "dead"
    assert await reason(service, d) == f"dependency {b} dead"
    await run_burst()
    await service.requeue_dead([b])
    await run_burst()
    assert [await state(service, j) for j in (a, b, d)] == ["done", "done", "done"]


async def test_a_waiting_job_past_its_dep_timeout_is_dead_lettered(
    service: QueueService, clock: ManualClock, log: Path
) -> None:
    never = await service.add_job(step(log, "never"), priority=4)
    waiter = await service.add_job(step(log, "w"), depends_on=[never], dep_timeout_s=60)
    after = await service.add_job(step(log, "after"), depends_on=[waiter])

    clock.advance(59)
    assert await service.expire_waiting() == 0
    clock.advance(2)
    assert await service.expire_waiting() == 1

    assert await state(service, waiter) == "dead"
    assert "dep-timeout" in await reason(service, waiter)
    assert await reason(service, after) == f"dependency {waiter} dead"


async def test_canceling_a_dependency_fails_its_dependents(
    service: QueueService, log: Path
) -> None:
    a = await service.add_job(step(log, "a"))
    b = await service.add_job(step(log, "b"), depends_on=[a])
    c = await service.add_job(step(log, "c"), depends_on=[b])
    assert (await service.cancel_job(c)).outcome == "canceled"
    await service.cancel_job(a)
    assert await state(service, b) == "dead"
    assert await reason(service, b) == f"dependency {a} canceled"


async def test_results_are_kept_until_the_dependents_finish(
    make_settings: Any, clock: ManualClock, log: Path
) -> None:
    settings = make_settings(keep_finished_s=0)
    async with QueueService(settings=settings, clock=clock) as service:
        a = await service.add_job(step(log, "a", result="kept"))
        b = await service.add_job(step(log, "b"), depends_on=[a])
        worker = Worker(service, settings=settings, burst=True, clock=clock,
                        job_modules=JOB_MODULES, concurrency=1)  # fmt: skip
        await asyncio.wait_for(worker.run(), 30)
        assert ran(log)[-1]["deps"] == {a: "kept"}
        assert await service.redis.exists(service.keys.job(a), service.keys.job(b)) == 0


async def test_worker_maintenance_dead_letters_what_waited_too_long(
    service: QueueService, clock: ManualClock, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = await service.add_job(step(log, "later"), delay_s=86_400)
    waiter = await service.add_job(step(log, "w"), depends_on=[later], dep_timeout_s=60)
    clock.advance(61)
    worker = Worker(service, settings=service.settings, clock=clock, job_modules=JOB_MODULES)
    # The sweep runs with lease recovery, which waits one lease after connecting: here, now.
    monkeypatch.setattr(worker.link, "may_recover", lambda: True)

    await worker._maintain_if_due(force=True)

    assert await state(service, waiter) == "dead"
    assert await state(service, later) == "scheduled"
