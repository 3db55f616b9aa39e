"""TweetJob end to end through real tweepy, with only the HTTP layer under it mocked."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import traceback
from typing import Any, cast

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError

from qworker.clients import ClientContainer
from qworker.errors import (
    AlreadyDone,
    JobError,
    PermanentJobError,
    RateLimitedJobError,
    RetryableJobError,
    ValidationFailed,
)
from qworker.jobs.base import JobContext, JobFactory
from qworker.jobs.tweet import (
    CONNECT_TIMEOUT_S,
    READ_TIMEOUT_S,
    DryRunTwitterClient,
    DuplicateContentError,
    TweepyTwitterClient,
    TweetJob,
    TweetJobParams,
)
from qworker.rate_limiter import RateLimit
from tests.jobs.support import (
    ACCESS_TOKEN,
    ACCESS_TOKEN_SECRET,
    ALL_SECRETS,
    API_KEY,
    API_SECRET,
    TWEETS_URL,
    assert_oauth1_signed,
    execute_and_close,
    make_job,
    make_settings,
    oauth_params,
    run,
)

TWEET_ID = "1445880548472328192"
DUPLICATE = {
    "detail": "You are not allowed to create a Tweet with duplicate content.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}


def created(tweet_id: str = TWEET_ID, text: str = "Hello world!") -> dict[str, Any]:
    return {"data": {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}}


def execute_expecting(job: TweetJob, error: type[JobError]) -> JobError:
    with pytest.raises(error) as caught:
        run(execute_and_close(job))
    return caught.value


class RecordingContext(JobContext):
    """Remembers each checkpoint and how many HTTP requests had been sent when it was written."""

    def __init__(self, api: responses.RequestsMock, checkpoints: dict[str, str] | None = None):
        super().__init__(job_id="job-1", checkpoints=checkpoints)
        self.api = api
        self.writes: list[tuple[str, str, int]] = []

    async def checkpoint(self, name: str, value: str) -> None:
        self.writes.append((name, value, len(self.api.calls)))
        await super().checkpoint(name, value)


# -- success -------------------------------------------------------------------------------------
def test_posts_the_tweet_through_tweepy_and_records_its_id(api: responses.RequestsMock) -> None:
    api.post(TWEETS_URL, json=created(), status=201)
    job = make_job("Hello world!", media_ids=["123", "456"], reply_to="1400000000000000000")

    assert run(execute_and_close(job)) == {"tweet_id": TWEET_ID}

    (call,) = api.calls
    assert call.request.method == "POST"
    assert call.request.url == TWEETS_URL
    assert json.loads(cast(bytes, call.request.body)) == {
        "text": "Hello world!",
        "media": {"media_ids": ["123", "456"]},
        "reply": {"in_reply_to_tweet_id": "1400000000000000000"},
    }
    assert job.context.checkpoints == {"tweet_sending": "1", "tweet_id": TWEET_ID}


def test_the_request_is_signed_with_oauth1_user_context(api: responses.RequestsMock) -> None:
    api.post(TWEETS_URL, json=created(), status=201)
    run(execute_and_close(make_job()))

    request = api.calls[0].request
    params = oauth_params(request)
    assert params["oauth_consumer_key"] == API_KEY
    assert params["oauth_token"] == ACCESS_TOKEN
    assert params["oauth_signature_method"] == "HMAC-SHA1"
    assert params["oauth_version"] == "1.0"
    assert {"oauth_nonce", "oauth_timestamp", "oauth_signature"} <= params.keys()
    # Proves the two secrets are wired to the right places, and are never sent themselves.
    assert_oauth1_signed(request, API_SECRET, ACCESS_TOKEN_SECRET)
    assert API_SECRET not in str(request.headers)
    assert ACCESS_TOKEN_SECRET not in str(request.headers)


def test_the_request_has_a_timeout(api: responses.RequestsMock) -> None:
    api.post(TWEETS_URL, json=created(), status=201)
    run(execute_and_close(make_job()))
    sent: Any = api.calls[0].request  # responses keeps the send() arguments on it
    assert sent.req_kwargs["timeout"] == (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)


def test_sending_is_checkpointed_before_the_request_and_the_id_after(
    api: responses.RequestsMock,
) -> None:
    api.post(TWEETS_URL, json=created(), status=201)
    context = RecordingContext(api)
    run(execute_and_close(make_job(context=context)))
    assert context.writes == [("tweet_sending", "1", 0), ("tweet_id", TWEET_ID, 1)]


def test_a_job_with_a_recorded_tweet_id_does_not_post_again(
    api: responses.RequestsMock, logs: pytest.LogCaptureFixture
) -> None:
    context = JobContext(job_id="job-1", checkpoints={"tweet_sending": "1", "tweet_id": "77"})
    assert run(execute_and_close(make_job(context=context))) == {"tweet_id": "77"}
    assert len(api.calls) == 0
    assert "already posted as 77" in logs.text


def test_a_successful_answer_without_an_id_is_retried(api: responses.RequestsMock) -> None:
    api.post(TWEETS_URL, json={"data": {}}, status=201)
    error = execute_expecting(make_job(), RetryableJobError)
    assert "no tweet id" in str(error)


# -- 429 -----------------------------------------------------------------------------------------
def test_429_waits_for_the_latest_exhausted_limit(api: responses.RequestsMock) -> None:
    now = int(time.time())
    headers = {
        "x-rate-limit-limit": "100",
        "x-rate-limit-remaining": "57",  # the 15-minute window is fine ...
        "x-rate-limit-reset": str(now + 600),
        "x-user-limit-24hour-limit": "17",
        "x-user-limit-24hour-remaining": "0",  # ... but both daily caps are used up
        "x-user-limit-24hour-reset": str(now + 50_000),
        "x-app-limit-24hour-limit": "1500",
        "x-app-limit-24hour-remaining": "0",
        "x-app-limit-24hour-reset": str(now + 20_000),
    }
    body = {"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429}
    api.post(TWEETS_URL, json=body, status=429, headers=headers)
    job = make_job()

    error = execute_expecting(job, RateLimitedJobError)

    assert isinstance(error, RateLimitedJobError)
    assert error.reset_at == now + 50_000
    assert error.reached_remote is False
    assert "429" in str(error)
    # Refused, so surely not posted: a later duplicate answer must not count as ours.
    assert job.context.checkpoints["tweet_sending"] == "0"


def test_429_with_only_the_window_headers(api: responses.RequestsMock) -> None:
    reset = int(time.time()) + 300
    headers = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)}
    api.post(TWEETS_URL, json={"detail": "Too Many Requests"}, status=429, headers=headers)
    error = execute_expecting(make_job(), RateLimitedJobError)
    assert isinstance(error, RateLimitedJobError)
    assert error.reset_at == reset


def test_429_keeps_the_sending_flag_of_an_earlier_attempt(api: responses.RequestsMock) -> None:
    headers = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(time.time()) + 60)}
    api.post(TWEETS_URL, json={"detail": "Too Many Requests"}, status=429, headers=headers)
    job = make_job(context=JobContext(checkpoints={"tweet_sending": "1"}))
    execute_expecting(job, RateLimitedJobError)
    assert job.context.checkpoints["tweet_sending"] == "1"


# -- 403 duplicate ---------------------------------------------------------------------------------
def test_duplicate_content_on_a_first_send_is_permanent(api: responses.RequestsMock) -> None:
    api.post(TWEETS_URL, json=DUPLICATE, status=403)
    error = execute_expecting(make_job(), DuplicateContentError)
    assert isinstance(error, PermanentJobError)
    assert "403 Forbidden" in str(error)
    assert "duplicate content" in str(error)


def test_duplicate_content_after_an_earlier_send_means_already_posted(
    api: responses.RequestsMock,
) -> None:
    # The earlier attempt crashed or timed out after sending: its tweet is the duplicate.
    api.post(TWEETS_URL, json=DUPLICATE, status=403)
    job = make_job(context=JobContext(attempt=2, checkpoints={"tweet_sending": "1"}))
    error = execute_expecting(job, AlreadyDone)
    assert str(error).startswith("already posted")


def test_a_cleared_sending_flag_does_not_count_as_sent(api: responses.RequestsMock) -> None:
    api.post(TWEETS_URL, json=DUPLICATE, status=403)
    job = make_job(context=JobContext(attempt=2, checkpoints={"tweet_sending": "0"}))
    execute_expecting(job, DuplicateContentError)


def test_duplicate_detected_by_the_v1_error_code(api: responses.RequestsMock) -> None:
    body = {"errors": [{"code": 187, "message": "Status is a repeat."}]}
    api.post(TWEETS_URL, json=body, status=403)
    execute_expecting(make_job(), DuplicateContentError)


# -- other refusals ------------------------------------------------------------------------------
def test_401_is_permanent_with_the_api_message(api: responses.RequestsMock) -> None:
    body = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
    api.post(TWEETS_URL, json=body, status=401)
    error = execute_expecting(make_job(), PermanentJobError)
    assert not isinstance(error, DuplicateContentError)
    assert str(error).startswith("X API answered 401 Unauthorized: Unauthorized")
    assert "TWITTER_API_KEY" in str(error)


def test_403_for_permissions_is_permanent_with_the_api_message(
    api: responses.RequestsMock,
) -> None:
    detail = (
        "Your client app is not configured with the appropriate oauth1 app permissions "
        "for this endpoint."
    )
    api.post(TWEETS_URL, json={"title": "Forbidden", "status": 403, "detail": detail}, status=403)
    error = execute_expecting(make_job(), PermanentJobError)
    assert not isinstance(error, DuplicateContentError)
    assert detail in str(error)
    assert "Read and Write" in str(error)


def test_400_is_permanent_with_the_api_message(api: responses.RequestsMock) -> None:
    body = {
        "errors": [{"parameters": {"media.media_ids": ["1"]}, "message": "Invalid media id."}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }
    api.post(TWEETS_URL, json=body, status=400)
    error = execute_expecting(make_job(media_ids=["1"]), PermanentJobError)
    assert str(error) == "X API answered 400 Bad Request: Invalid media id."


def test_500_is_retried_and_counts_as_reaching_the_api(api: responses.RequestsMock) -> None:
    api.post(TWEETS_URL, body="oops", status=500)
    job = make_job()
    error = execute_expecting(job, RetryableJobError)
    assert isinstance(error, RetryableJobError)
    assert error.reached_remote is True
    assert error.retry_after is None
    assert "500 Internal Server Error" in str(error)
    # X may have posted before failing: the flag stays for the next attempt.
    assert job.context.checkpoints["tweet_sending"] == "1"


def test_503_honours_retry_after(api: responses.RequestsMock) -> None:
    api.post(TWEETS_URL, body="busy", status=503, headers={"Retry-After": "120"})
    error = execute_expecting(make_job(), RetryableJobError)
    assert isinstance(error, RetryableJobError)
    assert error.retry_after == 120.0


# -- the network ---------------------------------------------------------------------------------
def refused() -> requests.ConnectionError:
    """What requests raises when nothing listens (urllib3's error wrapped twice)."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111]")  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, "/2/tweets", reason))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exception", "reached_remote"),
    [
        (refused(), False),
        (requests.ConnectTimeout("connect timed out"), False),
        (requests.ReadTimeout("read timed out"), True),
        (requests.ConnectionError("Connection aborted."), True),
    ],
    ids=["refused", "connect-timeout", "read-timeout", "aborted"],
)
def test_network_failures_are_retried(
    api: responses.RequestsMock, exception: Exception, reached_remote: bool
) -> None:
    api.post(TWEETS_URL, body=exception)
    job = make_job()
    error = execute_expecting(job, RetryableJobError)
    assert error.reached_remote is reached_remote
    assert type(exception).__name__ in str(error)
    # Only a request that surely never left may clear the flag written before sending.
    assert job.context.checkpoints["tweet_sending"] == ("1" if reached_remote else "0")


# -- dry run -------------------------------------------------------------------------------------
def dry_run_clients() -> ClientContainer:
    # No credentials at all: a dry run needs none.
    settings = make_settings(
        dry_run=True,
        twitter_api_key=None,
        twitter_api_secret=None,
        twitter_access_token=None,
        twitter_access_token_secret=None,
    )
    return ClientContainer(settings)


def test_dry_run_logs_the_tweet_and_returns_a_fake_id(
    api: responses.RequestsMock, logs: pytest.LogCaptureFixture
) -> None:
    clients = dry_run_clients()
    first = make_job("Hello dry world", settings=clients.settings, clients=clients)
    second = make_job("Another one", settings=clients.settings, clients=clients)

    assert run(first.execute()) == {"tweet_id": "dry-run-1"}
    assert run(second.execute()) == {"tweet_id": "dry-run-2"}

    assert isinstance(clients.get("twitter"), DryRunTwitterClient)
    assert first.context.checkpoints["tweet_id"] == "dry-run-1"
    assert second.context.checkpoints["tweet_id"] == "dry-run-2"
    assert len(api.calls) == 0
    records = [r for r in logs.records if r.name == "qworker.tweet"]
    assert any("would post 'Hello dry world'" in r.getMessage() for r in records)


def test_dry_run_fail_once_fails_only_the_first_attempt() -> None:
    clients = dry_run_clients()
    content = "demo #fail-once"
    job = make_job(content, settings=clients.settings, clients=clients)
    with pytest.raises(RetryableJobError) as caught:
        run(job.execute())
    assert caught.value.reached_remote is False

    retry = make_job(content, settings=clients.settings, clients=clients)
    retry.context = JobContext(attempt=2, checkpoints=job.context.checkpoints)
    assert run(retry.execute())["tweet_id"].startswith("dry-run-")
    assert retry.context.checkpoints["tweet_id"].startswith("dry-run-")


def test_dry_run_always_fail_is_permanent() -> None:
    clients = dry_run_clients()
    for attempt in (1, 2):
        job = make_job("demo #always-fail", settings=clients.settings, clients=clients)
        job.context = JobContext(attempt=attempt)
        with pytest.raises(PermanentJobError, match="#always-fail"):
            run(job.execute())


def test_dry_run_tweets_obey_the_rate_limits() -> None:
    settings = make_settings(
        dry_run=True, tweet_max_per_day=5, tweet_max_per_hour=2, tweet_min_interval_minutes=7.5
    )
    job = make_job(settings=settings)
    assert job.get_rate_limit() == RateLimit(
        max_per_day=5, max_per_hour=2, min_interval_minutes=7.5
    )
    assert job.get_rate_limit_key() == "tweet"


# -- clients ---------------------------------------------------------------------------------------
def test_the_twitter_client_is_built_once_and_shared() -> None:
    clients = ClientContainer(make_settings())
    client = clients.get("twitter")
    assert isinstance(client, TweepyTwitterClient)
    assert clients.get("twitter") is client
    run(clients.aclose())


def test_a_job_without_credentials_is_retried_without_using_a_rate_slot(
    api: responses.RequestsMock,
) -> None:
    settings = make_settings(twitter_access_token=None, twitter_access_token_secret=None)
    error = execute_expecting(make_job(settings=settings), RetryableJobError)
    assert error.reached_remote is False
    assert "TWITTER_ACCESS_TOKEN, TWITTER_ACCESS_TOKEN_SECRET" in str(error)
    assert len(api.calls) == 0


# -- the job type ----------------------------------------------------------------------------------
def test_job_type_is_registered_with_the_factory() -> None:
    settings = make_settings()
    job = JobFactory.create_job(
        {"job_type": "tweet", "content": "hi"}, settings, ClientContainer(settings)
    )
    assert isinstance(job, TweetJob)
    assert JobFactory.get("tweet").params_cls is TweetJobParams


def test_retry_config_and_description() -> None:
    job = make_job("Hello world, this is a long tweet\nwith two lines")
    assert job.get_retry_config() == {"max_retries": 3, "base_delay": 60.0}
    assert job.describe() == 'tweet "Hello world, this i…"'
    assert make_job("short").describe() == 'tweet "short"'


class FakeQueueService:
    def __init__(self) -> None:
        self.added: list[tuple[Any, dict[str, Any]]] = []

    async def add_job(self, job_data: Any, **options: Any) -> str:
        self.added.append((job_data, options))
        return "job-42"


def test_add_to_queue_validates_and_enqueues() -> None:
    service = FakeQueueService()
    job_id = run(
        TweetJob.add_to_queue(
            service,  # type: ignore[arg-type]
            content="Hello world!",
            priority=2,
            media_ids=["123", "456"],
        )
    )
    assert job_id == "job-42"
    ((params, options),) = service.added
    assert params == TweetJobParams(content="Hello world!", media_ids=["123", "456"])
    assert options["priority"] == 2


def test_add_to_queue_refuses_a_long_tweet() -> None:
    service = FakeQueueService()
    with pytest.raises(ValidationFailed, match="content has weighted length 281 > 280"):
        run(TweetJob.add_to_queue(service, content="x" * 281))  # type: ignore[arg-type]
    assert service.added == []


def test_importing_the_module_does_not_import_tweepy() -> None:
    code = (
        "import sys, qworker.jobs.tweet\n"
        "print(sorted(m for m in ('tweepy', 'requests', 'oauthlib') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_importing_the_module_imports_neither_the_x_client_nor_redis() -> None:
    code = (
        "import sys, qworker.jobs.tweet\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'redis'"
        " or m in ('qworker.jobs.tweet_client', 'qworker.jobs.x_account', 'qworker.jobs.x_plan')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_the_client_names_tweet_registers_are_those_of_their_modules() -> None:
    import qworker.jobs.tweet as tweet
    import qworker.jobs.tweet_client as tweet_client
    import qworker.jobs.x_account as x_account

    assert tweet.TWITTER_CLIENT == tweet_client.CLIENT_NAME
    assert tweet.X_ACCOUNT_CLIENT == x_account.CLIENT_NAME
    assert tweet.CLIENT_NAME is tweet_client.CLIENT_NAME  # still offered by the tweet module


# -- secrets ---------------------------------------------------------------------------------------
def test_secrets_never_show(api: responses.RequestsMock, logs: pytest.LogCaptureFixture) -> None:
    api.post(TWEETS_URL, json=created(), status=201)
    api.post(TWEETS_URL, json={"detail": "Unauthorized", "status": 401}, status=401)
    settings = make_settings()
    clients = ClientContainer(settings)
    posted = make_job(settings=settings, clients=clients)
    run(posted.execute())
    refused_job = make_job("second", settings=settings, clients=clients)
    with pytest.raises(PermanentJobError) as caught:
        run(refused_job.execute())
    error = caught.value
    client = clients.get("twitter")
    run(clients.aclose())

    shown = [
        logs.text,
        repr(settings),
        str(settings),
        repr(client),
        str(client),
        repr(posted),
        repr(posted.params),
        posted.describe(),
        json.dumps(posted.context.checkpoints),
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),
    ]
    for text in shown:
        for secret in ALL_SECRETS:
            assert secret not in text
