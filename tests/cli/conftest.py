"""CLI test helpers: ``cli(...)`` runs ``qworker --redis-url URL --namespace NS ...`` through
Typer's CliRunner against the session's real redis-server; the core API sets up state.

Every test runs in an empty directory (no stray ``.env``) with qworker's variables unset, and
gets qworker's logger back as it found it (``qworker work`` reconfigures it).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from typer.testing import CliRunner, Result

from qworker.cli import app
from qworker.clock import SYSTEM_CLOCK, Clock
from qworker.config import Settings
from qworker.service import QueueService
from qworker.worker import Worker

JOB_MODULE = "tests.cli.jobtypes"
REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 30.0
_ENV_PREFIXES = ("QWORKER_", "TWITTER_")
T = TypeVar("T")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) or name in ("REDIS_URL", "NO_COLOR", "COLUMNS"):
            monkeypatch.delenv(name)
    yield  # the qworker logger is restored by tests/conftest.py


@dataclass
class Cli:
    runner: CliRunner
    redis_url: str
    namespace: str

    def __call__(
        self, *args: str, input: str | bytes | None = None, env: dict[str, str] | None = None
    ) -> Result:
        """``qworker`` with this test's Redis and namespace."""
        return self.raw(
            "--redis-url",
            self.redis_url,
            "--namespace",
            self.namespace,
            *args,
            input=input,
            env=env,
        )

    def raw(
        self, *args: str, input: str | bytes | None = None, env: dict[str, str] | None = None
    ) -> Result:
        """``qworker`` with exactly these arguments."""
        return self.runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)

    def json(self, *args: str, input: str | None = None) -> Any:
        result = self(*args, "--json", input=input)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    def ok(self, *args: str, input: str | None = None) -> str:
        result = self(*args, input=input)
        assert result.exit_code == 0, result.stderr
        return result.stdout


@pytest.fixture
def cli(redis_url: str, namespace: str) -> Cli:
    return Cli(CliRunner(), redis_url, namespace)


@pytest.fixture
def settings(redis_url: str, namespace: str) -> Settings:
    return Settings(_env_file=None, redis_url=redis_url, namespace=namespace, dry_run=True)  # type: ignore[call-arg]


def one_error_line(result: Result, exit_code: int, *fragments: str) -> str:
    """The run failed with ``exit_code`` and said why in exactly one line, without a traceback."""
    assert result.exit_code == exit_code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == ""
    return lines[0]


def cli_job(**params: Any) -> dict[str, Any]:
    return {"job_type": "cli_job", **params}


def enqueue(settings: Settings, *jobs: dict[str, Any], priority: int = 3) -> list[str]:
    """Queue jobs through the Python API (the CLI's own enqueue is under test elsewhere)."""
    import tests.cli.jobtypes  # noqa: F401  (registers cli_job)

    async def go() -> list[str]:
        async with QueueService(settings=settings) as service:
            return [await service.add_job(job, priority) for job in jobs]

    return asyncio.run(go())


def call(settings: Settings, action: Callable[[QueueService], Awaitable[T]]) -> T:
    """Run ``action`` with a service of this test's namespace (set up or look at state)."""
    import tests.cli.jobtypes  # noqa: F401  (registers cli_job)

    async def go() -> T:
        async with QueueService(settings=settings) as service:
            return await action(service)

    return asyncio.run(go())


def run_burst(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
    """Run a burst worker over everything ready, on ``clock`` (a clock set in the past leaves
    retries that the real clock already finds due)."""

    async def go() -> None:
        async with QueueService(settings=settings, clock=clock) as service:
            worker = Worker(
                service, settings=settings, burst=True, clock=clock, job_modules=[JOB_MODULE]
            )
            await asyncio.wait_for(worker.run(), RUN_TIMEOUT_S)

    asyncio.run(go())
