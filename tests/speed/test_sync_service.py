"""SyncQueueService: QueueService's producing and inspecting methods without asyncio, on the
same scripts and models (what one API stores, the other reads)."""

from __future__ import annotations

import asyncio
import inspect

import pytest
import redis

import qworker.sync_service as sync_service_module
from qworker import SyncQueueService, TweetJob
from qworker.errors import JobNotFound, ValidationFailed
from qworker.service import QueueService
from qworker.sync_service import ReadyClient
from tests.redis.conftest import make_test_settings


@pytest.fixture
def sync_service(redis_url: str, namespace: str) -> SyncQueueService:
    return SyncQueueService(settings=make_test_settings(redis_url, namespace))


def test_a_job_added_without_asyncio_is_seen_by_both_apis(
    sync_service: SyncQueueService, redis_url: str, namespace: str
) -> None:
    job_id = sync_service.add_job({"job_type": "tweet", "content": "hello"}, priority=2)
    assert sync_service.get_job(job_id).state == "queued"  # type: ignore[union-attr]
    assert sync_service.get_queue_stats().queues["jobs_priority_2"] == 1

    async def read() -> str | None:
        async with QueueService(settings=make_test_settings(redis_url, namespace)) as service:
            record = await service.get_job(job_id)
            return None if record is None else record.state

    assert asyncio.run(read()) == "queued"
    sync_service.close()


def test_bulk_unique_delayed_and_tweet_job_helper(sync_service: SyncQueueService) -> None:
    ids = sync_service.add_jobs([{"job_type": "tweet", "content": f"n{i}"} for i in range(3)])
    assert [job.id for job in sync_service.list_jobs("queued").jobs] == ids
    first = sync_service.enqueue_job({"job_type": "tweet", "content": "u"}, unique_key="k")
    again = sync_service.enqueue_job({"job_type": "tweet", "content": "u"}, unique_key="k")
    assert (first.created, again.duplicate, again.job_id) == (True, True, first.job_id)
    later = sync_service.add_job({"job_type": "tweet", "content": "later"}, delay_s=60)
    assert sync_service.get_job(later).state == "scheduled"  # type: ignore[union-attr]
    tweet_id = TweetJob.add_to_queue(sync_service, content="from the helper")
    assert isinstance(tweet_id, str) and sync_service.find_job(tweet_id[:12]).id == tweet_id
    assert sync_service.cancel_job(tweet_id).outcome == "canceled"
    with sync_service:
        stats = sync_service.get_queue_stats()
        assert (stats.total_jobs, stats.scheduled, stats.canceled) == (4, 1, 1)


def test_errors_are_the_async_apis_and_nothing_is_queued(sync_service: SyncQueueService) -> None:
    with pytest.raises(ValidationFailed):
        sync_service.add_job({"job_type": "tweet", "content": "x"}, priority=9)
    with pytest.raises(JobNotFound):
        sync_service.find_job("ffffffffffff")
    assert sync_service.get_queue_stats().total_jobs == 0
    sync_service.close()


def test_a_given_client_is_used_and_scripts_reload_after_a_flush(
    redis_url: str, namespace: str
) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    service = SyncQueueService(client, settings=make_test_settings(redis_url, namespace))
    assert service.redis is client
    client.script_flush()  # as after a Redis restart: NOSCRIPT, then loaded and run again
    job_id = service.add_job({"job_type": "tweet", "content": "after a flush"})
    assert service.get_job(job_id) is not None
    service.close()


def test_a_connection_lost_during_a_call_is_dropped_and_the_next_call_reconnects(
    sync_service: SyncQueueService, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_service.add_job({"job_type": "tweet", "content": "one"})
    ready = sync_service.service.redis
    assert isinstance(ready, ReadyClient)
    sync_service.redis.client_kill_filter(_type="normal", skipme=True)  # the kept connection
    # As if Redis closed it after the look before the call (the look sees a closed one).
    monkeypatch.setattr(sync_service_module, "_stale", lambda conn: False)
    with pytest.raises(Exception, match=r"unavailable|reach|closed|Connection"):
        sync_service.add_job({"job_type": "tweet", "content": "lost"})
    sync_service.add_job({"job_type": "tweet", "content": "two"})
    assert sync_service.get_queue_stats().total_jobs == 2
    sync_service.close()


def test_every_producing_and_inspecting_method_of_the_async_api_is_there() -> None:
    wanted = {"add_job", "enqueue_job", "add_jobs", "get_queue_stats", "get_job", "find_job"}
    wanted |= {"list_jobs", "list_dead", "get_dead", "list_workers", "requeue_dead"}
    for name in wanted:
        method = getattr(SyncQueueService, name)
        assert not inspect.iscoroutinefunction(method), name
        assert method.__doc__ == getattr(QueueService, name).__doc__, name


def test_a_kept_connection_redis_closed_while_idle_costs_no_error(
    sync_service: SyncQueueService, redis_url: str
) -> None:
    """Redis closes idle clients (its ``timeout``) and every client on a restart: the next
    enqueue connects again, as redis-py's pool does, instead of failing on the closed one."""
    sync_service.add_job({"job_type": "tweet", "content": "before"})
    kept = sync_service._ready._conn
    kept.send_command("CLIENT", "ID")
    kept_id = kept.read_response()
    admin = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert admin.client_kill_filter(_id=kept_id) == 1
    finally:
        admin.close()
    job_id = sync_service.add_job({"job_type": "tweet", "content": "after"})
    assert sync_service.get_job(job_id) is not None
    sync_service.close()


def test_a_client_with_a_small_pool_keeps_all_of_it_for_its_commands(
    redis_url: str, namespace: str
) -> None:
    """A pool its owner capped (``max_connections``) is not SyncQueueService's to keep a
    connection of: every command still finds one."""
    client = redis.Redis.from_url(redis_url, decode_responses=True, max_connections=1)
    with SyncQueueService(client, settings=make_test_settings(redis_url, namespace)) as service:
        job_id = service.add_job({"job_type": "tweet", "content": "small pool"})
        record = service.get_job(job_id)
        assert record is not None and record.state == "queued"
