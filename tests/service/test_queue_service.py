"""QueueService on a real redis-server: enqueue, validation, stats, dead letters, clear."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from qworker.clock import ManualClock
from qworker.config import Settings
from qworker.errors import (
    JobNotFound,
    PayloadTooLarge,
    RedisUnavailable,
    UnknownJobType,
    ValidationFailed,
)
from qworker.models import JobError
from qworker.service import QueueService
from tests.service.jobtypes import EchoParams

pytestmark = pytest.mark.usefixtures("redis_server")


async def test_add_job_stores_and_lists_it(service: QueueService, redis: aioredis.Redis) -> None:
    job_id = await service.add_job({"job_type": "echo", "text": "hi"}, priority=2)
    assert await redis.lrange(service.keys.priority(2), 0, -1) == [job_id]
    record = await service.get_job(job_id)
    assert record is not None
    assert (record.job_type, record.priority, record.attempts) == ("echo", 2, 0)
    assert json.loads(record.payload) == {"job_type": "echo", "text": "hi"}
    assert record.enqueued_at_ms == service.clock.now_ms()


async def test_keys_carry_the_namespace(service: QueueService, namespace: str) -> None:
    await service.add_job(EchoParams(text="hi"))
    assert service.keys.priority(3) == f"{namespace}:jobs_priority_3"
    stats = await service.get_queue_stats()
    # The seed's shape: queue names without the namespace.
    assert stats["queues"] == {
        "jobs_priority_1": 0,
        "jobs_priority_2": 0,
        "jobs_priority_3": 1,
        "jobs_priority_4": 0,
    }
    assert (stats["total_jobs"], stats["total_processed"]) == (1, 0)


@pytest.mark.parametrize(
    ("job_data", "priority", "error", "message"),
    [
        ({"job_type": "echo", "text": "hi"}, 0, ValidationFailed, "priority must be 1"),
        ({"job_type": "echo", "text": "hi"}, 5, ValidationFailed, "priority must be 1"),
        ({"text": "hi"}, 3, ValidationFailed, 'no "job_type"'),
        ({"job_type": "nope"}, 3, UnknownJobType, "unknown job type 'nope'"),
        ({"job_type": "echo", "text": ""}, 3, ValidationFailed, "text: String should have"),
        ({"job_type": "echo", "text": "hi", "x": 1}, 3, ValidationFailed, "x: unknown field"),
        ({"job_type": "echo"}, 3, ValidationFailed, "text: Field required"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_queued(
    service: QueueService,
    job_data: dict[str, object],
    priority: int,
    error: type[Exception],
    message: str,
) -> None:
    await service.add_job({"job_type": "echo", "text": "kept"})
    with pytest.raises(error, match=message):
        await service.add_job(job_data, priority=priority)
    assert (await service.get_queue_stats()).total_jobs == 1


async def test_payload_size_limit(service: QueueService) -> None:
    # Params built without validation can be any size; the limit still holds at enqueue.
    big = EchoParams.model_construct(job_type="echo", text="y" * 300)
    with pytest.raises(PayloadTooLarge, match="is 329 bytes; the limit is 200"):
        await service.add_job(big)
    with pytest.raises(PayloadTooLarge):
        await service.add_jobs([EchoParams(text="fine"), big])
    assert (await service.get_queue_stats()).total_jobs == 0


async def test_add_jobs_is_all_or_nothing(service: QueueService) -> None:
    good = {"job_type": "echo", "text": "ok"}
    with pytest.raises(ValidationFailed):
        await service.add_jobs([good, good, {"job_type": "echo", "text": ""}])
    assert (await service.get_queue_stats()).total_jobs == 0
    ids = await service.add_jobs([good] * 2500, priority=4)
    assert len(set(ids)) == 2500
    assert (await service.get_queue_stats()).queues["jobs_priority_4"] == 2500


async def test_enqueue_script_never_doubles_an_id(service: QueueService) -> None:
    from qworker.scripts import EnqueueItem

    item = EnqueueItem("same-id", 1, "echo", '{"job_type":"echo","text":"a"}', None, None)
    call = service.scripts.enqueue([item], 1)
    assert (await service.runner.run(call)).stored == 1
    assert (await service.runner.run(call)).stored == 0
    assert (await service.get_queue_stats()).total_jobs == 1


async def test_delayed_jobs_wait_in_the_scheduled_set(
    service: QueueService, redis: aioredis.Redis, clock: ManualClock
) -> None:
    job_id = await service.add_job(EchoParams(text="later"), delay_s=90)
    assert await redis.zscore(service.keys.scheduled, job_id) == clock.now_ms() + 90_000
    stats = await service.get_queue_stats()
    assert (stats.total_jobs, stats.scheduled) == (0, 1)
    with pytest.raises(ValidationFailed, match="not both"):
        await service.add_job(EchoParams(text="x"), delay_s=1, run_at_ms=1)
    with pytest.raises(ValidationFailed, match="negative"):
        await service.add_job(EchoParams(text="x"), delay_s=-1)


async def _bury(service: QueueService, job_id: str, when_ms: int) -> None:
    """Put a queued job in the dead-letter queue as a worker would, through claim and bury."""
    claimed = (await service.runner.run(service.scripts.claim("w", when_ms, 1000, 1, "x"))).jobs
    assert [job.id for job in claimed] == [job_id]
    error = JobError(type="RuntimeError", message="boom").model_dump_json()
    owner = f"w:{claimed[0].claims}"
    call = service.scripts.bury(job_id, owner, 4, error, when_ms, attempt_failed=True, keep_ms=0)
    assert await service.runner.run(call) == 1


async def test_dead_letter_list_show_and_requeue(service: QueueService) -> None:
    first = await service.add_job(EchoParams(text="one"), priority=1)
    await _bury(service, first, 1000)
    second = await service.add_job(EchoParams(text="two"), priority=2)
    await _bury(service, second, 2000)

    dead = await service.list_dead(limit=10)
    assert [record.id for record in dead] == [second, first]  # newest first
    assert dead[0].error is not None and dead[0].error.message == "boom"
    assert (await service.get_dead(first)).attempts == 4
    with pytest.raises(JobNotFound):
        await service.get_dead("missing")

    result = await service.requeue_dead([first, "missing"], priority=4)
    assert (result.requeued, result.missing) == ([first], ["missing"])
    record = await service.get_job(first)
    assert record is not None
    assert (record.attempts, record.priority, record.error) == (0, 4, None)
    result = await service.requeue_dead(requeue_all=True)
    assert result.requeued == [second]
    stats = await service.get_queue_stats()
    assert (stats.dead_letter, stats.total_jobs) == (0, 2)


async def test_retry_drain_moves_due_or_all(
    service: QueueService, redis: aioredis.Redis, clock: ManualClock
) -> None:
    ids = await service.add_jobs([EchoParams(text=str(n)) for n in range(3)], priority=2)
    await redis.delete(service.keys.priority(2))
    now_ms = clock.now_ms()
    await redis.zadd(service.keys.retry, {ids[0]: now_ms - 1, ids[1]: now_ms, ids[2]: now_ms + 60})
    assert await service.retry_drain(dry_run=True) == 2
    assert await service.retry_drain() == 2
    assert await redis.lrange(service.keys.priority(2), 0, -1) == [ids[1], ids[0]]
    assert await service.retry_drain(include_not_due=True) == 1
    assert (await service.get_queue_stats()).retry == 0


async def test_clear_deletes_only_what_was_asked(
    service: QueueService, redis: aioredis.Redis, namespace: str
) -> None:
    await redis.set(f"{namespace}-not-ours", "keep")
    await redis.set("jobs_priority_1_unrelated", "keep")
    one = await service.add_job(EchoParams(text="a"), priority=1)
    await service.add_job(EchoParams(text="b"), priority=2)
    assert await service.clear_queue([1]) == 1
    assert await service.get_job(one) is None
    stats = await service.get_queue_stats()
    assert (stats.queues["jobs_priority_1"], stats.queues["jobs_priority_2"]) == (0, 1)

    await service.clear_queue(everything=True)
    assert await redis.keys(f"{namespace}:*") == []
    assert await redis.get(f"{namespace}-not-ours") == "keep"
    assert await redis.get("jobs_priority_1_unrelated") == "keep"


async def test_unreachable_redis_is_one_clear_error(settings: Settings) -> None:
    url = "redis://:secret@127.0.0.1:1/0"
    async with QueueService(url, settings=settings) as service:
        with pytest.raises(RedisUnavailable) as raised:
            await service.add_job(EchoParams(text="hi"))
    message = str(raised.value)
    assert message.startswith("cannot reach Redis at redis://:***@127.0.0.1:1/0: ")
    assert "secret" not in message
