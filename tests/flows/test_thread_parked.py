"""A rate-limited post holds only its own thread: when X answers a thread's post with 429 and a
reset time, that post is parked until the reset and the posts after it stay waiting, while a job
of another type still runs. Once the reset has passed the thread finishes in order, each post
answering the one before. A real worker, a real redis-server and real tweepy; only X's HTTP is
mocked (responses), and the clock is moved by hand.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import responses
from requests import PreparedRequest

from qworker.clients import ClientContainer
from qworker.clock import ManualClock, SystemClock
from qworker.connection import async_client
from qworker.jobs.tweet_thread import thread_flow
from qworker.jobs.x_account import CLIENT_NAME as X_ACCOUNT_CLIENT
from qworker.jobs.x_account import XAccount
from qworker.service import QueueService
from qworker.worker import Worker
from tests.flows.jobtypes import ran, step
from tests.jobs.conftest import _clean_environment, _no_real_x_account  # noqa: F401
from tests.jobs.support import TWEETS_URL, make_settings

FIRST_ID = 1866000000000000200
RESET_AFTER_S = 900


class LimitedX:
    """Accepts posts (each answered with the next tweet id) except the 2nd post of the thread,
    refused with 429 and X's rate-limit headers while ``limited`` is set. Records every
    request's JSON body, accepted or not."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.requests: list[dict[str, object]] = []
        self.posts: list[dict[str, object]] = []
        self.limited = True

    def __call__(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body or "{}")
        self.requests.append(body)
        if self.limited and str(body["text"]).startswith("2/"):
            reset_s = self.clock.now_ms() // 1000 + RESET_AFTER_S
            headers = {
                "x-rate-limit-limit": "100",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(reset_s),
            }
            answer = {"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429}
            return 429, headers, json.dumps(answer)
        self.posts.append(body)
        tweet_id = str(FIRST_ID + len(self.posts))
        return 201, {}, json.dumps({"data": {"id": tweet_id, "text": body["text"]}})


@pytest.fixture
def clock() -> ManualClock:
    # Now, as the tweet job reads X's reset times against the wall clock.
    return ManualClock(SystemClock().now_ms())


@pytest.fixture
def x_api(clock: ManualClock) -> Iterator[LimitedX]:
    fake = LimitedX(clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, TWEETS_URL, callback=fake)
        yield fake


@pytest.fixture
async def service(redis_url: str, clock: ManualClock) -> AsyncIterator[QueueService]:
    # No posting limits of our own: the only limit here is the one X reports.
    no_limits = dict.fromkeys(
        ("tweet_max_per_day", "tweet_max_per_hour", "tweet_max_per_15_minutes")
    )
    settings = make_settings(redis_url=redis_url, namespace=f"t{uuid4().hex[:12]}", **no_limits)
    async with QueueService(settings=settings, clock=clock) as queue_service:
        yield queue_service


async def burst(service: QueueService, clock: ManualClock) -> None:
    """A burst worker whose X account state lives in the same redis-server, on ``clock``."""
    settings = service.settings
    clients = ClientContainer(settings)
    redis = async_client(settings, namespace=settings.namespace)
    clients.provide(X_ACCOUNT_CLIENT, XAccount(redis, service.keys, clock))
    worker = Worker(service, settings=settings, burst=True, clock=clock, clients=clients)
    await asyncio.wait_for(worker.run(), 30)


async def states(service: QueueService, job_ids: list[str]) -> list[str]:
    return [job.state if (job := await service.get_job(j)) else "gone" for j in job_ids]


def replies(x: LimitedX) -> list[tuple[str, object]]:
    """(the post's number, the id it answers) of every post X accepted."""
    found = []
    for post in x.posts:
        reply = post.get("reply")
        answers = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
        found.append((str(post["text"])[:2], answers))
    return found


async def test_a_parked_post_holds_only_its_own_thread(
    service: QueueService, x_api: LimitedX, clock: ManualClock, tmp_path: Path
) -> None:
    log = tmp_path / "other.jsonl"
    thread = await service.add_flow(thread_flow([f"{n}/ post number {n}" for n in range(1, 4)]))

    await burst(service, clock)

    assert replies(x_api) == [("1/", None)]
    assert len(x_api.requests) == 2  # the 2nd post was tried once, and refused
    assert await states(service, thread) == ["done", "parked", "waiting"]
    parked = await service.get_job(thread[1])
    assert parked is not None and parked.attempts == 0  # parking is not a failed attempt
    assert parked.waiting is not None and parked.waiting.until_ms is not None
    assert parked.waiting.until_ms >= clock.now_ms() + (RESET_AFTER_S - 1) * 1000
    stats = await service.get_queue_stats()
    assert (stats.parked, stats.waiting, stats.dead_letter) == (1, 1, 0)

    # While the post is parked, a job of another type runs at once.
    other = await service.add_job(step(log, "other", result="ran"))
    await burst(service, clock)

    assert [(line["name"], line["id"]) for line in ran(log)] == [("other", other)]
    assert await states(service, [other]) == ["done"]
    assert await states(service, thread) == ["done", "parked", "waiting"]
    assert len(x_api.requests) == 2  # nothing more reached X: the thread holds

    # Past X's reset the parked post is posted, then the rest, each answering the one before.
    x_api.limited = False
    clock.advance(RESET_AFTER_S + 1)
    await burst(service, clock)

    assert replies(x_api) == [
        ("1/", None),
        ("2/", str(FIRST_ID + 1)),
        ("3/", str(FIRST_ID + 2)),
    ]
    assert await states(service, thread) == ["done", "done", "done"]
    stats = await service.get_queue_stats()
    assert (stats.parked, stats.waiting, stats.total_failed) == (0, 0, 0)
