"""``clear`` and ``trim_dead_letter`` delete in bounded batches: one script call touches at most
1,000 entries (a queue of millions must not block Redis for seconds), and the service loops
until the work is done."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from qworker.clock import ManualClock
from qworker.config import Settings
from qworker.scripts import DELETE_BATCH
from qworker.service import QueueService
from tests.service.jobtypes import EchoParams

pytestmark = pytest.mark.usefixtures("redis_server")

DAY_MS = 86_400_000


async def test_one_clear_call_deletes_one_batch_and_the_service_finishes(
    service: QueueService, redis: aioredis.Redis
) -> None:
    k = service.keys
    ids = await service.add_jobs([EchoParams(text=str(n)) for n in range(2500)], priority=4)
    await redis.lpush(k.priority(4), "x" * 80)  # a hand-pushed payload: no hash behind it
    assert await service.run(service.scripts.clear([k.priority(4)], keep_ms=0)) == DELETE_BATCH
    assert await redis.llen(k.priority(4)) == 2501 - DELETE_BATCH

    assert await service.clear_queue([4]) == 2501 - DELETE_BATCH
    assert await redis.exists(k.priority(4)) == 0
    assert await redis.exists(*(k.job(job_id) for job_id in ids)) == 0


async def test_clear_spreads_a_batch_over_several_queues(
    service: QueueService, redis: aioredis.Redis, clock: ManualClock
) -> None:
    k = service.keys
    await service.add_jobs([EchoParams(text=str(n)) for n in range(700)], priority=1)
    await service.add_jobs([EchoParams(text=str(n)) for n in range(700)], priority=2)
    await redis.zadd(k.retry, {f"r{n}": clock.now_ms() + n for n in range(700)})
    queues = [k.priority(1), k.priority(2), k.retry]
    assert await service.run(service.scripts.clear(queues, keep_ms=0)) == DELETE_BATCH
    left = [await redis.llen(k.priority(1)), await redis.llen(k.priority(2))]
    assert left == [0, 400] and await redis.zcard(k.retry) == 700
    assert await service.clear_queue([1, 2], retry=True) == 1100
    assert await redis.zcard(k.retry) == 0


async def fill_dead_letter(redis: aioredis.Redis, service: QueueService, count: int) -> None:
    """``count`` dead jobs that failed one a millisecond apart, ending now."""
    k, now_ms = service.keys, service.clock.now_ms()
    pipe = redis.pipeline(transaction=False)
    for n in range(count):
        pipe.hset(k.job(f"dead-{n}"), mapping={"payload": "{}", "attempts": 4})
        pipe.zadd(k.dead_letter, {f"dead-{n}": now_ms - count + 1 + n})
    await pipe.execute()


async def test_one_trim_call_drops_one_batch_and_the_service_finishes(
    settings: Settings, clock: ManualClock, redis: aioredis.Redis
) -> None:
    capped = settings.model_copy(update={"dead_letter_max_jobs": 10})
    async with QueueService(settings=capped, clock=clock) as service:
        k = service.keys
        await fill_dead_letter(redis, service, 2500)
        far_past_ms = clock.now_ms() - 365 * DAY_MS  # no entry is too old: the count decides
        call = service.scripts.trim_dead_letter(far_past_ms, 10, keep_ms=0)
        assert await service.run(call) == DELETE_BATCH
        assert await redis.zcard(k.dead_letter) == 2500 - DELETE_BATCH

        assert await service.trim_dead_letter() == 2490 - DELETE_BATCH
        kept = await redis.zrange(k.dead_letter, 0, -1)
        assert kept == [f"dead-{n}" for n in range(2490, 2500)]  # the newest
        assert await redis.exists(k.job("dead-0"), k.job("dead-2489")) == 0
        assert await redis.exists(k.job("dead-2490")) == 1
        assert (await service.get_queue_stats()).dead_letter_dropped == 2490


async def test_trim_drops_what_is_too_old_even_under_the_count(
    service: QueueService, clock: ManualClock, redis: aioredis.Redis
) -> None:
    await fill_dead_letter(redis, service, 5)
    max_age_ms = int(service.settings.dead_letter_max_age_days * DAY_MS)
    clock.set_ms(clock.now_ms() + max_age_ms - 1)
    assert await service.trim_dead_letter() == 3  # failed more than the max age ago
    assert await redis.zrange(service.keys.dead_letter, 0, -1) == ["dead-3", "dead-4"]
