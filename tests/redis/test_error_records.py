"""An error record stays small whatever the job raised: a 1 MB message makes an 8 KiB record."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from qworker.error_records import ERROR_RECORD_MAX_BYTES, error_json
from qworker.service import QueueService
from tests.redis.faulty_jobs import faulty

RunBurst = Callable[..., Awaitable[Any]]

MEGABYTE = 1_000_000


@pytest.mark.parametrize("depth", [0, 30], ids=["shallow", "deep-traceback"])
async def test_a_huge_exception_message_makes_a_bounded_dead_letter_record(
    service: QueueService, run_burst: RunBurst, probe_log: Path, depth: int
) -> None:
    job_id = await service.add_job(faulty(probe_log, message_chars=MEGABYTE, depth=depth))

    await run_burst()

    stored = await service.redis.hget(service.keys.job(job_id), "error")
    assert stored is not None
    assert len(stored.encode()) <= ERROR_RECORD_MAX_BYTES
    record = (await service.get_dead(job_id)).error
    assert record is not None
    assert record.type == "PermanentJobError"
    assert record.message.startswith("x" * 1000)
    # The frames nearest the raise survive, not only the tail of the message.
    assert "raise_from_depth" in record.traceback
    assert record.traceback.rstrip().endswith("more characters)")


@pytest.mark.parametrize(
    ("kind", "message", "trace"),
    [
        ("E", "m" * MEGABYTE, ""),
        ("E", "m", "t" * MEGABYTE),
        ("E" * MEGABYTE, "m" * MEGABYTE, "t" * MEGABYTE),
        ("E", "\x00" * MEGABYTE, "\x01" * MEGABYTE),  # each escapes to six bytes of JSON
        ("E", "é" * MEGABYTE, "😀" * MEGABYTE),  # several bytes per character
    ],
    ids=["message", "traceback", "all", "control-chars", "multibyte"],
)
def test_every_error_record_fits_the_cap(kind: str, message: str, trace: str) -> None:
    text = error_json(kind, message, trace)
    assert len(text.encode()) <= ERROR_RECORD_MAX_BYTES
    record = json.loads(text)
    assert record["message"][:1] == message[:1]
    assert record["traceback"].endswith(trace[-1:])  # the frames nearest the raise are kept


def test_lone_surrogates_in_a_message_do_not_break_the_record() -> None:
    """A job that decoded bytes with ``surrogateescape`` may raise with such a message."""
    record = json.loads(error_json("E", "bad \udc80 byte", "trace \ud800"))
    assert (record["message"], record["traceback"]) == ("bad ? byte", "trace ?")
