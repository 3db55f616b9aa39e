"""An X thread through a real worker, a real redis-server and real tweepy, only X's HTTP
mocked (responses): each post answers the one before; a failing post stops the rest, and
requeuing it finishes the thread in order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import responses
from requests import PreparedRequest

from qworker.errors import ValidationFailed
from qworker.jobs.tweet_thread import paragraphs, thread_flow
from qworker.service import QueueService
from qworker.worker import Worker
from tests.jobs.conftest import _clean_environment, _no_real_x_account  # noqa: F401
from tests.jobs.support import TWEETS_URL, make_settings

FIRST_ID = 1866000000000000100


class FakeX:
    """Answers each post with the next tweet id; the 3rd post's text is refused while
    ``refusing`` is set. Records every post's JSON body."""

    def __init__(self) -> None:
        self.posts: list[dict[str, object]] = []
        self.refusing = True

    def __call__(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body or "{}")
        if self.refusing and body["text"].startswith("3/"):
            answer = {"title": "Forbidden", "detail": "You are not permitted to perform this"}
            return 403, {}, json.dumps(answer)
        self.posts.append(body)
        tweet_id = str(FIRST_ID + len(self.posts))
        return 201, {}, json.dumps({"data": {"id": tweet_id, "text": body["text"]}})


@pytest.fixture
def x_api() -> Iterator[FakeX]:
    fake = FakeX()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, TWEETS_URL, callback=fake)
        yield fake


@pytest.fixture
async def service(redis_url: str) -> AsyncIterator[QueueService]:
    # No posting limits: this test is about order and replies (the rate limits have theirs).
    no_limits = dict.fromkeys(
        ("tweet_max_per_day", "tweet_max_per_hour", "tweet_max_per_15_minutes")
    )
    settings = make_settings(redis_url=redis_url, namespace=f"t{uuid4().hex[:12]}", **no_limits)
    async with QueueService(settings=settings) as queue_service:
        yield queue_service


async def burst(service: QueueService) -> None:
    await asyncio.wait_for(Worker(service, settings=service.settings, burst=True).run(), 30)


def replies(x: FakeX) -> list[tuple[str, object]]:
    """(the post's number, the id it answers) of every post X accepted."""
    found = []
    for post in x.posts:
        reply = post.get("reply")
        answers = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
        found.append((str(post["text"])[:2], answers))
    return found


async def test_a_thread_of_five_posts_with_a_failing_third_then_repaired(
    service: QueueService, x_api: FakeX
) -> None:
    ids = await service.add_flow(thread_flow([f"{n}/ post number {n}" for n in range(1, 6)]))

    await burst(service)

    assert replies(x_api) == [("1/", None), ("2/", str(FIRST_ID + 1))]
    states = [(await service.get_job(j)) for j in ids]
    assert [s.state for s in states if s] == ["done", "done", "dead", "dead", "dead"]
    assert states[3] is not None and states[3].error is not None
    assert states[3].error.message == f"dependency {ids[2]} dead"

    x_api.refusing = False
    await service.requeue_dead([ids[2]])
    await burst(service)

    assert replies(x_api) == [
        ("1/", None),
        ("2/", str(FIRST_ID + 1)),
        ("3/", str(FIRST_ID + 2)),
        ("4/", str(FIRST_ID + 3)),
        ("5/", str(FIRST_ID + 4)),
    ]
    assert [(await service.get_job(j)).state for j in ids] == ["done"] * 5  # type: ignore[union-attr]


def test_a_file_gives_one_post_per_paragraph() -> None:
    assert paragraphs("1/ one\nstill one\n\n  \n2/ two\n") == ["1/ one\nstill one", "2/ two"]


def test_each_post_is_checked_like_a_tweet() -> None:
    with pytest.raises(ValidationFailed, match=r"post 2 of the thread: .*content"):
        thread_flow(["fine", "x" * 400])


def test_the_cli_queues_a_thread_and_refuses_a_bad_post(redis_url: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from qworker.cli import app

    namespace = f"t{uuid4().hex[:12]}"
    env = {"QWORKER_REDIS_URL": redis_url, "QWORKER_NAMESPACE": namespace}
    runner = CliRunner()
    bad = runner.invoke(app, ["enqueue", "thread", "ok", " "], env=env)
    assert bad.exit_code == 2 and "post 2 of the thread" in bad.stderr
    thread_file = tmp_path / "thread.txt"
    thread_file.write_text("1/ first\n\n2/ second\n\n3/ third\n")
    good = runner.invoke(app, ["enqueue", "thread", "--from-file", str(thread_file)], env=env)
    assert good.exit_code == 0, good.stderr
    ids = good.stdout.split()
    assert len(ids) == 3
    tree = runner.invoke(app, ["job", "tree", ids[1], "--json"], env=env)
    assert tree.exit_code == 0, tree.stderr
    graph = json.loads(tree.stdout)
    assert {job["id"]: job["state"] for job in graph["jobs"]} == {
        ids[0]: "queued",
        ids[1]: "waiting",
        ids[2]: "waiting",
    }


def test_in_reply_to_tweet_id_and_reply_to_name_the_same_thing() -> None:
    from qworker.jobs.tweet import TweetJobParams

    assert TweetJobParams(content="hi", in_reply_to_tweet_id=123).in_reply_to_tweet_id == "123"
    with pytest.raises(ValueError, match="not both"):
        TweetJobParams(content="hi", in_reply_to_tweet_id="1", reply_to="2")
    with pytest.raises(ValueError, match="not both"):
        TweetJobParams(content="hi", reply_to="1", reply_to_dependency=True)
    # Stored as before when unused: workers of the previous release read it.
    assert "reply_to_dependency" not in TweetJobParams(content="hi").model_dump()
