"""A claim whose reply is lost (the connection drops after Redis ran it) took jobs this worker
never heard of. Once Redis answers again the worker hands them back at once: they run without
waiting out a lease, and without an attempt or a hand-back charged for a run that never
happened. What it holds or settled, and other workers' jobs, stay as they are."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from qworker.clock import ManualClock
from qworker.scripts import ClaimReply
from qworker.service import QueueService
from qworker.worker import Worker
from tests.jobtypes import probe, read_events
from tests.redis.conftest import JOB_MODULES, MakeSettings, MakeWorker

LOST = "Connection closed by server (the claim ran; its reply was lost)."
# The lease of the workers made by make_worker (the default): a lost job would wait this long.
LEASE_MS = 60_000


def lose_the_first_claim_with_jobs(
    runner: Any, method: str, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Make ``runner.<method>`` run its calls, then lose the reply of the first claim that took
    jobs. Returns the names of the calls whose reply was lost."""
    real = getattr(runner, method)
    lost: list[str] = []

    async def then_lost(*args: Any, **kwargs: Any) -> Any:
        reply = await real(*args, **kwargs)
        calls = args[-1] if isinstance(args[-1], list) else [args[-1]]
        claimed = reply[-1] if isinstance(reply, list) else reply
        if isinstance(claimed, ClaimReply) and claimed.jobs and not lost:
            lost.extend(call.script.name for call in calls)
            raise redis.ConnectionError(LOST)
        return reply

    monkeypatch.setattr(runner, method, then_lost)
    return lost


async def test_a_burst_workers_lost_claim_is_handed_back_and_run_uncharged(
    service: QueueService,
    make_worker: MakeWorker,
    clock: ManualClock,
    probe_log: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = await service.add_job(probe(probe_log))
    # Another worker's job, its lease ending when the lost claim's does: not this worker's.
    others = service.keys.job("others")
    await service.redis.hset(others, mapping={"owner": "another-worker:1", "state": "running"})
    await service.redis.zadd(service.keys.inflight, {"others": clock.now_ms() + LEASE_MS})
    lost = lose_the_first_claim_with_jobs(service.runner, "run_each", monkeypatch)

    await asyncio.wait_for(make_worker().run(), 30)  # without the hand-back: a 60 s lease

    assert lost == ["claim"]
    assert [(e.job_id, e.attempt) for e in read_events(probe_log, "start")] == [(job_id, 1)]
    record = await service.get_job(job_id)
    assert record is not None and (record.state, record.attempts) == ("done", 1)
    assert await service.redis.hget(service.keys.job(job_id), "handbacks") is None
    assert await service.redis.zrange(service.keys.inflight, 0, -1) == ["others"]
    assert await service.redis.hget(others, "owner") == "another-worker:1"


async def test_a_connection_lost_again_during_the_hand_back_is_survived(
    service: QueueService,
    make_worker: MakeWorker,
    probe_log: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = await service.add_job(probe(probe_log))
    lose_the_first_claim_with_jobs(service.runner, "run_each", monkeypatch)
    real_run, failed = service.runner.run, []

    async def hand_back_lost_once(call: Any) -> Any:
        if call.script.name == "hand_back" and not failed:
            failed.append(call)
            raise redis.ConnectionError(LOST)
        return await real_run(call)

    monkeypatch.setattr(service.runner, "run", hand_back_lost_once)
    await asyncio.wait_for(make_worker().run(), 30)

    assert failed
    assert [(e.job_id, e.attempt) for e in read_events(probe_log, "start")] == [(job_id, 1)]


async def test_a_settlement_lost_with_the_claim_keeps_its_job_from_the_hand_back(
    service: QueueService,
    make_worker: MakeWorker,
    probe_log: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lost round trip carried the settlement of a finished job too, and only the claim
    reached Redis: the finished job is still in flight under this worker, yet it is known here
    (its settlement goes again), so it is not handed back to run a second time."""
    first = await service.add_job(probe(probe_log, tag="first"))
    real = service.runner.run_each
    lost: list[list[str]] = []

    async def only_the_claim_arrives(calls: list[Any]) -> Any:
        names = [call.script.name for call in calls]
        if names == ["complete", "claim"] and not lost:
            lost.append(names)
            await service.add_job(probe(probe_log, tag="second"))
            [claimed] = await real(calls[1:])
            assert claimed.jobs  # the reply that is lost took the second job
            raise redis.ConnectionError(LOST)
        return await real(calls)

    monkeypatch.setattr(service.runner, "run_each", only_the_claim_arrives)
    await asyncio.wait_for(make_worker(concurrency=1, prefetch=0).run(), 30)

    assert lost == [["complete", "claim"]]
    starts = read_events(probe_log, "start")
    assert sorted((e.tag, e.attempt) for e in starts) == [("first", 1), ("second", 1)]
    record = await service.get_job(first)
    assert record is not None and record.state == "done"
    assert await service.redis.zcard(service.keys.inflight) == 0


async def test_a_waiting_workers_lost_claim_is_handed_back_and_run_uncharged(
    make_settings: MakeSettings, probe_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with QueueService(settings=make_settings()) as service:
        lost = lose_the_first_claim_with_jobs(service.runner, "block_then_run", monkeypatch)
        blocking = service.runner.block_then_run
        waits: list[float] = []

        async def counted(*args: Any) -> Any:
            waits.append(time.monotonic())
            return await blocking(*args)

        monkeypatch.setattr(service.runner, "block_then_run", counted)
        worker = Worker(service, settings=service.settings, job_modules=JOB_MODULES)
        task = asyncio.create_task(worker.run())
        try:
            await wait_until(lambda: asyncio.sleep(0, bool(waits)))  # the worker waits for work
            job_id = await service.add_job(probe(probe_log))

            async def done() -> bool:
                record = await service.get_job(job_id)
                return record is not None and record.state == "done"

            await wait_until(done)
        finally:
            worker.request_stop()
            await asyncio.wait_for(task, 10)
        assert lost == ["claim"]
        assert [e.attempt for e in read_events(probe_log, "start")] == [1]
        record = await service.get_job(job_id)
        assert record is not None and record.attempts == 1  # the one run: none charged before
        assert await service.redis.hget(service.keys.job(job_id), "handbacks") is None


async def wait_until(check: Callable[[], Awaitable[Any]], timeout_s: float = 15.0) -> None:
    """Until ``check`` holds; well within the 60 s lease a lost job would otherwise wait."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "timed out, as a lost job waiting out its lease would"
        await asyncio.sleep(0.05)
