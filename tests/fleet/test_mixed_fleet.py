"""A mixed fleet: one worker serves only tweets (with credentials, against a fake X), two serve
only plugin types (with no X credentials at all). Every job is done once, by a worker that
serves its type; none is dead, lost or tried twice; jobs queued before any worker was
restricted are sorted into their lanes by the first claims."""

from __future__ import annotations

import asyncio
from collections import Counter

from qworker.jobs.base import BaseJobParams
from qworker.jobs.tweet import TweetJobParams
from qworker.service import QueueService
from qworker.worker import Worker
from tests.fleet.conftest import (
    DRAIN_TIMEOUT_S,
    FAKE_CREDENTIALS,
    MakeFleetWorker,
    stop_all,
    until,
)
from tests.fleet.jobtypes import RAN, MailParams, ReportParams

JOBS = 300
SERVES = {"tweeter": {"tweet"}, "reports": {"report", "mail"}, "mailer": {"mail"}}


def params_of(index: int) -> BaseJobParams:
    kind = index % 3
    if kind == 0:
        return TweetJobParams(content=f"fleet tweet {index}")
    return ReportParams(n=index) if kind == 1 else MailParams(n=index)


async def enqueue(service: QueueService, indexes: range) -> dict[str, str]:
    """Job id -> type, at every priority."""
    ids = {}
    for index in indexes:
        params = params_of(index)
        ids[await service.add_job(params, priority=1 + index % 4)] = params.job_type
    return ids


def start(
    make: MakeFleetWorker,
) -> tuple[list[Worker], list[asyncio.Task[None]]]:
    workers = [
        make("tweeter", ["tweet"], **FAKE_CREDENTIALS),
        make("reports", ["report", "mail"]),
        make("mailer", ["mail"]),
    ]
    return workers, [asyncio.create_task(worker.run()) for worker in workers]


async def test_every_job_is_done_once_by_a_worker_that_serves_its_type(
    service: QueueService, make_fleet_worker: MakeFleetWorker, x_api: list[str]
) -> None:
    ids = await enqueue(service, range(JOBS // 2))  # before any worker: in the shared lists
    workers, tasks = start(make_fleet_worker)
    try:
        ids |= await enqueue(service, range(JOBS // 2, JOBS))

        async def all_done() -> bool:
            return (await service.get_queue_stats()).total_processed >= JOBS

        await until(all_done, f"{JOBS} jobs done", DRAIN_TIMEOUT_S)
    finally:
        await stop_all(workers, tasks)

    stats = await service.get_queue_stats()
    assert (stats.total_processed, stats.total_failed, stats.total_dead) == (JOBS, 0, 0)
    assert (stats.total_jobs, stats.in_flight, stats.dead_letter, stats.retry) == (0, 0, 0, 0)
    assert stats.waiting_without_worker == {}
    records = [await service.get_job(job_id) for job_id in ids]
    assert all(r is not None and r.state == "done" and r.attempts == 1 for r in records), [
        (r.id, r.state, r.attempts, r.error) for r in records if r is not None
    ]
    # Plugin jobs: each ran once, on a worker serving its type.
    ran_by_id = Counter(job_id for job_id, _type, _name in RAN)
    plugin_ids = {job_id for job_id, job_type in ids.items() if job_type != "tweet"}
    assert set(ran_by_id) == plugin_ids and set(ran_by_id.values()) == {1}
    assert all(job_type in SERVES[name] for _id, job_type, name in RAN)
    # Tweets: each posted once, by the only worker with credentials (one without them would
    # have failed the attempt: none failed).
    assert sorted(x_api) == sorted(params_of(i).content for i in range(0, JOBS, 3))  # type: ignore[attr-defined]
    # Which lanes open depends on which worker meets which job first (a worker serving the
    # type takes it, one that does not moves it to a lane), so only this much is certain: the
    # first claim of all meets a mixed list (tweet, report, mail, ... at priority 1) and opens
    # a lane whichever worker makes it. How each lane opens is tested in test_lanes.py.
    lanes = {t for t in await service.redis.hkeys(service.keys.lanes)}
    assert lanes and lanes <= {"tweet", "report", "mail"}, lanes


async def test_a_type_no_live_worker_serves_waits_in_its_lane(
    service: QueueService, make_fleet_worker: MakeFleetWorker
) -> None:
    """Tweets with no tweet worker wait (not dead, not retried, no attempt) while a worker
    serving only reports runs its jobs, and ``stats`` names the type; a tweet worker started
    later takes them."""
    ids = await enqueue(service, range(30))
    reports = make_fleet_worker("reports", ["report", "mail"])
    task = asyncio.create_task(reports.run())
    try:

        async def plugins_done() -> bool:
            return (await service.get_queue_stats()).total_processed >= 20

        await until(plugins_done, "the plugin jobs done", DRAIN_TIMEOUT_S)
        stats = await service.get_queue_stats()
        assert stats.waiting_without_worker == {"tweet": 10}
        assert (stats.total_jobs, stats.total_failed, stats.dead_letter) == (10, 0, 0)
        tweets = [job_id for job_id, job_type in ids.items() if job_type == "tweet"]
        for job_id in tweets:
            record = await service.get_job(job_id)
            assert record is not None and (record.state, record.attempts) == ("queued", 0)
    finally:
        await stop_all([reports], [task])


async def test_worker_record_says_what_it_serves(
    service: QueueService, make_fleet_worker: MakeFleetWorker
) -> None:
    restricted = make_fleet_worker("mailer", ["mail"])
    default = make_fleet_worker("any", None)
    tasks = [asyncio.create_task(w.run()) for w in (restricted, default)]
    try:

        async def both_listed() -> bool:
            return len(await service.list_workers()) == 2

        await until(both_listed, "two workers listed", DRAIN_TIMEOUT_S)
        by_id = {w.id: w for w in await service.list_workers()}
        assert (by_id[restricted.worker_id].serves_all, by_id[restricted.worker_id].job_types) == (
            False,
            ["mail"],
        )
        listed = by_id[default.worker_id]
        assert listed.serves_all and {"mail", "report", "tweet"} <= set(listed.job_types)
    finally:
        await stop_all([restricted, default], tasks)
