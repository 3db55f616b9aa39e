"""Schedule fixtures: a service on the session's real redis-server in a fresh namespace, on a
clock the test moves, and schedulers that share it (as workers on several hosts would)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

import tests.schedules.jobtypes  # noqa: F401  (registers the job types)
from qworker.clock import ManualClock
from qworker.config import Settings
from qworker.schedule_store import ScheduleStore
from qworker.scheduler import Scheduler
from qworker.service import QueueService


def ms(text: str) -> int:
    """``2026-03-29T01:00:00`` (UTC) -> epoch milliseconds."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(ms("2026-01-05T08:00:00"))


@pytest.fixture
def settings(redis_url: str, namespace: str) -> Settings:
    return Settings(redis_url=redis_url, namespace=namespace, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
async def service(settings: Settings, clock: ManualClock) -> AsyncIterator[QueueService]:
    async with QueueService(settings=settings, clock=clock) as service:
        yield service


@pytest.fixture
def store(service: QueueService) -> ScheduleStore:
    return ScheduleStore(service)


@pytest.fixture
async def make_scheduler(
    settings: Settings, clock: ManualClock
) -> AsyncIterator[Callable[[], Scheduler]]:
    """Schedulers with connections of their own, as on separate workers."""
    services: list[QueueService] = []

    def make() -> Scheduler:
        services.append(QueueService(settings=settings, clock=clock))
        return Scheduler(services[-1], clock)

    yield make
    for service in services:
        await service.close()
