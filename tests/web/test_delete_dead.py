"""``QueueService.delete_dead`` (the web UI's DLQ delete): dead jobs go for good, with their
records; an id in any other state is left alone, whatever the form said."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import tests.jobtypes  # noqa: F401 - registers the probe job type
from qworker.config import Settings
from qworker.errors import ValidationFailed
from qworker.service import QueueService
from qworker.worker import Worker
from tests.jobtypes import probe


@pytest.fixture
async def service(redis_url: str, namespace: str) -> AsyncIterator[QueueService]:
    settings = Settings(redis_url=redis_url, namespace=namespace, _env_file=None)  # type: ignore[call-arg]
    async with QueueService(settings=settings) as service:
        yield service


async def test_only_dead_jobs_are_deleted(service: QueueService, tmp_path: Path) -> None:
    log = tmp_path / "probe.log"
    dead = [await service.add_job(probe(log, outcome="permanent"), 1) for _ in range(2)]
    await Worker(service, burst=True, job_modules=["tests.jobtypes"]).run()
    queued = await service.add_job(probe(log), 1)
    deleted = await service.delete_dead([dead[0], queued, "no-such-job", dead[0]])
    assert deleted == [dead[0]]
    assert await service.get_job(dead[0]) is None
    assert (await service.get_dead(dead[1])).state == "dead"
    assert (await service.find_job(queued)).state == "queued"
    stats = await service.get_queue_stats()
    assert (stats.dead_letter, stats.total_jobs) == (1, 1)
    with pytest.raises(ValidationFailed):
        await service.delete_dead([])
