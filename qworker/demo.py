"""The demo's moving parts, without any rendering: an embedded Redis, a tweet job on a compressed
clock, a dozen sample tweets, and a worker wired to them. ``qworker demo`` (``cli/demo.py``)
drives these and draws the live view.

Nothing here needs a Redis server or an X account: fakeredis (with Lua) stands in for Redis and
the dry-run tweet client stands in for X. The sample tweets include one that fails once and is
retried (``#fail-once``) and one that fails for good and lands in the dead-letter queue
(``#always-fail``); see ``DryRunTwitterClient``.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import fakeredis
import redis
from fakeredis.aioredis import FakeRedis

from qworker.config import Settings
from qworker.jobs.base import JobFactory
from qworker.jobs.tweet import TweetJob, TweetJobParams
from qworker.models import QueueStats
from qworker.service import QueueService
from qworker.worker import Worker

if TYPE_CHECKING:
    from qworker.metrics.worker import WorkerMetrics

DEMO_JOB_TYPE = "demo_tweet"
DEMO_NAMESPACE = "demo"
# Seconds, where the real tweet job waits minutes: 1 s, then 2 s, then dead letter.
DEMO_RETRY_CONFIG: dict[str, Any] = {"max_retries": 2, "base_delay": 1.0, "jitter": 0.0}
# How long one simulated post takes, so the queues drain at a pace a person can follow.
POST_LATENCY_S = (0.5, 1.1)


class DemoTweetParams(TweetJobParams):
    job_type: Literal["demo_tweet"] = "demo_tweet"  # type: ignore[assignment]


class DemoTweetJob(TweetJob):
    """A tweet job on a compressed clock, posting through the dry-run client."""

    latency_rng = random.Random(7)

    async def execute(self) -> dict[str, str]:
        await asyncio.sleep(self.latency_rng.uniform(*POST_LATENCY_S))
        return await super().execute()

    def get_rate_limit_key(self) -> str:
        return DEMO_JOB_TYPE

    def get_retry_config(self) -> dict[str, Any]:
        return dict(DEMO_RETRY_CONFIG)


@dataclass(frozen=True)
class SampleTweet:
    content: str
    priority: int
    delay_s: float | None = None


SAMPLE_TWEETS: tuple[SampleTweet, ...] = (
    SampleTweet("Status: all systems operational after this morning's maintenance.", 1),
    SampleTweet("Release 2.4 is out: faster search, dark mode and 40 bug fixes.", 2),
    SampleTweet("Our API had a brief blip; retrying this one on purpose #fail-once", 2),
    SampleTweet("Join the community call on Thursday at 17:00 UTC.", 3),
    SampleTweet("Tip: [bold]square brackets[/bold] are shown as typed, not as markup.", 3),
    SampleTweet("This one can never be posted and ends in the dead letter #always-fail", 3),
    SampleTweet("New blog post: how a crash-safe job queue hands work back.", 3),
    SampleTweet("Scheduled two seconds ahead: Friday's changelog is live.", 3, delay_s=2.0),
    SampleTweet("We're hiring: backend engineers who enjoy queues.", 4),
    SampleTweet("Throwback: our very first tweet, ten years ago today.", 4),
    SampleTweet("Reminder: rotate your API keys every 90 days.", 4),
    SampleTweet("Thanks for 10k followers!", 2),
)


def demo_settings() -> Settings:
    """Settings for the demo, independent of the environment and any ``.env`` file."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        namespace=DEMO_NAMESPACE,
        dry_run=True,
        job_modules=[],
        lease_seconds=3.0,  # the heartbeat beats every lease/3: once a second
        shutdown_grace_seconds=5.0,
        tweet_max_per_day=100,
        tweet_max_per_hour=50,
        tweet_min_interval_minutes=0.0,
    )


def register_demo_job_type() -> None:
    JobFactory.register_job_type(DEMO_JOB_TYPE, DemoTweetJob, DemoTweetParams)


def unregister_demo_job_type() -> None:
    JobFactory.unregister_job_type(DEMO_JOB_TYPE)


class DemoEnvironment:
    """One embedded Redis server with the async client the service uses and sync clients for the
    worker's heartbeat thread, all seeing the same data."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or demo_settings()
        self.server = fakeredis.FakeServer()
        self.service = QueueService(
            FakeRedis(server=self.server, decode_responses=True), settings=self.settings
        )

    def sync_client(self) -> redis.Redis:
        return fakeredis.FakeRedis(server=self.server, decode_responses=True)

    def worker(self, concurrency: int = 2, metrics: WorkerMetrics | None = None) -> Worker:
        return Worker(
            self.service,
            settings=self.settings,
            concurrency=concurrency,
            heartbeat_client=self.sync_client,
            idle_poll_s=0.2,
            metrics=metrics,
        )

    async def enqueue_samples(self) -> list[str]:
        return [
            await self.service.add_job(
                DemoTweetParams(content=sample.content), sample.priority, delay_s=sample.delay_s
            )
            for sample in SAMPLE_TWEETS
        ]

    async def close(self) -> None:
        await self.service.close()


def is_drained(stats: QueueStats, jobs: int) -> bool:
    """Every job settled: done or dead, nothing waiting, retrying or running."""
    waiting = stats.total_jobs + stats.scheduled + stats.retry + stats.parked + stats.in_flight
    return waiting == 0 and stats.total_processed + stats.dead_letter >= jobs
