"""Helpers shared by the tweet job tests: settings, jobs, and a check of the OAuth signature."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from fakeredis import FakeServer
from fakeredis.aioredis import FakeRedis
from oauthlib.common import Request as OAuthRequest  # type: ignore[import-untyped]
from oauthlib.oauth1.rfc5849 import signature, utils  # type: ignore[import-untyped]
from requests import PreparedRequest

from qworker.clients import ClientContainer
from qworker.clock import SYSTEM_CLOCK, Clock
from qworker.config import Settings
from qworker.jobs.base import JobContext
from qworker.jobs.tweet import TweetJob, TweetJobParams
from qworker.jobs.x_account import CLIENT_NAME as X_ACCOUNT_CLIENT
from qworker.jobs.x_account import XAccount
from qworker.keys import QueueKeys

TWEETS_URL = "https://api.twitter.com/2/tweets"

# Distinctive values, so a test can tell for sure that none of them leaked anywhere.
API_KEY = "consumer-KEY-aaaa1111"
API_SECRET = "consumer-SECRET-bbbb2222"
ACCESS_TOKEN = "access-TOKEN-cccc3333"
ACCESS_TOKEN_SECRET = "token-SECRET-dddd4444"
ALL_SECRETS = (API_KEY, API_SECRET, ACCESS_TOKEN, ACCESS_TOKEN_SECRET)

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "twitter_api_key": API_KEY,
        "twitter_api_secret": API_SECRET,
        "twitter_access_token": ACCESS_TOKEN,
        "twitter_access_token_secret": ACCESS_TOKEN_SECRET,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def settings_from_environment() -> Settings:
    """Settings as the worker reads them, from the environment only (never a local .env)."""
    return Settings(_env_file=None)  # type: ignore[call-arg]


def make_job(
    content: str = "Hello world!",
    *,
    settings: Settings | None = None,
    clients: ClientContainer | None = None,
    context: JobContext | None = None,
    **params: Any,
) -> TweetJob:
    settings = settings or make_settings()
    if clients is None:
        clients = ClientContainer(settings)
        # X's shared state in an in-memory Redis: a unit test never reaches a real server.
        clients.provide(X_ACCOUNT_CLIENT, fake_x_account())
    job = TweetJob(TweetJobParams(content=content, **params), settings, clients)
    job.context = context or JobContext(job_id="job-1")
    return job


def fake_x_account(clock: Clock = SYSTEM_CLOCK) -> XAccount:
    return XAccount(FakeRedis(server=FakeServer(), decode_responses=True), QueueKeys("t"), clock)


async def execute_and_close(job: TweetJob) -> bool:
    """Run one attempt, then close the clients it built (as the worker does on shutdown)."""
    try:
        return await job.execute()
    finally:
        await job.clients.aclose()


def assert_oauth1_signed(request: PreparedRequest, consumer_secret: str, token_secret: str) -> None:
    """Recompute the HMAC-SHA1 signature of the request as X would, from the two secrets."""
    header = request.headers["Authorization"]
    if isinstance(header, bytes):
        header = header.decode()
    params = [(k, utils.unescape(v)) for k, v in utils.parse_authorization_header(header)]
    oauth_request = OAuthRequest(request.url or "", request.method or "", None, {})
    oauth_request.params = [(k, v) for k, v in params if k != "oauth_signature"]
    oauth_request.signature = dict(params)["oauth_signature"]
    assert signature.verify_hmac_sha1(oauth_request, consumer_secret, token_secret)


def oauth_params(request: PreparedRequest) -> dict[str, str]:
    header = request.headers["Authorization"]
    if isinstance(header, bytes):
        header = header.decode()
    return {k: utils.unescape(v) for k, v in utils.parse_authorization_header(header)}
