"""``qworker job wait|cancel|run`` against a worker running in a thread of this process.

The worker runs ``probe`` jobs (tests/jobtypes.py), which log when they start and can sleep,
sleep inside a cancel shield, fail or return a result.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qworker.config import Settings
from qworker.service import QueueService
from qworker.worker import Worker
from tests.cli.conftest import JOB_MODULE, Cli, call, cli_job, enqueue, one_error_line
from tests.jobtypes import probe, read_events


@pytest.fixture
def worker(settings: Settings) -> Iterator[None]:
    """A worker (concurrency 2) running in its own thread and event loop for the test."""
    ready = threading.Event()
    running: dict[str, Any] = {}

    async def serve() -> None:
        async with QueueService(settings=settings) as service:
            modules = ["tests.jobtypes", JOB_MODULE]
            running["worker"] = Worker(
                service, settings=settings, concurrency=2, job_modules=modules, idle_poll_s=0.1
            )
            running["loop"] = asyncio.get_running_loop()
            ready.set()
            await running["worker"].run()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield
    stop = running["worker"].request_stop
    running["loop"].call_soon_threadsafe(lambda: stop(immediate=True))
    thread.join(15)
    assert not thread.is_alive()


def add(settings: Settings, data: dict[str, Any]) -> str:
    async def go(service: QueueService) -> str:
        return await service.add_job(data)

    return call(settings, go)


def started(log: Path, job_id: str) -> None:
    """Wait until the probe job has begun to run (it logs 'start' inside execute())."""
    deadline = time.monotonic() + 10
    while not any(event.job_id == job_id for event in read_events(log, "start")):
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.02)


@pytest.mark.usefixtures("worker")
def test_wait_exits_0_when_done_and_1_when_dead(
    cli: Cli, settings: Settings, tmp_path: Path
) -> None:
    job_id = add(settings, probe(tmp_path / "p.log", sleep_s=0.3, result={"tweet_id": "7"}))
    result = cli("job", "wait", job_id[:6], "--timeout", "10s")  # blocks while it runs
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    assert result.stdout == f'job {job_id} done; result {{"tweet_id": "7"}}\n'
    record = cli.json("job", "wait", job_id)  # already done: at once
    assert (record["state"], record["result"]) == ("done", {"tweet_id": "7"})

    dead = add(settings, probe(tmp_path / "p.log", sleep_s=0.2, outcome="permanent"))
    result = cli("job", "wait", dead, "--timeout", "10s")
    one_error_line(result, 1, f"job {dead} is dead after 1 attempt(s)", "never works (attempt 1)")
    as_json = cli("job", "wait", dead, "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["state"] == "dead"
    assert as_json.stderr.startswith(f"error: job {dead} is dead")


@pytest.mark.usefixtures("worker")
def test_a_running_job_times_out_the_wait_then_is_canceled_while_it_runs(
    cli: Cli, settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "p.log"
    job_id = add(settings, probe(log, sleep_s=30))
    started(log, job_id)
    shown = cli.json("job", "show", job_id)
    assert shown["state"] == "running" and shown["worker_id"]

    began = time.monotonic()
    result = cli("job", "wait", job_id, "--timeout", "0.5s")
    one_error_line(result, 1, f"job {job_id} is still running after 0.5s")
    assert 0.4 < time.monotonic() - began < 5

    result = cli("job", "cancel", job_id)  # waits (up to 5s) for its worker to stop it
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    assert result.stdout == f"canceled job {job_id} while it ran\n"
    assert [event.kind for event in read_events(log)] == ["start", "cancelled"]
    one_error_line(cli("job", "wait", job_id), 1, f"job {job_id} was canceled")
    assert cli.json("stats")["canceled"] == 1


@pytest.mark.usefixtures("worker")
def test_a_cancel_without_waiting_is_only_requested(
    cli: Cli, settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "p.log"
    job_id = add(settings, probe(log, sleep_s=30))
    started(log, job_id)
    result = cli("job", "cancel", job_id, "--wait", "0", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "job_id": job_id,
        "outcome": "requested",
        "state": "running",
        "previous_state": "running",
    }
    result = cli("job", "wait", job_id, "--timeout", "10s")
    one_error_line(result, 1, f"job {job_id} was canceled")
    assert [event.kind for event in read_events(log)] == ["start", "cancelled"]


@pytest.mark.usefixtures("worker")
def test_a_cancel_that_comes_too_late_says_so(cli: Cli, settings: Settings, tmp_path: Path) -> None:
    """A job inside its cancel shield (a tweet being posted) finishes; the cancel failed."""
    log = tmp_path / "p.log"
    job_id = add(settings, probe(log, sleep_s=1.0, shielded=True, result="posted"))
    started(log, job_id)
    result = cli("job", "cancel", job_id, "--wait", "10s")
    one_error_line(result, 1, f"job {job_id} finished done before the cancel reached it")

    record = cli.json("job", "show", job_id)
    assert (record["state"], record["result"]) == ("done", "posted")
    assert record["cancel_requested_at_ms"] is not None
    table = cli("job", "show", job_id, env={"COLUMNS": "300"}).stdout
    [line] = [line for line in table.splitlines() if line.split("  ")[0] == "cancel"]
    assert line.split()[1:4] == ["cancel", "requested", "at"]
    assert line.rstrip().endswith(
        "arrived after the job could no longer be stopped; it finished done"
    )


def test_cancel_of_a_finished_job_is_exit_1(cli: Cli, settings: Settings) -> None:
    [queued] = enqueue(settings, cli_job())
    assert cli.json("job", "cancel", queued)["outcome"] == "canceled"
    one_error_line(cli("job", "cancel", queued), 1, f"job {queued} already finished (canceled)")
    result = cli("job", "cancel", queued, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["outcome"] == "finished"
    assert result.stderr == f"error: job {queued} already finished (canceled)\n"


def test_run_moves_a_scheduled_job_to_the_front(cli: Cli, settings: Settings) -> None:
    [first] = enqueue(settings, cli_job(), priority=2)
    later = cli.ok("enqueue", "json", json.dumps(cli_job()), "--import", JOB_MODULE,
                   "--delay", "1h", "-p", "2").strip()  # fmt: skip
    assert cli.ok("job", "run", later[:10]) == (
        f"moved job {later} (was scheduled) to the front of priority 2\n"
    )
    page = cli.json("jobs", "list", "--priority", "2")
    assert [job["id"] for job in page["jobs"]] == [later, first]
    assert cli.json("stats")["scheduled"] == 0
    line = one_error_line(cli("job", "run", later), 1, f"job {later} is queued, not waiting")
    assert "nothing to run now" in line
    assert [job["id"] for job in cli.json("jobs", "list")["jobs"]] == [later, first]
