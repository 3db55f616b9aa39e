"""A cancel and the tweet job, through a real worker on a real redis-server, real tweepy, and
only X's HTTP mocked: a tweet that was posted is reported posted, never canceled."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
import responses
from requests import PreparedRequest

from qworker.job_control import NotWaiting
from qworker.running import RunningJob
from qworker.service import QueueService
from qworker.worker import Worker
from tests.jobs.support import TWEETS_URL, make_settings

TWEET_ID = "1866000000000000001"
# X answers the post only once the worker has passed the cancel on to the job (bounded: a
# worker that never does still gets its answer, and the test fails on what follows).
CANCEL_DELIVERED_WITHIN_S = 30.0


@pytest.fixture
async def service(redis_url: str) -> AsyncIterator[QueueService]:
    settings = make_settings(redis_url=redis_url, namespace=f"t{uuid4().hex[:12]}")
    async with QueueService(settings=settings) as queue_service:
        yield queue_service


async def wait_for(event: threading.Event, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not event.is_set():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_cancel_during_the_post_keeps_the_posted_outcome_and_says_so(
    service: QueueService, api: responses.RequestsMock, logs: pytest.LogCaptureFixture
) -> None:
    posting, cancel_delivered = threading.Event(), threading.Event()

    def slow_post(_request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        posting.set()
        cancel_delivered.wait(CANCEL_DELIVERED_WITHIN_S)
        return 201, {}, f'{{"data": {{"id": "{TWEET_ID}", "text": "Launch day"}}}}'

    api.add_callback(responses.POST, TWEETS_URL, callback=slow_post)
    job_id = await service.add_job({"job_type": "tweet", "content": "Launch day"})
    worker = Worker(service, settings=service.settings)
    deliver = worker.watchdog.cancel

    def deliver_and_tell(running: RunningJob) -> None:
        deliver(running)
        cancel_delivered.set()

    worker.watchdog.cancel = deliver_and_tell
    running = asyncio.ensure_future(worker.run())
    try:
        await wait_for(posting)
        result = await service.cancel_job(job_id, wait_s=10)
    finally:
        worker.request_stop()
        await asyncio.wait_for(running, 10)

    assert (result.outcome, result.previous_state, result.state) == ("requested", "running", "done")
    job = await service.get_job(job_id)
    assert job is not None
    assert (job.state, job.result, job.checkpoints["tweet_id"]) == (
        "done",
        {"tweet_id": TWEET_ID},
        TWEET_ID,
    )
    assert job.cancel_requested_at_ms is not None
    assert (await service.get_queue_stats()).canceled == 0
    outcome_lines = [r.getMessage() for r in logs.records if f"job {job_id}" in r.getMessage()]
    assert any(
        "a cancel arrived while it could not be interrupted" in line for line in outcome_lines
    )


async def test_a_tweet_canceled_before_its_post_is_never_posted(
    service: QueueService, api: responses.RequestsMock
) -> None:
    job_id = await service.add_job({"job_type": "tweet", "content": "Never mind"}, delay_s=60)
    result = await service.cancel_job(job_id)
    assert (result.outcome, result.state) == ("canceled", "canceled")
    with pytest.raises(NotWaiting, match="is canceled"):
        await service.run_job_now(job_id)  # a canceled job stays canceled
    worker = Worker(service, settings=service.settings, burst=True)
    await asyncio.wait_for(worker.run(), 10)
    assert len(api.calls) == 0  # no request reached X (the strict mock would also fail)
    record = await service.get_job(job_id)
    assert record is not None and record.state == "canceled"
