"""What a producer can ask of QueueService, on a real redis-server: each job's own retry limit,
its own id (a retried enqueue queues nothing twice), schedules in range, and bulk enqueues that
say exactly which jobs were queued when Redis refuses part of them."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from qworker.clock import ManualClock
from qworker.config import Settings
from qworker.connection import async_client
from qworker.errors import ConfigurationError, EnqueueIncomplete, ValidationFailed
from qworker.service import QueueService
from tests.redis_server import RedisServer
from tests.service.jobtypes import CountedEchoJob, EchoParams, OwnRetriesJob, RetriesParams

pytestmark = pytest.mark.usefixtures("redis_server")


async def stored_max_retries(service: QueueService, job_ids: list[str]) -> list[int | None]:
    records = [await service.get_job(job_id) for job_id in job_ids]
    return [record.max_retries if record else None for record in records]


# -- each job's own retry limit (get_retry_config is an instance method) --------------------


async def test_each_job_stores_its_own_retry_limit(service: QueueService) -> None:
    one_by_one = [
        await service.add_job(RetriesParams(retries=0)),
        await service.add_job(RetriesParams(retries=10)),
    ]
    assert await stored_max_retries(service, one_by_one) == [0, 10]
    in_bulk = await service.add_jobs([RetriesParams(retries=n) for n in (10, 0, 5)])
    assert await stored_max_retries(service, in_bulk) == [10, 0, 5]


async def test_a_job_type_with_the_default_config_builds_no_job(service: QueueService) -> None:
    before_default, before_own = CountedEchoJob.built, OwnRetriesJob.built
    job_ids = await service.add_jobs([{"job_type": "counted_echo", "text": "x"}] * 3)
    await service.add_job(RetriesParams(retries=1))
    assert CountedEchoJob.built == before_default  # BaseJob's config: the default, no job
    assert OwnRetriesJob.built == before_own + 1  # its own config: asked, per job
    assert await stored_max_retries(service, job_ids) == [3, 3, 3]


async def test_a_retry_config_that_raises_refuses_the_job(service: QueueService) -> None:
    with pytest.raises(ValidationFailed, match=r"get_retry_config\(\) failed: RuntimeError"):
        await service.add_jobs([RetriesParams(retries=1), RetriesParams(retries=-1)])
    assert (await service.get_queue_stats()).total_jobs == 0


# -- the caller's own job id ---------------------------------------------------------------


async def test_a_retried_enqueue_with_the_same_id_queues_nothing(
    service: QueueService, redis: aioredis.Redis
) -> None:
    first = await service.enqueue_job(EchoParams(text="once"), priority=2, job_id="order-42")
    again = await service.enqueue_job(EchoParams(text="twice"), priority=1, job_id="order-42")
    assert (first.job_id, first.created) == ("order-42", True)
    assert (again.job_id, again.created) == ("order-42", False)
    assert await service.add_job(EchoParams(text="thrice"), job_id="order-42") == "order-42"
    assert await redis.lrange(service.keys.priority(2), 0, -1) == ["order-42"]
    assert (await service.get_queue_stats()).total_jobs == 1
    record = await service.get_job("order-42")
    assert record is not None and '"once"' in record.payload  # the first one stays as it was


async def test_a_batch_with_ids_is_safe_to_send_again(service: QueueService) -> None:
    jobs = [EchoParams(text=str(n)) for n in range(3)]
    ids = ["a.1", "b:2", "C_3-x"]
    assert await service.add_jobs(jobs, job_ids=ids) == ids
    assert await service.add_jobs(jobs, job_ids=ids) == ids
    assert (await service.get_queue_stats()).total_jobs == 3


@pytest.mark.parametrize(
    ("job_id", "message"),
    [
        ("", "job id '' is not valid"),
        ("has space", "is not valid: use 1 to 64 characters"),
        ("x" * 65, "is not valid"),
        ("semi;colon", "is not valid"),
        ("naïve", "is not valid"),
        ("new\nline", "is not valid"),
    ],
)
async def test_a_bad_job_id_is_refused(service: QueueService, job_id: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        await service.add_job(EchoParams(text="x"), job_id=job_id)
    assert (await service.get_queue_stats()).total_jobs == 0


async def test_batch_ids_must_match_the_jobs_and_differ(service: QueueService) -> None:
    jobs = [EchoParams(text="a"), EchoParams(text="b")]
    with pytest.raises(ValidationFailed, match="1 job ids for 2 jobs"):
        await service.add_jobs(jobs, job_ids=["one"])
    with pytest.raises(ValidationFailed, match="must all differ"):
        await service.add_jobs(jobs, job_ids=["same", "same"])
    with pytest.raises(ValidationFailed, match="is not valid"):
        await service.add_jobs(jobs, job_ids=["fine", "not fine"])
    assert (await service.get_queue_stats()).total_jobs == 0


# -- schedules and namespaces in range ----------------------------------------------------


@pytest.mark.parametrize(
    ("delay_s", "run_at_ms", "message"),
    [
        (math.nan, None, "delay must be a finite number of seconds, not nan"),
        (math.inf, None, "delay must be a finite number of seconds, not inf"),
        (1e308, None, "ends after the year 9999"),
        (-1.0, None, "must not be negative"),
        (None, -62_135_596_800_000, "out of range: it must fall between 1970 and"),
        (None, 10**20, "out of range"),
    ],
)
async def test_a_schedule_out_of_range_is_refused(
    service: QueueService, delay_s: float | None, run_at_ms: int | None, message: str
) -> None:
    await service.add_job(EchoParams(text="kept"))
    with pytest.raises(ValidationFailed, match=message):
        await service.add_job(EchoParams(text="x"), delay_s=delay_s, run_at_ms=run_at_ms)
    stats = await service.get_queue_stats()
    assert (stats.total_jobs, stats.scheduled) == (1, 0)


async def test_the_last_day_of_9999_is_still_a_start_time(
    service: QueueService, clock: ManualClock
) -> None:
    job_id = await service.add_job(EchoParams(text="x"), run_at_ms=253_402_300_799_999)
    record = await service.get_job(job_id)
    assert record is not None and record.run_at_ms == 253_402_300_799_999


@pytest.mark.parametrize("namespace", ["a b", "tab\there", "café", "x" * 65, "new\nline"])
def test_a_namespace_a_key_should_not_carry_is_refused(redis_url: str, namespace: str) -> None:
    with pytest.raises(ConfigurationError, match="namespace"):
        QueueService(redis_url, namespace=namespace)
    with pytest.raises(ValueError, match="namespace"):
        Settings(_env_file=None, namespace=namespace)  # type: ignore[call-arg]


# -- a bulk enqueue that Redis refuses in part --------------------------------------------


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis that refuses writes once full (noeviction), as the README asks for."""
    with RedisServer(tmp_path, extra_args=["--maxmemory-policy", "noeviction"]) as server:
        yield server


@pytest.fixture
async def small_admin(small_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = async_client(small_server.url)
    yield client
    await client.aclose()


async def test_a_bulk_enqueue_refused_in_part_names_the_queued_ids(
    small_server: RedisServer,
    small_admin: aioredis.Redis,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("qworker.service.ENQUEUE_CHUNK", 10)  # 4 script calls of ~500 kB
    settings = Settings(  # type: ignore[call-arg]
        redis_url=small_server.url, namespace=namespace, max_payload_bytes=60_000, _env_file=None
    )
    jobs = [
        EchoParams.model_construct(job_type="echo", text=f"{n:03}" + "x" * 50_000)
        for n in range(40)
    ]
    ids = [f"job-{n}" for n in range(40)]
    used = int((await small_admin.info("memory"))["used_memory"])
    # Room for two or three of the four calls: Redis refuses a script at its first write once
    # it is over maxmemory, so each call is queued whole or not at all.
    await small_admin.config_set("maxmemory", used + 1_200_000)
    async with QueueService(settings=settings) as service:
        with pytest.raises(EnqueueIncomplete) as raised:
            await service.add_jobs(jobs, job_ids=ids)
        error = raised.value
        assert error.queued_ids and error.not_queued_ids
        assert sorted(error.queued_ids + error.not_queued_ids) == sorted(ids)
        listed = await small_admin.lrange(service.keys.priority(3), 0, -1)
        assert sorted(listed) == sorted(error.queued_ids)  # exactly those, and nothing else
        message = str(error)
        assert f"{len(error.queued_ids)} of 40 jobs were queued" in message
        assert "Redis refused: command not allowed when used memory > 'maxmemory')" in message

        # The recovery it suggests: send the same batch again once Redis has room.
        await small_admin.config_set("maxmemory", 0)
        assert await service.add_jobs(jobs, job_ids=ids) == ids
        assert sorted(await small_admin.lrange(service.keys.priority(3), 0, -1)) == sorted(ids)
