"""Factories for the real-Redis tests: a ManualClock, a QueueService on it, burst workers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from qworker.clock import ManualClock
from qworker.config import Settings
from qworker.service import QueueService
from qworker.worker import Worker

JOB_MODULES = ["tests.jobtypes"]
# A burst worker on an in-process queue finishes in milliseconds; this only bounds a hang.
RUN_TIMEOUT_S = 30.0

MakeSettings = Callable[..., Settings]
MakeWorker = Callable[..., Worker]


def make_test_settings(redis_url: str, namespace: str, **overrides: Any) -> Settings:
    """Settings from arguments only: no ``.env`` file (and no QWORKER_* variable overrides
    what is given here)."""
    values: dict[str, Any] = {"redis_url": redis_url, "namespace": namespace, **overrides}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_settings(redis_url: str, namespace: str) -> MakeSettings:
    def make(**overrides: Any) -> Settings:
        return make_test_settings(redis_url, namespace, **overrides)

    return make


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings()


@pytest.fixture
async def service(settings: Settings, clock: ManualClock) -> AsyncIterator[QueueService]:
    """The producer/operator side, on the test's ManualClock."""
    async with QueueService(settings=settings, clock=clock) as queue_service:
        yield queue_service


@pytest.fixture
def make_worker(service: QueueService, clock: ManualClock) -> MakeWorker:
    """``make_worker(concurrency=4)``: a burst worker on the test's namespace, clock and a
    seeded random generator, with the probe job type loaded."""

    def make(**overrides: Any) -> Worker:
        options: dict[str, Any] = {
            "settings": service.settings,
            "burst": True,
            "clock": clock,
            "rng": random.Random(1234),
            "job_modules": JOB_MODULES,
            **overrides,
        }
        return Worker(service, **options)

    return make


@pytest.fixture
def run_burst(make_worker: MakeWorker) -> Callable[..., Any]:
    """``await run_burst(concurrency=2)``: make a burst worker, run it until nothing is ready."""

    async def run(**overrides: Any) -> Worker:
        worker = make_worker(**overrides)
        await asyncio.wait_for(worker.run(), RUN_TIMEOUT_S)
        return worker

    return run


@pytest.fixture
def probe_log(tmp_path: Path) -> Path:
    """The file probe jobs append their ``start``/``done`` lines to."""
    return tmp_path / "probe.log"
