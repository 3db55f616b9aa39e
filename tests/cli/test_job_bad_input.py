"""Bad input to the job-control commands: one stderr line (never a traceback) with its exit code
(1 for an id that names no job, 2 for what cannot be an id or a value), and nothing already
queued, paused or held is touched."""

from __future__ import annotations

from typing import Any

import pytest

from qworker.config import Settings
from qworker.service import QueueService
from tests.cli.conftest import Cli, call, cli_job, one_error_line

AMBIGUOUS = ("abcdef-one", "abcdef-two")
UNKNOWN = "0123456789abcdef"

CASES: dict[str, tuple[tuple[str, ...], int, tuple[str, ...]]] = {
    # ids
    "show unknown id": (("job", "show", UNKNOWN), 1, (f"no job {UNKNOWN}",)),
    "wait unknown id": (("job", "wait", UNKNOWN), 1, (f"no job {UNKNOWN}",)),
    "cancel unknown id": (("job", "cancel", UNKNOWN), 1, (f"no job {UNKNOWN}",)),
    "run unknown id": (("job", "run", UNKNOWN), 1, (f"no job {UNKNOWN}",)),
    "short unknown prefix": (("job", "show", "abc"), 1, ("at least 6 characters",)),
    "malformed id": (("job", "show", "a b"), 2, ("'a b' is not a job id",)),
    "malformed id to cancel": (("job", "cancel", "x*"), 2, ("is not a job id",)),
    "id of 65 characters": (("job", "wait", "x" * 65), 2, ("is not a job id",)),
    "ambiguous prefix": (("job", "show", "abcdef"), 2, ("matches 2 jobs", *AMBIGUOUS)),
    "ambiguous prefix to cancel": (("job", "cancel", "abcdef-"), 2, ("matches 2 jobs",)),
    "no id": (("job", "show"), 2, ("Missing argument 'ID'",)),
    # durations
    "timeout garbage": (("job", "wait", "abcdef-one", "--timeout", "garbage"), 2, ("--timeout",)),
    "timeout zero": (("job", "wait", "abcdef-one", "--timeout", "0"), 2, ("not a positive",)),
    "wait garbage": (("job", "cancel", "abcdef-one", "--wait", "soon"), 2, ("--wait", "90s")),
    "wait negative": (("job", "cancel", "abcdef-one", "--wait", "-1"), 2, ("negative",)),
    "pause for garbage": (("pause", "-t", "cli_job", "--for", "garbage"), 2, ("--for", "2h")),
    "pause for nan": (("pause", "-p", "3", "--for", "nan"), 2, ("not a finite number",)),
    "pause neither": (("pause", "--for", "1h"), 2, ("give --priority or --job-type",)),
    "resume both": (("resume", "-p", "3", "-t", "cli_job"), 2, ("give --priority",)),
    "pause a type with a newline": (("pause", "-t", "a\nb"), 2, ("is not a job type name",)),
    # lists
    "unknown state": (("jobs", "list", "--state", "finished"), 2, ("--state",)),
    "cursor not from a list": (("jobs", "list", "--cursor", "nonsense"), 2, ("not a cursor",)),
    "limit 0": (("jobs", "list", "--limit", "0"), 2, ("--limit",)),
    "limit over 1000": (("jobs", "list", "-n", "1001"), 2, ("--limit",)),
    "priority 5": (("jobs", "list", "-p", "5"), 2, ("--priority",)),
    # unique enqueue
    "unique until never": (
        ("enqueue", "tweet", "hi", "--unique-key", "k", "--unique-until", "never"),
        2,
        ("--unique-until",),
    ),
    "unique for garbage": (
        ("enqueue", "tweet", "hi", "--unique-key", "k", "--unique-for", "forever"),
        2,
        ("--unique-for", "cannot read the duration"),
    ),
}


def snapshot(settings: Settings) -> dict[str, Any]:
    """Every list, set and job record of the namespace, and the stats."""

    async def read(service: QueueService) -> dict[str, Any]:
        keys = sorted(
            [key async for key in service.redis.scan_iter(match=f"{service.keys.prefix}*")]
        )
        state: dict[str, Any] = {"stats": (await service.get_queue_stats()).model_dump()}
        for key in keys:
            kind = await service.redis.type(key)
            if kind == "list":
                state[key] = await service.redis.lrange(key, 0, -1)
            elif kind == "zset":
                state[key] = await service.redis.zrange(key, 0, -1, withscores=True)
            elif kind == "hash":
                state[key] = await service.redis.hgetall(key)
            else:
                state[key] = kind
        return state

    return call(settings, read)


@pytest.fixture
def queued(settings: Settings) -> dict[str, Any]:
    """Two jobs whose ids share a prefix, one scheduled, and a paused priority."""

    async def setup(service: QueueService) -> None:
        for job_id in AMBIGUOUS:
            await service.add_job(cli_job(), 2, job_id=job_id)
        await service.add_job(cli_job(), 3, delay_s=3600)
        await service.pause(priority=4)

    call(settings, setup)
    state = snapshot(settings)
    assert [key for key in state if key.endswith(AMBIGUOUS)], state  # the records are in it
    return state


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_line_and_touches_nothing(
    cli: Cli, settings: Settings, queued: dict[str, Any], name: str
) -> None:
    args, code, fragments = CASES[name]
    line = one_error_line(cli(*args), code, *fragments)
    assert "Traceback" not in line and "unexpected error" not in line
    after = snapshot(settings)
    assert after == queued
    assert after["stats"]["total_jobs"] == 2 and after["stats"]["scheduled"] == 1
