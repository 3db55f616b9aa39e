"""Workflow tests: the real-Redis fixtures of tests/redis, with the flow step job type."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hypothesis  # noqa: F401  (see below)
import pytest

import tests.flows.jobtypes  # noqa: F401  (registers the flowstep job type)
from qworker.service import QueueService
from qworker.worker import Worker
from tests.redis.conftest import (  # noqa: F401  (fixtures)
    RUN_TIMEOUT_S,
    clock,
    make_settings,
    service,
    settings,
)

# hypothesis is imported first: imported late (pytest's summary does, once anything imported
# trio, as `qworker work` does), trio's hook makes it warn, and filterwarnings=error fails the
# session at its very end. The whole suite imports it early anyway (tests/redis).

JOB_MODULES = ["tests.flows.jobtypes", "tests.jobtypes"]


@pytest.fixture
def run_burst(service: QueueService, clock: Any) -> Callable[..., Any]:  # noqa: F811
    """``await run_burst()``: a burst worker that runs until nothing is ready."""

    async def run(**overrides: Any) -> Worker:
        options: dict[str, Any] = {
            "settings": service.settings,
            "burst": True,
            "clock": clock,
            "job_modules": JOB_MODULES,
            **overrides,
        }
        worker = Worker(service, **options)
        await asyncio.wait_for(worker.run(), RUN_TIMEOUT_S)
        return worker

    return run


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "steps.jsonl"
