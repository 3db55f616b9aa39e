"""ScriptLane: a producer's one-at-a-time script calls on a kept connection. The same replies
and errors as the client's own path, never a reply read for the wrong call (after a cancel or
a timeout the connection is dropped), and the ordinary path whenever the lane is busy."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis
import redis.asyncio as aioredis

from qworker.errors import RedisUnavailable
from qworker.script_lane import ScriptLane
from qworker.service import QueueService
from tests.redis.conftest import make_test_settings
from tests.redis_server import RedisServer

JOB = {"job_type": "tweet", "content": "lane"}
# The read timeout of the timeout tests: short, yet long enough that a loaded machine's stall of
# a tenth of a second does not turn an answered call into a timeout.
SHORT_S = 0.5


def kept_connection(lane: ScriptLane) -> object:
    return lane._conn


async def test_enqueue_takes_the_lane_and_stores_what_the_client_path_stores(
    redis_url: str, namespace: str
) -> None:
    async with QueueService(settings=make_test_settings(redis_url, namespace)) as service:
        first = await service.add_job(JOB, priority=2)
        conn = kept_connection(service._lane)
        assert conn is not None  # the call went on the lane
        second = await service.add_job(JOB, priority=2, job_id="given-id")
        assert kept_connection(service._lane) is conn  # and the next one on the same connection
        again = await service.enqueue_job(JOB, priority=2, job_id="given-id")
        assert (again.created, again.job_id) == (False, second)
        stats = await service.get_queue_stats()
        assert stats.queues["jobs_priority_2"] == 2
        for job_id in (first, second):
            record = await service.get_job(job_id)
            assert record is not None and record.state == "queued" and record.priority == 2


async def test_concurrent_enqueues_share_nothing_and_lose_nothing(
    redis_url: str, namespace: str
) -> None:
    async with QueueService(settings=make_test_settings(redis_url, namespace)) as service:
        ids = await asyncio.gather(*(service.add_job(JOB) for _ in range(50)))
        assert len(set(ids)) == 50
        assert (await service.get_queue_stats()).queues["jobs_priority_3"] == 50


async def test_a_cancelled_call_drops_the_connection_so_no_reply_goes_to_the_next_call(
    redis_url: str,
) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    lane = ScriptLane(client)
    try:
        waiting = asyncio.ensure_future(lane.execute(("BLPOP", "lane:never", "0.3")))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert kept_connection(lane) is None
        # Had the connection been kept, this would read BLPOP's nil reply.
        assert await lane.execute(("PING",)) == "PONG"
        await asyncio.sleep(0.4)
        assert await lane.execute(("ECHO", "mine")) == "mine"
    finally:
        await lane.close()
        await client.aclose()


async def test_a_timeout_is_redis_pys_and_the_next_call_reads_its_own_reply(
    redis_url: str,
) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=SHORT_S)
    lane = ScriptLane(client)
    try:
        with pytest.raises(redis.TimeoutError):
            await lane.execute(("BLPOP", "lane:never", "5"))
        assert await lane.execute(("ECHO", "after")) == "after"
    finally:
        await lane.close()
        await client.aclose()


async def test_the_timeout_holds_after_an_idle_spell_and_after_a_run_of_quick_calls(
    redis_url: str,
) -> None:
    """One timer serves every call: it lapses while the lane is idle and is armed again by the
    next call; quick calls keep moving its deadline, and a slow one after them is still cut
    at its own timeout, not later."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=SHORT_S)
    lane = ScriptLane(client)
    loop = asyncio.get_running_loop()
    try:
        assert await lane.execute(("PING",)) == "PONG"
        await asyncio.sleep(SHORT_S * 1.6)  # the timer fired with nothing in flight, and stopped
        with pytest.raises(redis.TimeoutError):
            await lane.execute(("BLPOP", "lane:never", "5"))
        started = loop.time()
        while loop.time() - started < SHORT_S * 3:
            assert await lane.execute(("PING",)) == "PONG"
        started = loop.time()
        with pytest.raises(redis.TimeoutError):
            await lane.execute(("BLPOP", "lane:never", "5"))
        assert loop.time() - started < 3  # cut near 0.5 s, before BLPOP would answer at 5 s
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0  # the timeout's cancel is undone
        assert await lane.execute(("ECHO", "still mine")) == "still mine"
    finally:
        await lane.close()
        await client.aclose()


async def test_error_replies_are_raised_as_the_clients_errors(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    lane = ScriptLane(client)
    try:
        with pytest.raises(redis.exceptions.NoScriptError):
            await lane.execute(("EVALSHA", "0" * 40, 0))
        with pytest.raises(redis.ResponseError, match="unknown command"):
            await lane.execute(("NOSUCHCOMMAND",))
        assert await lane.execute(("PING",)) == "PONG"  # an error reply leaves it usable
    finally:
        await lane.close()
        await client.aclose()


async def test_scripts_flushed_from_redis_are_loaded_again(redis_url: str, namespace: str) -> None:
    async with QueueService(settings=make_test_settings(redis_url, namespace)) as service:
        await service.add_job(JOB)
        await service.redis.script_flush()
        job_id = await service.add_job(JOB)
        assert (await service.get_job(job_id)) is not None


async def test_a_redis_restart_costs_one_error_at_most_and_no_job_twice(
    fresh_redis_server: RedisServer, namespace: str
) -> None:
    settings = make_test_settings(fresh_redis_server.url, namespace)
    async with QueueService(settings=settings) as service:
        await service.add_job(JOB, job_id="before")
        fresh_redis_server.restart()
        errors = 0
        for attempt in range(3):
            try:
                await service.add_job(JOB, job_id="after")
                break
            except RedisUnavailable:
                errors += 1
                assert attempt == 0
        assert errors <= 1
        stats = await service.get_queue_stats()
        assert stats.queues["jobs_priority_3"] == 2  # "before" survived (AOF), "after" once


async def test_a_connection_redis_closed_while_the_lane_was_idle_costs_no_error(
    redis_url: str, namespace: str
) -> None:
    """Redis closes idle clients (its ``timeout``) and every client on a restart: the next call
    connects again, as the client's pool does, instead of failing on the closed connection."""
    admin = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        async with QueueService(settings=make_test_settings(redis_url, namespace)) as service:
            await service.add_job(JOB, job_id="before")
            lane_client = await service._lane.execute(("CLIENT", "ID"))
            assert await admin.client_kill_filter(_id=lane_client) == 1
            await asyncio.sleep(0.1)  # the close reaches this side while the lane is idle
            await service.add_job(JOB, job_id="after")
            assert (await service.get_job("after")) is not None
    finally:
        await admin.aclose()


async def test_a_client_with_a_small_pool_keeps_all_of_it_for_its_commands(
    redis_url: str, namespace: str
) -> None:
    """A pool its owner capped (``max_connections``) is not the lane's to take a connection of
    for good: every command still finds one."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True, max_connections=1)
    async with QueueService(client, settings=make_test_settings(redis_url, namespace)) as service:
        job_id = await service.add_job(JOB)
        record = await service.get_job(job_id)
        assert record is not None and record.state == "queued"


async def test_closing_the_lane_during_a_call_gives_no_other_caller_its_reply(
    redis_url: str,
) -> None:
    """A connection given back while a call still waits for its reply must not serve the next
    command of the pool: that command would read the reply meant for the call."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    lane = ScriptLane(client)
    try:
        waiting = asyncio.ensure_future(lane.execute(("BLPOP", "lane:never", "0.3")))
        await asyncio.sleep(0.05)
        await lane.close()
        assert await client.execute_command("ECHO", "mine") == "mine"
        with contextlib.suppress(redis.ConnectionError):
            assert await waiting is None
    finally:
        await client.aclose()


def test_no_lane_where_redis_py_does_more_than_read_and_write() -> None:
    sentinel_master = aioredis.Sentinel([("127.0.0.1", 1)]).master_for("mymaster")
    assert ScriptLane(sentinel_master)._pool is None
    cluster_like = object()
    assert ScriptLane(cluster_like)._pool is None  # type: ignore[arg-type]
