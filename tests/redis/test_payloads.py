"""Payloads pushed by other programs straight into a priority list (``LPUSH <ns>:jobs_priority_2
'{"job_type": ...}'``): a good one is adopted and run, a bad one goes to the dead-letter queue
with the reason and the raw payload, and the worker carries on."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from qworker.models import JobError
from qworker.service import QueueService
from tests.jobtypes import probe, read_events

RunBurst = Callable[..., Awaitable[Any]]

ADOPTED_ID = re.compile(r"^[0-9a-f]{32}-\d+$")  # id_base '-' n, given by the claim script


async def push_raw(service: QueueService, priority: int, *payloads: str | bytes) -> None:
    for payload in payloads:
        await service.redis.lpush(service.keys.priority(priority), payload)


async def test_hand_pushed_job_is_adopted_and_run(
    service: QueueService, run_burst: RunBurst, probe_log: Path
) -> None:
    await push_raw(service, 2, json.dumps(probe(probe_log, tag="by-hand")))

    await run_burst()

    events = read_events(probe_log)
    assert [(e.kind, e.attempt, e.tag) for e in events] == [
        ("start", 1, "by-hand"),
        ("done", 1, "by-hand"),
    ]
    assert ADOPTED_ID.match(events[0].job_id), events[0].job_id
    stats = await service.get_queue_stats()
    assert (stats.total_processed, stats.total_jobs, stats.in_flight, stats.dead_letter) == (
        1,
        0,
        0,
        0,
    )


async def test_hand_pushed_jobs_keep_fifo_and_priority_with_enqueued_ones(
    service: QueueService, run_burst: RunBurst, probe_log: Path
) -> None:
    await push_raw(service, 3, json.dumps(probe(probe_log, tag="raw-p3-first")))
    await service.add_job(probe(probe_log, tag="queued-p3-second"), priority=3)
    await push_raw(service, 1, json.dumps(probe(probe_log, tag="raw-p1")))

    await run_burst()

    assert [e.tag for e in read_events(probe_log, "start")] == [
        "raw-p1",
        "raw-p3-first",
        "queued-p3-second",
    ]


BAD_PAYLOADS = [
    pytest.param("not json {", "not valid JSON", id="malformed-json"),
    pytest.param("", "not valid JSON", id="empty"),
    pytest.param("[1, 2]", "must be a JSON object", id="json-array"),
    pytest.param('"a string"', "must be a JSON object", id="json-string"),
    pytest.param('{"log_path": "/tmp/x"}', 'no "job_type"', id="no-job-type"),
    pytest.param('{"job_type": 7}', 'no "job_type"', id="job-type-not-a-string"),
    pytest.param('{"job_type": "probe"}', "log_path", id="missing-field"),
    pytest.param(
        '{"job_type": "probe", "log_path": "/tmp/x", "sleep_s": -1}',
        "sleep_s",
        id="invalid-field",
    ),
    pytest.param(
        '{"job_type": "probe", "log_path": "/tmp/x", "colour": "red"}',
        "colour: unknown field",
        id="unknown-field",
    ),
    pytest.param(
        json.dumps({"job_type": "probe", "log_path": "x" * 70_000}),
        "the limit is 65536",
        id="too-large",
    ),
]


@pytest.mark.parametrize(("payload", "reason"), BAD_PAYLOADS)
async def test_bad_hand_pushed_payload_goes_to_dead_letter_with_reason(
    service: QueueService, run_burst: RunBurst, probe_log: Path, payload: str, reason: str
) -> None:
    await push_raw(service, 2, payload)
    await service.add_job(probe(probe_log, tag="good"), priority=2)  # behind the bad one

    await run_burst()

    (dead,) = await service.list_dead()
    assert ADOPTED_ID.match(dead.id)
    assert dead.payload == payload  # kept exactly, for the operator to inspect or fix
    assert dead.priority == 2
    assert dead.error is not None
    assert dead.error.type == "InvalidPayload"
    assert reason in dead.error.message
    assert [e.tag for e in read_events(probe_log, "done")] == ["good"]  # the worker went on
    stats = await service.get_queue_stats()
    assert (stats.total_dead, stats.total_failed, stats.total_processed) == (1, 0, 1)
    assert (stats.total_jobs, stats.in_flight) == (0, 0)


async def test_hand_pushed_payload_of_an_unknown_type_waits_for_a_worker_that_knows_it(
    service: QueueService, run_burst: RunBurst, probe_log: Path
) -> None:
    await push_raw(service, 2, '{"job_type": "no_such_type"}')
    await service.add_job(probe(probe_log, tag="good"), priority=2)  # behind it

    await run_burst()

    stats = await service.get_queue_stats()
    assert (stats.scheduled, stats.dead_letter, stats.total_processed) == (1, 0, 1)
    (waiting_id,) = await service.redis.zrange(service.keys.scheduled, 0, -1)
    job = await service.get_job(waiting_id)
    assert job is not None and job.error is not None
    assert job.error.type == "UnknownJobType"
    assert "'no_such_type'" in job.error.message


async def test_deeply_nested_json_goes_to_dead_letter(
    service: QueueService, run_burst: RunBurst
) -> None:
    payload = "[" * 50_000  # 50 kB: under the payload size limit
    await push_raw(service, 2, payload)

    await run_burst()

    stats = await service.get_queue_stats()
    assert (stats.in_flight, stats.dead_letter) == (0, 1)
    (dead,) = await service.list_dead()
    assert dead.payload == payload
    assert dead.error is not None
    assert dead.error.type == "InvalidPayload"


async def test_payload_that_is_not_utf8_goes_to_dead_letter(
    service: QueueService, run_burst: RunBurst, probe_log: Path
) -> None:
    await push_raw(service, 2, b"\xff\xfe{not utf-8")
    await service.add_job(probe(probe_log, tag="good"), priority=2)

    await run_burst()

    # Read back without decoding: the raw bytes must be kept as they were pushed.
    raw = aioredis.Redis.from_url(service.settings.redis_url, decode_responses=False)
    async with raw:
        dead_ids = cast(list[bytes], await raw.zrange(service.keys.dead_letter, 0, -1))
        (job_key,) = [service.keys.job(dead_id.decode()) for dead_id in dead_ids]
        assert await raw.hget(job_key, "payload") == b"\xff\xfe{not utf-8"
        error_json = cast(bytes, await raw.hget(job_key, "error"))
        error = JobError.model_validate_json(error_json)
    assert error.type == "InvalidPayload"
    assert [e.tag for e in read_events(probe_log, "done")] == ["good"]
    stats = await service.get_queue_stats()
    assert (stats.in_flight, stats.dead_letter, stats.total_processed) == (0, 1, 1)
