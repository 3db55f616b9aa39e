"""Job control on a real redis-server: every state a job can be in and how it reads, cancel in
each state, unique keys, pauses, results, kept records, waiting for a job and ids by prefix."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from qworker.clock import ManualClock
from qworker.errors import ValidationFailed
from qworker.job_control import AmbiguousJobId, NoSuchJob, NotWaiting, WaitTimedOut
from qworker.models import JobRecord
from qworker.service import QueueService
from qworker.worker import Worker
from tests.jobtypes import probe, read_events
from tests.redis.conftest import JOB_MODULES, MakeSettings

RunBurst = Any


async def record(service: QueueService, job_id: str) -> JobRecord:
    job = await service.get_job(job_id)
    assert job is not None, f"job {job_id} has no record"
    return job


async def claim_one(service: QueueService, clock: ManualClock) -> tuple[str, str]:
    """Claim the next job as a worker would; returns (job id, owner token)."""
    reply = await service.run(service.scripts.claim("w", clock.now_ms(), 600_000, 1, "t"))
    (job,) = reply.jobs
    return job.id, f"w:{job.claims}"


# -- states --------------------------------------------------------------------------------


async def test_every_state_is_kept_by_the_step_that_moves_the_job(
    service: QueueService, run_burst: RunBurst, clock: ManualClock, tmp_path: Path
) -> None:
    log = tmp_path / "probe.log"
    first = await service.add_job(probe(log), priority=2)
    second = await service.add_job(probe(log), priority=2)
    later = await service.add_job(probe(log), delay_s=60)

    queued = await record(service, second)
    assert (queued.state, queued.state_at_ms) == ("queued", clock.now_ms())
    assert queued.waiting is not None and queued.waiting.reason == "place 2 in priority 2"
    scheduled = await record(service, later)
    assert scheduled.state == "scheduled"
    assert scheduled.waiting is not None
    assert scheduled.waiting.until_ms == clock.now_ms() + 60_000

    clock.advance(1)
    job_id, owner = await claim_one(service, clock)
    assert job_id == first
    running = await record(service, first)
    assert (running.state, running.started_at_ms, running.worker_id) == (
        "running",
        clock.now_ms(),
        "w",
    )
    park = service.scripts.defer(
        service.keys.parked, first, owner, clock.now_ms() + 5000, None, "", clock.now_ms(),
        state="parked", keep_ms=60_000, rate_key="probe",
    )  # fmt: skip
    assert await service.run(park) == 1
    parked = await record(service, first)
    assert parked.state == "parked"
    assert parked.waiting is not None and parked.waiting.reason == "rate limit 'probe' closed"
    assert parked.waiting.until_ms == clock.now_ms() + 5000

    failing = await service.add_job(probe(log, outcome="fail"), priority=1)
    await service.run_job_now(first)  # parked -> front of priority 2
    await run_burst()
    assert (await record(service, failing)).state == "retry"
    done = await record(service, first)
    assert (done.state, done.finished_at_ms, done.attempts) == ("done", clock.now_ms(), 1)
    assert done.waiting is None

    doomed = await service.add_job(probe(log, outcome="permanent"))
    await run_burst()
    assert (await record(service, doomed)).state == "dead"


async def test_a_record_without_a_state_is_read_from_where_it_is(
    service: QueueService, tmp_path: Path
) -> None:
    """Jobs enqueued by an earlier qworker have no state field: their place tells it."""
    job_id = await service.add_job(probe(tmp_path / "p.log"), delay_s=30)
    await service.redis.hdel(service.keys.job(job_id), "state", "state_at_ms")
    assert (await record(service, job_id)).state == "scheduled"


# -- cancel --------------------------------------------------------------------------------


async def test_cancel_removes_a_waiting_job_in_any_state(
    service: QueueService, clock: ManualClock, tmp_path: Path
) -> None:
    log = tmp_path / "probe.log"
    k = service.keys
    queued = await service.add_job(probe(log), priority=3)
    scheduled = await service.add_job(probe(log), delay_s=60)
    await service.add_job(probe(log), priority=1)
    retrying, owner = await claim_one(service, clock)
    retry = service.scripts.defer(
        k.retry, retrying, owner, clock.now_ms() + 60_000, 1, "", clock.now_ms(),
        state="retry", keep_ms=60_000,
    )  # fmt: skip
    assert await service.run(retry) == 1

    for job_id, was, where in (
        (queued, "queued", k.priority(3)),
        (scheduled, "scheduled", k.scheduled),
        (retrying, "retry", k.retry),
    ):
        result = await service.cancel_job(job_id)
        assert (result.outcome, result.state, result.previous_state) == (
            "canceled",
            "canceled",
            was,
        )
        canceled = await record(service, job_id)
        assert (canceled.state, canceled.finished_at_ms) == ("canceled", clock.now_ms())
        members = (
            await service.redis.lrange(where, 0, -1)
            if where == k.priority(3)
            else await service.redis.zrange(where, 0, -1)
        )
        assert job_id not in members
    stats = await service.get_queue_stats()
    assert (stats.canceled, stats.total_jobs, stats.retry, stats.scheduled) == (3, 0, 0, 0)
    page = await service.list_jobs("canceled")
    assert [job.id for job in page.jobs] == [retrying, scheduled, queued]  # newest first

    again = await service.cancel_job(queued)
    assert (again.outcome, again.state) == ("finished", "canceled")
    with pytest.raises(NoSuchJob):
        await service.cancel_job("f" * 32)


async def test_cancel_leaves_a_finished_job_as_it_is(
    service: QueueService, run_burst: RunBurst, tmp_path: Path
) -> None:
    log = tmp_path / "probe.log"
    done = await service.add_job(probe(log))
    dead = await service.add_job(probe(log, outcome="permanent"))
    await run_burst()
    assert (await service.cancel_job(done)).model_dump() == {
        "job_id": done,
        "outcome": "finished",
        "state": "done",
        "previous_state": "done",
    }
    assert (await service.cancel_job(dead)).state == "dead"
    assert (await service.get_queue_stats()).dead_letter == 1


@pytest.fixture
async def live_service(make_settings: MakeSettings) -> Any:
    """A service on the system clock, for a worker that runs in real time."""
    async with QueueService(settings=make_settings()) as service:
        yield service


async def start_worker(service: QueueService, **options: Any) -> tuple[Worker, asyncio.Task[None]]:
    worker = Worker(service, settings=service.settings, job_modules=JOB_MODULES, **options)
    return worker, asyncio.ensure_future(worker.run())


async def wait_until(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_running_job_is_cancelled_by_its_worker_at_its_next_look(
    live_service: QueueService, tmp_path: Path
) -> None:
    service, log = live_service, tmp_path / "probe.log"
    job_id = await service.add_job(probe(log, sleep_s=30))
    worker, task = await start_worker(service)
    try:
        await wait_until(lambda: _state_is(service, job_id, "running"))
        await wait_until(lambda: _started(log, job_id))
        asked = time.monotonic()
        result = await service.cancel_job(job_id, wait_s=5)
        took_s = time.monotonic() - asked
        assert (result.outcome, result.state, result.previous_state) == (
            "requested",
            "canceled",
            "running",
        )
        # The watchdog looks once a second; the rest is slack for a loaded machine (a worker
        # that waited for the job's 30 s, or looked every few seconds, still fails).
        assert took_s < 3.0, f"cancel took {took_s:.2f}s"
        canceled = await record(service, job_id)
        assert canceled.error is not None and canceled.error.type == "Canceled"
        assert "while it ran" in canceled.error.message
        assert [e.kind for e in read_events(log)] == ["start", "cancelled"]  # it could clean up
        stats = await service.get_queue_stats()
        assert (stats.canceled, stats.retry, stats.dead_letter, stats.in_flight) == (1, 0, 0, 0)
        assert not await service.redis.exists(service.keys.cancel_requests)
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 10)
    assert worker.executor.outcomes["canceled"] == 1


async def test_a_prefetched_job_is_canceled_before_it_starts(
    live_service: QueueService, tmp_path: Path
) -> None:
    service, log = live_service, tmp_path / "probe.log"
    busy = await service.add_job(probe(log, sleep_s=30))
    behind = await service.add_job(probe(log))
    worker, task = await start_worker(service, concurrency=1, prefetch=1)
    try:
        await wait_until(lambda: _state_is(service, behind, "running"))  # claimed ahead
        result = await service.cancel_job(behind, wait_s=5)
        assert (result.outcome, result.state) == ("requested", "canceled")
        assert behind not in {e.job_id for e in read_events(log)}  # never started
        assert (await record(service, busy)).state == "running"
    finally:
        worker.request_stop(immediate=True)
        await asyncio.wait_for(task, 10)


async def test_a_cancel_waits_for_a_shield_and_a_finished_job_keeps_its_outcome(
    live_service: QueueService, tmp_path: Path
) -> None:
    """A job inside cancel_shield (the tweet job around its post) is not interrupted: if it
    finishes, it is done, and the record shows the cancel came too late."""
    service, log = live_service, tmp_path / "probe.log"
    job_id = await service.add_job(probe(log, sleep_s=1.5, shielded=True, result="posted"))
    worker, task = await start_worker(service)
    try:
        await wait_until(lambda: _started(log, job_id))
        result = await service.cancel_job(job_id, wait_s=10)
        assert (result.outcome, result.state) == ("requested", "done")
        done = await record(service, job_id)
        assert (done.result, done.cancel_requested_at_ms is not None) == ("posted", True)
        assert [e.kind for e in read_events(log)] == ["start", "done"]
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 10)


async def _state_is(service: QueueService, job_id: str, state: str) -> bool:
    job = await service.get_job(job_id)
    return job is not None and job.state == state


async def _started(log: Path, job_id: str) -> bool:
    return any(e.job_id == job_id for e in read_events(log, "start"))


async def test_a_canceled_running_job_whose_worker_died_is_not_run_again(
    service: QueueService, clock: ManualClock, run_burst: RunBurst, tmp_path: Path
) -> None:
    log = tmp_path / "probe.log"
    job_id = await service.add_job(probe(log))
    await claim_one(service, clock)  # a worker that then dies
    assert (await service.cancel_job(job_id)).outcome == "requested"
    clock.advance(601)  # its lease lapses
    await run_burst(recovery_grace_s=0)
    assert (await record(service, job_id)).state == "canceled"
    assert read_events(log) == []


# -- unique jobs -----------------------------------------------------------------------------


async def test_eight_concurrent_producers_queue_a_unique_job_once(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    settings = make_settings()
    services = [QueueService(settings=settings) for _ in range(8)]
    try:
        data = probe(tmp_path / "p.log")

        async def produce(service: QueueService) -> list[Any]:
            return [
                await service.enqueue_job(data, unique_key="digest:2026-12-06") for _ in range(25)
            ]

        results = [r for batch in await asyncio.gather(*map(produce, services)) for r in batch]
        created = [r for r in results if r.created]
        assert len(created) == 1
        holder = created[0].job_id
        assert all(r.job_id == holder and r.duplicate for r in results if not r.created)
        stats = await services[0].get_queue_stats()
        assert stats.total_jobs == 1
    finally:
        for service in services:
            await service.close()


async def test_a_unique_key_is_released_when_the_job_passes_its_point(
    service: QueueService, run_burst: RunBurst, clock: ManualClock, tmp_path: Path
) -> None:
    log = tmp_path / "probe.log"
    first = await service.enqueue_job(probe(log), unique_key="a")
    assert (await service.enqueue_job(probe(log), unique_key="a")).job_id == first.job_id
    await run_burst()
    again = await service.enqueue_job(probe(log), unique_key="a")  # finished: free again
    assert again.created and again.job_id != first.job_id

    started = await service.enqueue_job(probe(log), unique_key="b", unique_until="started")
    await claim_one(service, clock)  # priority 3: 'again' was queued first
    await claim_one(service, clock)
    assert (await service.enqueue_job(probe(log), unique_key="b")).created
    assert started.created

    timed = await service.enqueue_job(probe(log), unique_key="c", unique_for_s=0.2)
    assert (await service.enqueue_job(probe(log), unique_key="c")).duplicate
    await asyncio.sleep(0.3)
    fresh = await service.enqueue_job(probe(log), unique_key="c")
    assert fresh.created and fresh.job_id != timed.job_id

    canceled = await service.enqueue_job(probe(log), unique_key="d", delay_s=60)
    await service.cancel_job(canceled.job_id)
    assert (await service.enqueue_job(probe(log), unique_key="d")).created


async def test_bad_unique_options_are_refused_before_anything_is_queued(
    service: QueueService, tmp_path: Path
) -> None:
    data = probe(tmp_path / "p.log")
    for options, message in (
        ({"unique_key": ""}, "1 to 200 characters"),
        ({"unique_key": "x" * 201}, "1 to 200 characters"),
        ({"unique_key": "a\nb"}, "control characters"),
        ({"unique_key": "k", "unique_until": "never"}, "started or finished"),
        ({"unique_key": "k", "unique_for_s": -1}, "positive time"),
        ({"unique_for_s": 5}, "needs a unique key"),
    ):
        with pytest.raises(ValidationFailed, match=message):
            await service.enqueue_job(data, **options)
    assert (await service.get_queue_stats()).total_jobs == 0


# -- pauses ----------------------------------------------------------------------------------


async def test_a_paused_priority_is_skipped_until_resumed(
    service: QueueService, run_burst: RunBurst, tmp_path: Path
) -> None:
    log = tmp_path / "probe.log"
    held = await service.add_job(probe(log), priority=1)
    other = await service.add_job(probe(log), priority=2)
    pause = await service.pause(priority=1)
    assert (pause.priority, pause.until_ms) == (1, None)
    await run_burst()
    assert (await record(service, held)).state == "queued"
    assert (await record(service, other)).state == "done"
    reason = (await record(service, held)).waiting
    assert reason is not None and reason.reason.startswith("priority 1 is paused")
    assert [p.target for p in (await service.get_queue_stats()).pauses] == ["priority 1"]

    assert await service.resume(priority=1) is True
    assert await service.resume(priority=1) is False
    await run_burst()
    assert (await record(service, held)).state == "done"


async def test_a_paused_type_is_held_aside_then_put_back_in_order(
    service: QueueService, run_burst: RunBurst, clock: ManualClock, tmp_path: Path
) -> None:
    log = tmp_path / "probe.log"
    ids = [await service.add_job(probe(log, tag=str(n)), priority=2) for n in range(3)]
    await service.pause(job_type="probe", for_s=3600)
    await run_burst()
    for job_id in ids:
        paused = await record(service, job_id)
        assert paused.state == "paused"
        assert paused.waiting is not None
        assert paused.waiting.until_ms == clock.now_ms() + 3_600_000
    [pause] = await service.list_pauses()
    assert (pause.job_type, pause.held_jobs) == ("probe", 3)
    assert read_events(log) == []

    clock.advance(3601)  # the pause ends by itself; the next worker puts the jobs back
    await run_burst()
    assert [e.tag for e in read_events(log, "start")] == ["0", "1", "2"]
    assert await service.list_pauses() == []


async def test_a_held_job_can_be_canceled(
    service: QueueService, run_burst: RunBurst, tmp_path: Path
) -> None:
    job_id = await service.add_job(probe(tmp_path / "p.log"))
    await service.pause(job_type="probe")
    await run_burst()
    assert (await service.cancel_job(job_id)).previous_state == "paused"
    assert (await service.list_pauses())[0].held_jobs == 0


async def test_bad_pauses_are_refused(service: QueueService) -> None:
    for options, message in (
        ({}, "a priority or a job type"),
        ({"priority": 1, "job_type": "x"}, "a priority or a job type"),
        ({"priority": 7}, "priority must be 1"),
        ({"job_type": "x", "for_s": 0}, "positive time"),
        ({"job_type": "x", "for_s": float("nan")}, "positive time"),
    ):
        with pytest.raises(ValidationFailed, match=message):
            await service.pause(**options)
    assert await service.list_pauses() == []


# -- results and kept records ------------------------------------------------------------------


async def test_results_round_trip_and_bad_results_fail_the_attempt(
    service: QueueService, run_burst: RunBurst, tmp_path: Path
) -> None:
    log = tmp_path / "probe.log"
    value = {"tweet_id": "1", "counts": [1, 2.5, None], "text": "héllo"}
    with_result = await service.add_job(probe(log, result=value))
    plain = await service.add_job(probe(log))
    zero = await service.add_job(probe(log, result=0))
    bad = await service.add_job(probe(log, outcome="unserialisable"))
    huge = await service.add_job(probe(log, result_length=70_000))
    await run_burst()
    assert (await record(service, with_result)).result == value
    assert (await record(service, plain)).result_json is None
    assert (await record(service, zero)).result == 0
    for job_id, message in ((bad, "not JSON-serialisable"), (huge, "QWORKER_MAX_RESULT_BYTES")):
        failed = await record(service, job_id)
        assert failed.state == "retry"
        assert failed.error is not None and failed.error.type == "ResultNotStored"
        assert message in failed.error.message


async def test_finished_records_expire_after_keep_finished_s(
    make_settings: MakeSettings, clock: ManualClock, tmp_path: Path
) -> None:
    log = tmp_path / "probe.log"
    for keep_s in (0.5, 0):
        settings = make_settings(keep_finished_s=keep_s)
        async with QueueService(settings=settings, clock=clock) as service:
            job_id = await service.add_job(probe(log))
            worker = Worker(service, settings=settings, burst=True, clock=clock,
                            job_modules=JOB_MODULES)  # fmt: skip
            await asyncio.wait_for(worker.run(), 30)
            if keep_s:
                assert (await record(service, job_id)).state == "done"
                assert 0 < await service.redis.pttl(service.keys.job(job_id)) <= 500
                await asyncio.sleep(0.6)
            assert await service.get_job(job_id) is None


# -- waiting -----------------------------------------------------------------------------------


async def test_wait_for_job_blocks_until_it_ends(
    live_service: QueueService, tmp_path: Path
) -> None:
    service, log = live_service, tmp_path / "probe.log"
    job_id = await service.add_job(probe(log, sleep_s=0.3, result=[1]))
    worker, task = await start_worker(service)
    try:
        finished = await service.wait_for_job(job_id, timeout_s=10)
        assert (finished.state, finished.result) == ("done", [1])
        slow = await service.add_job(probe(log, sleep_s=30))
        with pytest.raises(WaitTimedOut, match=r"is still (queued|running) after 0.5s"):
            await service.wait_for_job(slow, timeout_s=0.5)
        await service.cancel_job(slow)
        assert (await service.wait_for_job(slow, timeout_s=5)).state == "canceled"
    finally:
        worker.request_stop(immediate=True)
        await asyncio.wait_for(task, 10)
    with pytest.raises(NoSuchJob):
        await service.wait_for_job("0" * 32, timeout_s=1)


async def test_wait_for_job_reports_the_end_even_when_nothing_is_kept(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    settings = make_settings(keep_finished_s=0)
    async with QueueService(settings=settings) as service:
        job_id = await service.add_job(probe(tmp_path / "p.log", sleep_s=0.2))
        waiting = asyncio.ensure_future(service.wait_for_job(job_id, timeout_s=10))
        worker, task = await start_worker(service)
        try:
            assert (await waiting).state == "done"
            assert await service.get_job(job_id) is None
        finally:
            worker.request_stop()
            await asyncio.wait_for(task, 10)


# -- ids and lists -----------------------------------------------------------------------------


async def test_a_unique_prefix_of_six_characters_stands_for_the_id(
    service: QueueService, tmp_path: Path
) -> None:
    data = probe(tmp_path / "p.log")
    await service.add_job(data, job_id="abcdef-one")
    await service.add_job(data, job_id="abcdef-two")
    await service.add_job(data, job_id="zyxwvu-only")
    assert await service.resolve_job_id("zyxwvu") == "zyxwvu-only"
    assert await service.resolve_job_id("abcdef-one") == "abcdef-one"
    assert (await service.find_job("abcdef-t")).id == "abcdef-two"
    with pytest.raises(AmbiguousJobId, match=r"matches 2 jobs \(abcdef-one, abcdef-two\)"):
        await service.resolve_job_id("abcdef")
    with pytest.raises(NoSuchJob, match="at least 6 characters"):
        await service.resolve_job_id("zyx")
    with pytest.raises(NoSuchJob):
        await service.resolve_job_id("nothing-like-it")
    with pytest.raises(ValidationFailed, match="not a job id"):
        await service.resolve_job_id("a b")
    with pytest.raises(ValidationFailed, match="not a job id"):
        await service.resolve_job_id("abc*")


async def test_jobs_list_pages_through_a_state_with_a_cursor(
    service: QueueService, tmp_path: Path
) -> None:
    log = tmp_path / "probe.log"
    low = [await service.add_job(probe(log), priority=4) for _ in range(3)]
    urgent = [await service.add_job(probe(log), priority=1) for _ in range(2)]
    seen: list[str] = []
    cursor = None
    while True:
        page = await service.list_jobs("queued", limit=2, cursor=cursor)
        seen += [job.id for job in page.jobs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == urgent + low  # next first: priority 1 first, oldest first
    only_low = await service.list_jobs("queued", priority=4, limit=50)
    assert [job.id for job in only_low.jobs] == low
    assert (await service.list_jobs("queued", job_type="other")).jobs == []
    with pytest.raises(ValidationFailed, match="state must be one of"):
        await service.list_jobs("finished")
    with pytest.raises(ValidationFailed, match="not a cursor"):
        await service.list_jobs("queued", cursor="nonsense")
    with pytest.raises(ValidationFailed, match="limit must be 1 to 1000"):
        await service.list_jobs("queued", limit=0)


async def test_run_now_moves_a_waiting_job_to_the_front(
    service: QueueService, clock: ManualClock, tmp_path: Path
) -> None:
    log = tmp_path / "probe.log"
    await service.add_job(probe(log), priority=2)
    later = await service.add_job(probe(log), priority=2, delay_s=3600)
    assert await service.run_job_now(later) == "scheduled"
    assert (await claim_one(service, clock))[0] == later
    with pytest.raises(NotWaiting, match="is running, not waiting"):
        await service.run_job_now(later)


def test_settings_refuse_a_negative_keep(make_settings: MakeSettings) -> None:
    with pytest.raises(ValueError, match="keep_finished_s"):
        make_settings(keep_finished_s=-1)
