"""A tweet's own media: stored with the job in Redis, uploaded through X API v2 by real tweepy
(its session and OAuth 1.0a signing, HTTP mocked by ``responses``), checkpointed so a retry does
not upload twice, and deleted with the job however it ends (real redis-server)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
import responses

from qworker.clients import ClientContainer
from qworker.clock import SYSTEM_CLOCK
from qworker.config import Settings
from qworker.errors import (
    ConfigurationError,
    PermanentJobError,
    RetryableJobError,
    ValidationFailed,
)
from qworker.jobs.base import JobContext, JobFactory
from qworker.jobs.tweet import MEDIA_CHECKPOINT, TweepyTwitterClient, TweetJob, TweetJobParams
from qworker.jobs.tweet_media import (
    INITIALIZE_URL,
    METADATA_URL,
    UPLOAD_URL,
    MediaRef,
    enqueue_with_media,
    load_media,
    read_media_files,
)
from qworker.jobs.x_account import CLIENT_NAME, XAccount
from qworker.models import EnqueueResult
from qworker.service import QueueService
from tests.distributed.acl import denials, restricted_user_url
from tests.distributed.servers import admin
from tests.jobs.support import (
    ACCESS_TOKEN_SECRET,
    API_SECRET,
    TWEETS_URL,
    assert_oauth1_signed,
    execute_and_close,
    make_settings,
)
from tests.redis_server import RedisServer

PNG = b"\x89PNG\r\n\x1a\n" + b"png-body" * 10
JPEG = b"\xff\xd8\xff\xe0" + b"jpeg-body" * 10
GIF = b"GIF89a" + b"g" * 100


def created(tweet_id: str = "900") -> dict[str, Any]:
    return {"data": {"id": tweet_id, "text": "t", "edit_history_tweet_ids": [tweet_id]}}


def uploaded(media_id: str, expires_s: int = 86_400) -> dict[str, Any]:
    return {"data": {"id": media_id, "media_key": f"3_{media_id}", "expires_after_secs": expires_s}}


@pytest.fixture
def settings(redis_url: str, namespace: str) -> Settings:
    return make_settings(redis_url=redis_url, namespace=namespace)


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[QueueService]:
    async with QueueService(settings=settings) as queue_service:
        yield queue_service


async def queue_with_media(
    service: QueueService, *files: bytes, alts: list[str] | None = None
) -> str:
    return (await enqueue_tweet(service, None, "with media", *files, alts=alts)).job_id


async def enqueue_tweet(
    service: QueueService,
    job_id: str | None,
    content: str,
    *files: bytes,
    alts: list[str] | None = None,
) -> EnqueueResult:
    refs = [
        MediaRef(**read_ref(data, alt))
        for data, alt in zip(files, alts or [None] * len(files), strict=True)
    ]
    return await enqueue_with_media(
        service,
        TweetJobParams(content=content, media=refs),
        list(files),
        priority=3,
        delay_s=None,
        run_at_ms=None,
        job_id=job_id,
        unique_key=None,
        unique_for_s=None,
        unique_until="finished",
    )


def read_ref(data: bytes, alt: str | None) -> dict[str, Any]:
    import hashlib

    from qworker.jobs.tweet_media import sniff_type

    return {
        "mime": sniff_type(data),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "alt": alt,
    }


async def job_for(
    service: QueueService, job_id: str, context: JobContext | None = None
) -> TweetJob:
    """The job as a worker would build it, its X state on the test's Redis."""
    record = await service.get_job(job_id)
    assert record is not None
    params = JobFactory.parse_payload("tweet", cast(str, record.payload))
    clients = ClientContainer(service.settings)
    account_redis = aioredis.Redis.from_url(service.settings.redis_url, decode_responses=True)
    clients.provide(CLIENT_NAME, XAccount(account_redis, service.keys, SYSTEM_CLOCK))
    job = TweetJob(params, service.settings, clients)
    job.context = context or JobContext(job_id=job_id)
    twitter = clients.get("twitter")
    assert isinstance(twitter, TweepyTwitterClient)
    twitter.sleep = lambda _s: None  # X "processing" never makes a test wait
    return job


async def test_images_are_uploaded_signed_and_posted_with_their_ids_and_alt_text(
    api: responses.RequestsMock, service: QueueService
) -> None:
    job_id = await queue_with_media(service, PNG, JPEG, alts=["a red square", None])
    api.post(UPLOAD_URL, json=uploaded("111"))
    api.post(METADATA_URL, json={"data": {"associated_metadata": {}}})
    api.post(UPLOAD_URL, json=uploaded("222"))
    api.post(TWEETS_URL, json=created(), status=201)

    assert await execute_and_close(await job_for(service, job_id)) == {"tweet_id": "900"}

    first, alt, second, post = (call.request for call in api.calls)
    assert PNG in cast(bytes, first.body) and b"tweet_image" in cast(bytes, first.body)
    assert JPEG in cast(bytes, second.body)
    assert_oauth1_signed(first, API_SECRET, ACCESS_TOKEN_SECRET)
    assert json.loads(cast(bytes, alt.body)) == {
        "id": "111",
        "metadata": {"alt_text": {"text": "a red square"}},
    }
    assert json.loads(cast(bytes, post.body))["media"] == {"media_ids": ["111", "222"]}


async def test_a_gif_goes_by_the_chunked_flow_and_waits_for_processing(
    api: responses.RequestsMock, service: QueueService
) -> None:
    job_id = await queue_with_media(service, GIF)
    api.post(INITIALIZE_URL, json={"data": {"id": "333", "expires_after_secs": 86_400}})
    api.post(f"{UPLOAD_URL}/333/append", status=204)
    pending = {"state": "pending", "check_after_secs": 2}
    api.post(f"{UPLOAD_URL}/333/finalize", json={"data": {"id": "333", "processing_info": pending}})
    done = {"id": "333", "expires_after_secs": 86_400, "processing_info": {"state": "succeeded"}}
    api.get(UPLOAD_URL, json={"data": done})
    api.post(TWEETS_URL, json=created(), status=201)

    await execute_and_close(await job_for(service, job_id))

    init = json.loads(cast(bytes, api.calls[0].request.body))
    assert init == {
        "media_type": "image/gif",
        "total_bytes": len(GIF),
        "media_category": "tweet_gif",
    }
    assert GIF in cast(bytes, api.calls[1].request.body)
    assert "command=STATUS" in cast(str, api.calls[3].request.url)
    assert json.loads(cast(bytes, api.calls[4].request.body))["media"] == {"media_ids": ["333"]}


async def test_a_retry_within_the_ids_validity_does_not_upload_again(
    api: responses.RequestsMock, service: QueueService
) -> None:
    job_id = await queue_with_media(service, PNG)
    api.post(UPLOAD_URL, json=uploaded("111"))
    api.post(TWEETS_URL, json={"detail": "busy"}, status=503)
    context = JobContext(job_id=job_id)
    with pytest.raises(RetryableJobError):
        await execute_and_close(await job_for(service, job_id, context))
    assert json.loads(context.checkpoints[MEDIA_CHECKPOINT])["ids"] == ["111"]

    api.post(TWEETS_URL, json=created(), status=201)
    retry = JobContext(job_id=job_id, attempt=2, checkpoints=context.checkpoints)
    await execute_and_close(await job_for(service, job_id, retry))

    assert [call.request.url for call in api.calls].count(UPLOAD_URL) == 1
    assert json.loads(cast(bytes, api.calls[-1].request.body))["media"] == {"media_ids": ["111"]}


async def test_ids_about_to_expire_are_uploaded_anew(
    api: responses.RequestsMock, service: QueueService
) -> None:
    job_id = await queue_with_media(service, PNG)
    stale = json.dumps({"ids": ["111"], "valid_until_s": 1.0})
    api.post(UPLOAD_URL, json=uploaded("444"))
    api.post(TWEETS_URL, json=created(), status=201)
    context = JobContext(job_id=job_id, checkpoints={MEDIA_CHECKPOINT: stale})
    await execute_and_close(await job_for(service, job_id, context))
    assert json.loads(cast(bytes, api.calls[-1].request.body))["media"] == {"media_ids": ["444"]}


async def test_media_gone_from_redis_fail_the_job_for_good(
    api: responses.RequestsMock, service: QueueService
) -> None:
    job_id = await queue_with_media(service, PNG)
    await service.redis.delete(service.keys.media(job_id))
    with pytest.raises(PermanentJobError, match="no longer stored"):
        await execute_and_close(await job_for(service, job_id))
    assert len(api.calls) == 0


async def test_the_media_are_stored_with_the_job_and_go_when_it_is_canceled(
    service: QueueService,
) -> None:
    job_id = await queue_with_media(service, PNG, JPEG)
    assert await load_media(service.redis, service.keys.media(job_id)) == [PNG, JPEG]
    record = await service.get_job(job_id)
    assert record is not None and PNG.hex() not in cast(str, record.payload)  # not in the payload

    await service.cancel_job(job_id)
    assert not await service.redis.exists(service.keys.media(job_id))


async def test_a_duplicate_stores_no_media(service: QueueService) -> None:
    params = TweetJobParams(content="once", media=[MediaRef(**read_ref(PNG, None))])
    options: dict[str, Any] = {
        "priority": 3,
        "delay_s": None,
        "run_at_ms": None,
        "job_id": None,
        "unique_key": "tweet:once",
        "unique_for_s": None,
        "unique_until": "finished",
    }
    first = await enqueue_with_media(service, params, [PNG], **options)
    second = await enqueue_with_media(service, params, [PNG], **options)
    assert second.duplicate and second.job_id == first.job_id
    assert await service.redis.exists(service.keys.media(first.job_id))
    assert len([key async for key in service.redis.scan_iter(service.keys.media("*"))]) == 1


async def test_an_id_already_taken_leaves_that_jobs_media_and_record_alone(
    service: QueueService,
) -> None:
    first = await enqueue_tweet(service, "post-1", "the first", PNG)
    plain = await service.add_job(TweetJobParams(content="no media"), job_id="post-2")
    assert plain == "post-2"
    before = await service.redis.hgetall(service.keys.job("post-2"))

    other = await enqueue_tweet(service, "post-1", "another", JPEG)
    again = await enqueue_tweet(service, "post-2", "with media", JPEG)

    assert first.created
    assert not other.created and not again.created
    assert await load_media(service.redis, service.keys.media("post-1")) == [PNG]
    assert not await service.redis.exists(service.keys.media("post-2"))
    assert await service.redis.hgetall(service.keys.job("post-2")) == before


async def test_a_resent_enqueue_keeps_the_media_it_stored(service: QueueService) -> None:
    first = await enqueue_tweet(service, "post-1", "twice", PNG, JPEG)
    media_key = service.keys.media("post-1")
    # A mark in the stored media: a resend that attached again would write over it.
    await service.redis.hset(media_key, "mark", "first enqueue's")
    resent = await enqueue_tweet(service, "post-1", "twice", PNG, JPEG)

    assert first.created and not resent.created
    assert await service.redis.hget(media_key, "mark") == "first enqueue's"
    assert await service.redis.hget(service.keys.job("post-1"), "has_media") == "1"


async def test_scripts_lost_between_loading_and_the_transaction_are_loaded_again(
    service: QueueService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis restarted (it lost its scripts) after they were loaded: the transaction ran
    neither script, and the pair goes again."""
    await service.redis.script_flush()
    load = service.redis.script_load
    skipped: list[str] = []

    async def lost_the_first_time(source: str) -> Any:
        if len(skipped) < 2:
            skipped.append(source)
            return None
        return await load(source)

    monkeypatch.setattr(service.redis, "script_load", lost_the_first_time)
    result = await enqueue_tweet(service, "post-1", "after a restart", PNG)
    assert result.created and len(skipped) == 2
    assert await load_media(service.redis, service.keys.media("post-1")) == [PNG]
    assert await service.redis.lrange(service.keys.priority(3), 0, -1) == ["post-1"]


async def test_a_durable_service_refuses_media_before_anything_is_sent(
    redis_url: str, namespace: str
) -> None:
    settings = make_settings(redis_url=redis_url, namespace=namespace, durable_replicas=1)
    async with QueueService(settings=settings) as service:
        with pytest.raises(ConfigurationError, match="cannot be enqueued durably yet"):
            await enqueue_tweet(service, "post-1", "durably", PNG)
        assert not await service.redis.exists(service.keys.job("post-1"))


async def test_no_files_is_refused_before_anything_is_sent(service: QueueService) -> None:
    with pytest.raises(ValueError, match="at least one file"):
        await enqueue_tweet(service, "post-1", "no files")
    assert not await service.redis.exists(service.keys.job("post-1"))


@pytest.mark.parametrize(
    ("media", "message"),
    [
        ([GIF, PNG], "a GIF must be a tweet's only media"),
        ([PNG] * 5, "at most 4 images"),
    ],
)
def test_params_hold_x_rule_for_media(media: list[bytes], message: str) -> None:
    refs = [read_ref(data, None) for data in media]
    with pytest.raises(ValidationFailed, match=message):
        JobFactory.validate_params({"job_type": "tweet", "content": "x", "media": refs})


def test_files_are_read_and_judged_by_content(tmp_path: Any) -> None:
    named_png = tmp_path / "photo.gif"  # the name says GIF, the bytes say PNG
    named_png.write_bytes(PNG)
    refs, blobs = read_media_files([named_png], ["alt"])
    assert refs[0].mime == "image/png" and refs[0].alt == "alt" and blobs == [PNG]


class FakeTwitter:
    """Uploads and posts without HTTP (the HTTP path is tested above); ``refuse`` makes X
    refuse the post for good."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse

    async def upload_media(self, data: bytes, mime: str, alt: str | None) -> Any:
        from qworker.jobs.tweet_media import UploadedMedia

        return UploadedMedia("555", 86_400.0)

    async def post_tweet(self, text: str, **_options: Any) -> Any:
        from qworker.jobs.tweet import Posted

        if self.refuse:
            raise PermanentJobError("X answered 403 Forbidden")
        return Posted("901")


@pytest.mark.parametrize(("refuse", "state"), [(False, "done"), (True, "dead")])
async def test_the_media_go_when_the_job_is_done_or_dead(
    service: QueueService, refuse: bool, state: str
) -> None:
    from qworker.worker import Worker

    job_id = await queue_with_media(service, PNG)
    clients = ClientContainer(service.settings)
    clients.provide("twitter", FakeTwitter(refuse))
    account_redis = aioredis.Redis.from_url(service.settings.redis_url, decode_responses=True)
    clients.provide(CLIENT_NAME, XAccount(account_redis, service.keys, SYSTEM_CLOCK))
    worker = Worker(service, settings=service.settings, burst=True, clients=clients)
    await worker.run()

    record = await service.get_job(job_id)
    assert record is not None and record.state == state
    assert not await service.redis.exists(service.keys.media(job_id))


async def test_the_readme_acl_user_enqueues_a_tweet_with_media(
    redis_server: RedisServer, namespace: str
) -> None:
    """EVALSHA after SCRIPT LOAD, never EVAL, which the README's least-privilege rule leaves
    out; on a Redis that has lost the scripts too."""
    with restricted_user_url(redis_server, namespace, "media") as url:
        with admin(redis_server.port) as client:
            client.script_flush()
        async with QueueService(
            settings=make_settings(redis_url=url, namespace=namespace)
        ) as service:
            result = await enqueue_tweet(service, "with-acl", "restricted", PNG)
            assert result.created
            assert await load_media(service.redis, service.keys.media("with-acl")) == [PNG]
        with admin(redis_server.port) as client:
            assert denials(client) == []
