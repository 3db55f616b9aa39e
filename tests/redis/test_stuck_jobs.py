"""A job that blocks the event loop cannot be cancelled by the worker's watchdog; its lease must
not be renewed for ever. Past its timeout plus a margin the heartbeat lets the lease lapse, so
another worker recovers it (a failed attempt), and hands back the jobs waiting behind it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest
import redis

from qworker.clock import SYSTEM_CLOCK
from qworker.connection import SyncScriptRunner
from qworker.error_records import error_json
from qworker.service import QueueService
from tests.jobtypes import read_events
from tests.redis.conftest import MakeSettings, MakeWorker
from tests.redis.faulty_jobs import faulty

BLOCK_S = 4.0  # how long the stuck job holds the event loop


class OtherWorker(threading.Thread):
    """What the rest of the world sees while this worker's event loop is stuck: it looks for
    expired leases (as any other worker would) and for jobs handed back to the ready list."""

    def __init__(self, service: QueueService, stuck_id: str, waiting_id: str) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(service.settings.redis_url, decode_responses=True)
        self.keys, self.scripts = service.keys, service.scripts
        self.stuck_id, self.waiting_id = stuck_id, waiting_id
        self.recovered_after_s: float | None = None
        self.handed_back_after_s: float | None = None

    def run(self) -> None:
        try:
            self._wait_until_both_are_held()  # claimed together: one runs, one waits
            self._watch(time.monotonic())
        finally:
            self.client.close()

    def _wait_until_both_are_held(self) -> None:
        deadline = time.monotonic() + 5
        held = [self.stuck_id, self.waiting_id]
        while None in self.client.zmscore(self.keys.inflight, held):
            if time.monotonic() > deadline:
                return  # then nothing is seen, and the test says so
            time.sleep(0.01)

    def _watch(self, since: float) -> None:
        runner = SyncScriptRunner(self.client)
        lost = error_json("LeaseExpired", "stuck")
        while time.monotonic() - since < BLOCK_S - 0.5:
            elapsed = time.monotonic() - since
            ready = self.client.lrange(self.keys.priority(3), 0, -1)
            if self.handed_back_after_s is None and self.waiting_id in ready:
                self.handed_back_after_s = elapsed
            if (
                self.recovered_after_s is None
                and runner.run(self.scripts.recover(None, 10, 3, lost, 0))[0]
            ):
                self.recovered_after_s = elapsed
            if self.recovered_after_s is not None and self.handed_back_after_s is not None:
                return
            time.sleep(0.02)


@pytest.mark.parametrize(
    ("concurrency", "prefetch"),
    [(1, 1), (2, 0)],
    ids=["waiting-for-a-slot", "with-a-slot-before-its-first-step"],
)
async def test_a_job_blocking_the_event_loop_loses_its_lease_after_its_timeout(
    concurrency: int,
    prefetch: int,
    make_settings: MakeSettings,
    make_worker: MakeWorker,
    service: QueueService,
    probe_log: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(lease_seconds=0.6)  # renewed every 0.2 s
    stuck_id = await service.add_job(faulty(probe_log, block_s=BLOCK_S, timeout=0.2))
    waiting_id = await service.add_job(faulty(probe_log))
    # A real clock: the leases are Redis's, and the block is real time on a real loop.
    worker = make_worker(
        settings=settings, clock=SYSTEM_CLOCK, concurrency=concurrency, prefetch=prefetch
    )
    worker.overdue_margin_s = 0.3
    other = OtherWorker(service, stuck_id, waiting_id)
    other.start()
    with caplog.at_level(logging.ERROR, logger="qworker.worker"):
        await asyncio.wait_for(worker.run(), 30)
    other.join(5)

    # Timeout 0.2 s + margin 0.3 s + lease 0.6 s: recovered well before the loop came back.
    assert other.recovered_after_s is not None, "the stuck job's lease was renewed all along"
    assert other.handed_back_after_s is not None, "the job waiting behind it stayed held"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    stuck = [m for m in errors if m.startswith(f"job {stuck_id} has run")]
    assert len(stuck) == 1 and "past its timeout" in stuck[0]  # loud, and once
    starts = [(e.job_id, e.attempt) for e in read_events(probe_log, "start")]
    # The stuck run (its end is not acknowledged), the recovered copy, and the job that
    # waited: it ran once, with no attempt charged for its hand-back.
    assert sorted(starts) == sorted([(stuck_id, 1), (stuck_id, 2), (waiting_id, 1)])
    stats = await service.get_queue_stats()
    assert (stats.recovered, stats.total_processed, stats.in_flight, stats.total_jobs) == (
        1,
        2,
        0,
        0,
    )
