"""A real Prometheus scrapes a real ``qworker work --metrics-port`` and ``qworker metrics serve``
while 200 jobs run (some retried, some dead): its HTTP API must give the exact counts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qworker.config import Settings
from qworker.service import QueueService
from tests.metrics.jobtypes import RATE_KEY, metered
from tests.metrics.prometheus_server import PrometheusServer
from tests.redis_server import _free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
OK, FAIL_ONCE, PERMANENT = 150, 30, 20


def _qworker(redis_url: str, namespace: str, *args: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QWORKER_", "TWITTER_"))}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "qworker", "--redis-url", redis_url, "--namespace", namespace,
             *args],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    import socket

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}: {log.read_text()}")


@pytest.fixture
def processes(
    redis_url: str, namespace: str, tmp_path: Path
) -> Iterator[tuple[PrometheusServer, subprocess.Popen[bytes], Path]]:
    worker_port, exporter_port = _free_port(), _free_port()
    worker_log, exporter_log = tmp_path / "worker.log", tmp_path / "exporter.log"
    worker = _qworker(
        redis_url, namespace, "work", "-c", "8", "--dry-run", "--import", "tests.metrics.jobtypes",
        "--metrics-port", str(worker_port), log=worker_log,
    )  # fmt: skip
    exporter = _qworker(
        redis_url, namespace, "metrics", "serve", "--port", str(exporter_port), log=exporter_log
    )
    try:
        _wait_listening(worker_port, worker, worker_log)
        _wait_listening(exporter_port, exporter, exporter_log)
        targets = {
            "qworker-workers": [f"127.0.0.1:{worker_port}"],
            "qworker-queue": [f"127.0.0.1:{exporter_port}"],
        }
        with PrometheusServer(tmp_path, targets) as prometheus:
            yield prometheus, worker, worker_log
    finally:
        assert _stop(exporter) == 0, exporter_log.read_text()
        _stop(worker)


async def _enqueue(settings: Settings, jobs: list[dict[str, str]], priority: int) -> None:
    async with QueueService(settings=settings) as service:
        await service.add_jobs(jobs, priority)


async def _stats(settings: Settings) -> tuple[int, int, int, dict[str, int]]:
    async with QueueService(settings=settings) as service:
        stats = await service.get_queue_stats()
        limits = await service.get_rate_limit_stats()
    (limit,) = [one for one in limits if one.rate_key == RATE_KEY]
    used = {"day": limit.used_last_day, "hour": limit.used_last_hour}
    return stats.total_processed, stats.total_failed, stats.total_dead, used


def test_prometheus_counts_every_outcome_and_the_queue(
    processes: tuple[PrometheusServer, subprocess.Popen[bytes], Path],
    redis_url: str,
    namespace: str,
) -> None:
    prometheus, worker, worker_log = processes
    settings = Settings(_env_file=None, redis_url=redis_url, namespace=namespace)  # type: ignore[call-arg]
    jobs = [metered("ok")] * OK + [metered("fail_once")] * FAIL_ONCE
    jobs += [metered("permanent")] * PERMANENT
    asyncio.run(_enqueue(settings, jobs, priority=2))

    prometheus.wait_for(
        'sum by (outcome) (qworker_jobs_total{job_type="metered"})',
        {"outcome=done": OK + FAIL_ONCE, "outcome=retried": FAIL_ONCE, "outcome=dead": PERMANENT},
    )
    processed, failed, dead, used = asyncio.run(_stats(settings))
    assert (processed, dead) == (OK + FAIL_ONCE, PERMANENT)
    for name, value in (("processed", processed), ("failed", failed), ("dead", dead)):
        prometheus.wait_for(f"qworker_{name}_total", {_queue_labels(prometheus): value})
    prometheus.wait_for('qworker_queue_jobs{queue=~"dead|priority_2|running"}', {
        f"instance={_instance(prometheus)},job=qworker-queue,queue={queue}": value
        for queue, value in (("dead", PERMANENT), ("priority_2", 0), ("running", 0))
    })  # fmt: skip
    prometheus.wait_for(
        "sum(qworker_job_duration_seconds_count)", {"": OK + 2 * FAIL_ONCE + PERMANENT}
    )
    prometheus.wait_for("sum(qworker_job_wait_seconds_count)", {"": OK + 2 * FAIL_ONCE + PERMANENT})
    prometheus.wait_for("qworker_workers_alive", {_queue_labels(prometheus): 1})
    prometheus.wait_for(
        f'qworker_rate_limit_used{{key="{RATE_KEY}"}}',
        {f"{_queue_labels(prometheus)},key={RATE_KEY},window={w}": n for w, n in used.items()},
    )

    # The worker stops: the queue still has its exporter. Jobs wait at priority 1.
    assert _stop(worker) == 0, worker_log.read_text()
    enqueued_from = time.time()
    asyncio.run(_enqueue(settings, [metered("ok")] * 7, priority=1))
    prometheus.wait_for('qworker_queue_jobs{queue="priority_1"}', {
        f"{_queue_labels(prometheus)},queue=priority_1": 7
    })  # fmt: skip
    prometheus.wait_for("qworker_workers_alive", {_queue_labels(prometheus): 0})
    # A scrape that sampled its clock just before the jobs came shows an age of 0: wait for
    # one after, then the age can be no more than the time since they were enqueued.
    oldest_age = 'qworker_queue_oldest_age_seconds{priority="1"}'
    prometheus.wait_for(f"count({oldest_age} > 0)", {"": 1})
    age_s = next(iter(prometheus.query(oldest_age).values()))
    assert 0 < age_s <= time.time() - enqueued_from + 1
    assert prometheus.query('up{job="qworker-queue"}') == {_queue_labels(prometheus): 1}


def _instance(prometheus: PrometheusServer) -> str:
    return prometheus.targets["qworker-queue"][0]


def _queue_labels(prometheus: PrometheusServer) -> str:
    return f"instance={_instance(prometheus)},job=qworker-queue"
