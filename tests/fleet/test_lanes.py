"""A laned type's jobs stay in its lane through every step that makes a job ready again
(recovery, retry, cancel, clear), and the operator's views see them (jobs list, job show,
stats). The lane is opened the way a fleet opens it: a worker serving other types meets the
type's jobs in the shared lists."""

from __future__ import annotations

import asyncio

import redis

from qworker.error_records import error_json
from qworker.metrics.queue import read_snapshot
from qworker.service import QueueService
from tests.fleet.conftest import MakeFleetWorker
from tests.fleet.jobtypes import MailParams, ReportParams

BURST_TIMEOUT_S = 60.0


async def open_mail_lane(service: QueueService, make: MakeFleetWorker, mails: int) -> list[str]:
    """Queue ``mails`` mail jobs and a report; a burst worker serving only reports runs the
    report and moves the mails to their lane."""
    ids = [await service.add_job(MailParams(n=i), priority=3) for i in range(mails)]
    await service.add_job(ReportParams(n=0))
    worker = make("reports", ["report"])
    worker.burst = True
    await asyncio.wait_for(worker.run(), BURST_TIMEOUT_S)
    return ids


async def lengths(service: QueueService) -> tuple[int, int]:
    """(jobs in the shared priority-3 list, jobs in the mail lane at priority 3)."""
    k = service.keys
    return await service.redis.llen(k.priority(3)), await service.redis.llen(k.lane("mail", 3))


async def test_the_lane_holds_the_type_and_the_views_see_it(
    service: QueueService, make_fleet_worker: MakeFleetWorker
) -> None:
    ids = await open_mail_lane(service, make_fleet_worker, 3)
    assert await lengths(service) == (0, 3)
    stats = await service.get_queue_stats()
    assert (stats.total_jobs, stats.queues["jobs_priority_3"], stats.lanes) == (3, 3, {"mail": 3})
    assert stats.waiting_without_worker == {"mail": 3}  # the report worker has gone
    with redis.Redis.from_url(service.settings.redis_url, decode_responses=True) as client:
        scraped = read_snapshot(client, service.keys, service.clock.now_ms())
    assert scraped.queues["priority_3"] == 3  # qworker metrics counts the lane too
    page = await service.list_jobs("queued")
    assert [job.id for job in page.jobs] == ids  # oldest first, as enqueued
    shown = await service.find_job(ids[0])
    assert shown.waiting is not None and "in the mail lane" in shown.waiting.reason
    # Enqueue now routes the type to its lane directly.
    await service.add_job(MailParams(n=9), priority=3)
    assert await lengths(service) == (0, 4)
    canceled = await service.cancel_job(ids[1])
    assert canceled.outcome == "canceled"
    assert await lengths(service) == (0, 3)
    assert await service.clear_queue([3]) == 3
    assert await lengths(service) == (0, 0)


async def test_recovery_and_retries_put_a_laned_job_back_in_its_lane(
    service: QueueService, make_fleet_worker: MakeFleetWorker
) -> None:
    (job_id,) = await open_mail_lane(service, make_fleet_worker, 1)
    s = service.scripts
    # A worker serving mail claims it, then dies: recovery takes it back to the lane.
    claim = s.claim("gone", None, 1, 1, "base", serves_all=False, job_types=["mail"])
    claimed = await service.run(claim)
    assert [job.id for job in claimed.jobs] == [job_id]
    await asyncio.sleep(0.01)  # past the 1 ms lease, by Redis's clock
    requeued, buried = await service.run(
        s.recover(None, 10, 3, error_json("LeaseExpired", "gone"), 60_000)
    )
    assert (requeued, buried) == (1, 0)
    assert await lengths(service) == (0, 1)
    # Claimed again and failed: the retry, when due, goes back to the lane too.
    claimed = await service.run(
        s.claim("w2", None, 60_000, 1, "base", serves_all=False, job_types=["mail"])
    )
    owner = f"w2:{claimed.jobs[0].claims}"
    now_ms = service.clock.now_ms()
    call = s.defer(service.keys.retry, job_id, owner, now_ms, 1, error_json("Boom", "once"), now_ms,
                   state="retry", keep_ms=60_000)  # fmt: skip
    assert await service.run(call) == 1
    assert await service.run(s.promote(service.keys.retry, "+inf", 10)) == (1, -1)
    assert await lengths(service) == (0, 1)
    # A worker serving every type it knows reads the lane.
    any_worker = make_fleet_worker("any", None)
    any_worker.burst = True
    await asyncio.wait_for(any_worker.run(), BURST_TIMEOUT_S)
    record = await service.get_job(job_id)
    assert record is not None and record.state == "done"
