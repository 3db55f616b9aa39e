"""Fixtures of the fleet tests: a fake X API under tweepy, and a fleet of in-process workers,
each with its own name, served types and settings."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import responses
from requests import PreparedRequest

from qworker.config import Settings
from qworker.jobs.tweet import CREDENTIAL_ENV_VARS
from qworker.service import QueueService
from qworker.worker import Worker
from tests.fleet.jobtypes import NAME_CLIENT, RAN
from tests.redis.conftest import make_test_settings

TWEETS_URL = "https://api.twitter.com/2/tweets"
FAKE_CREDENTIALS = {
    "twitter_api_key": "fleet-key",
    "twitter_api_secret": "fleet-secret",
    "twitter_access_token": "fleet-token",
    "twitter_access_token_secret": "fleet-token-secret",
}
JOB_MODULES = ["tests.fleet.jobtypes"]
# Bounds a hang only: on a loaded machine a fleet drains 300 jobs in a few seconds.
DRAIN_TIMEOUT_S = 90.0


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for _field, env_var in CREDENTIAL_ENV_VARS:
        monkeypatch.delenv(env_var, raising=False)
    for name in ("QWORKER_DRY_RUN", "QWORKER_JOB_TYPES"):
        monkeypatch.delenv(name, raising=False)
    RAN.clear()
    yield
    RAN.clear()


@pytest.fixture
def x_api() -> Iterator[list[str]]:
    """A fake X: every post succeeds with a new id; the texts posted, in order."""
    posted: list[str] = []

    def create(request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        text = json.loads(request.body or b"{}")["text"]
        posted.append(text)
        body = {"data": {"id": str(1000 + len(posted)), "text": text}}
        return 201, {"Content-Type": "application/json"}, json.dumps(body)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, TWEETS_URL, callback=create)
        yield posted


MakeFleetWorker = Callable[..., Worker]


@pytest.fixture
def fleet_settings(redis_url: str, namespace: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        # Tweets unlimited: the test is about routing, not the X rate limits.
        values = {"tweet_max_per_day": None, "tweet_max_per_hour": None, **overrides}
        return make_test_settings(redis_url, namespace, **values)

    return make


@pytest.fixture
async def make_fleet_worker(
    fleet_settings: Callable[..., Settings],
) -> AsyncIterator[MakeFleetWorker]:
    """``make_fleet_worker("reports", ["report", "mail"])``: a worker with its own service
    (closed after the test) and settings, named for the jobs it runs."""
    services: list[QueueService] = []

    def make(name: str, job_types: list[str] | None, **settings: Any) -> Worker:
        service = QueueService(settings=fleet_settings(**settings))
        services.append(service)
        worker = Worker(
            service,
            job_types=job_types,
            job_modules=JOB_MODULES,
            concurrency=4,
            # The idle poll bounds how late a worker notices a job nobody woke it for.
            idle_poll_s=0.5,
        )
        worker.clients.provide(NAME_CLIENT, name)
        return worker

    yield make
    for service in services:
        await service.close()


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def service(fleet_settings: Callable[..., Settings]) -> AsyncIterator[QueueService]:
    async with QueueService(settings=fleet_settings()) as queue_service:
        yield queue_service


async def stop_all(workers: list[Worker], tasks: list[asyncio.Task[None]]) -> None:
    for worker in workers:
        worker.request_stop()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
