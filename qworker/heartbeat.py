"""The heartbeat: a thread that renews the leases of running jobs and keeps the worker listed.

It is a thread, not a task, so that a job blocking the event loop (synchronous code, a slow C
call) cannot starve it: the leases stay renewed while the job is alive, but only until the job
overruns its ``timeout_s`` (plus a margin). Past that the event loop is stuck and the worker's
own watchdog cannot cancel the job, so the heartbeat stops renewing it (its lease expires and
another worker recovers it, counting a failed attempt) and hands back the jobs waiting behind
it. A renewal the worker is refused (the job was recovered after the worker stalled past its
lease) is reported back, and the worker will then neither acknowledge nor move that job.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from qworker.clock import Clock
from qworker.config import Settings
from qworker.connection import CONNECTION_ERRORS, SyncScriptRunner, sync_client
from qworker.keys import QueueKeys
from qworker.running import RunningJob
from qworker.scripts import QueueScripts

log = logging.getLogger("qworker.worker")

# How long past its timeout a job may still hold its lease: the watchdog cancels an overrunning
# job within a second when the event loop runs, so only a stuck loop lets a job get this far.
OVERDUE_MARGIN_S = 5.0
# How often the worker's event loop shows it is alive (its watchdog's interval).
LOOP_TICK_S = 1.0
# Entries of the workers' registry older than this are dead workers (a live one beats at least
# every 10 s); generous, so that a worker whose clock lags is not dropped and re-added.
REGISTRY_HORIZON_MS = 600_000
# How often an idle worker (holding no job) renews its record, at most.
IDLE_INTERVAL_MAX_S = 20.0


class Heartbeat(threading.Thread):
    def __init__(
        self,
        *,
        settings: Settings,
        keys: QueueKeys,
        worker_id: str,
        concurrency: int,
        lease_ms: int,
        clock: Clock,
        owned_jobs: Callable[[], list[RunningJob]],
        jobs_done: Callable[[], int],
        on_lost: Callable[[list[tuple[str, str]]], None],
        lose_waiting: Callable[[list[RunningJob]], list[tuple[str, str]]],
        loop_alive_at: Callable[[], float],
        client: redis.Redis | None = None,
        overdue_margin_s: float = OVERDUE_MARGIN_S,
        max_handbacks: int = 10,
        keep_ms: int = 0,
        record: dict[str, str] | None = None,
        on_record_rewritten: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name="qworker-heartbeat", daemon=True)
        # Told when a beat found the record gone (expired in a stall, a Redis restart) and wrote
        # it anew: the counts the watchdog wrote into the old one are gone with it.
        self.on_record_rewritten = on_record_rewritten
        self._registered = False
        # More fields of the worker's record (the job types it serves: routing.py).
        self.record: dict[Any, Any] = dict(record or {})
        # A thread needs its own synchronous client: one made from the settings (so Sentinel,
        # Cluster and TLS apply), or the one given (e.g. a fakeredis client on the same server
        # as the worker's async one).
        self.client = (
            client if client is not None else sync_client(settings, namespace=keys.namespace)
        )
        self.runner = SyncScriptRunner(self.client)
        self.keys = keys
        self.scripts = QueueScripts(keys)
        self.worker_id = worker_id
        self.concurrency = concurrency
        self.lease_ms = lease_ms
        self.interval_s = min(lease_ms / 3000, 10.0)
        # Holding no job, only the worker's record needs renewing (it lives one lease): an idle
        # worker beats less often, so that an idle fleet costs Redis little. A job claimed
        # meanwhile holds a full lease, and this is at most half of one.
        self.idle_interval_s = max(min(lease_ms / 2000, IDLE_INTERVAL_MAX_S), self.interval_s)
        self._holding = False
        self.clock = clock
        self.owned_jobs = owned_jobs
        self.jobs_done = jobs_done
        self.on_lost = on_lost
        self.lose_waiting = lose_waiting
        self.loop_alive_at = loop_alive_at
        self.overdue_margin_s = overdue_margin_s
        self.max_handbacks = max_handbacks
        self.keep_ms = keep_ms
        self.registry_horizon_ms = max(REGISTRY_HORIZON_MS, 2 * lease_ms)
        self._overdue: set[tuple[str, str]] = set()  # reported once each
        self.started_at_ms = clock.now_ms()
        self._stop_event = threading.Event()
        self._wake_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.beat()
            except CONNECTION_ERRORS as exc:
                log.debug("heartbeat could not reach Redis: %s", exc)
            except Exception:
                log.exception("heartbeat failed")
            self._wake_event.wait(self.interval_s if self._holding else self.idle_interval_s)
            self._wake_event.clear()

    def beat(self) -> None:
        now_ms = self.clock.now_ms()
        held = self.owned_jobs()
        self._holding = bool(held)
        renewed = self._renewable(held)
        if renewed:
            renew = self.scripts.renew(self.clock.script_now_ms(), self.lease_ms, renewed)
            lost = self.runner.run(renew)
            if lost:
                self.on_lost(lost)
        if len(renewed) < len(held) and self._loop_stuck():
            self._hand_back_waiting(held, now_ms)  # they would wait for the loop for ever
        self.register(now_ms, [running.claimed.id for running in held])

    def _renewable(self, held: list[RunningJob]) -> list[tuple[str, str]]:
        """The claims to renew: all but the jobs past their timeout plus the margin."""
        now = time.perf_counter()
        renewed = []
        for running in held:
            deadline = running.deadline
            if deadline is not None and now > deadline + self.overdue_margin_s:
                self._report_overdue(running, now)
            else:
                renewed.append(running.key)
        self._overdue &= {running.key for running in held}
        return renewed

    def _report_overdue(self, running: RunningJob, now: float) -> None:
        if running.key in self._overdue:
            return
        self._overdue.add(running.key)
        timeout_s = (running.deadline or now) - running.started
        log.error(
            "job %s has run %.1fs, past its timeout of about %.1fs, and cannot be cancelled: "
            "it blocks the event loop (synchronous code?). Its lease is no longer renewed: "
            "within %.0fs another worker recovers it as a failed attempt",
            running.claimed.id,
            now - running.started,
            timeout_s,
            self.lease_ms / 1000,
        )

    def _loop_stuck(self) -> bool:
        """The event loop has not ticked (its watchdog runs every second) for longer than the
        margin: a job blocks it, rather than merely ignoring its cancellation."""
        silent_s = time.perf_counter() - self.loop_alive_at()
        return silent_s > LOOP_TICK_S + self.overdue_margin_s

    def _hand_back_waiting(self, held: list[RunningJob], now_ms: int) -> None:
        """Jobs held here that have not entered execute() (claimed ahead, or with a slot but
        still before their first step) would wait for the stuck loop for ever: hand them back
        (no attempt, no hand-back counted) after telling the worker never to run them."""
        waiting = self.lose_waiting(held)
        if not waiting:
            return
        jobs = [(job_id, owner, False) for job_id, owner in reversed(waiting)]
        handed_back, _ = self.runner.run(
            self.scripts.hand_back(jobs, self.max_handbacks, "", now_ms, self.keep_ms)
        )
        if handed_back:
            log.warning("handed back %d job(s) waiting behind a stuck job", handed_back)

    def register(self, now_ms: int, current_jobs: list[str]) -> None:
        worker_key = self.keys.worker(self.worker_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(
            worker_key,
            mapping={
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started_at_ms": self.started_at_ms,
                "last_seen_ms": now_ms,
                "jobs_done": self.jobs_done(),
                "concurrency": self.concurrency,
                "current_jobs": json.dumps(current_jobs[:50]),
                **self.record,
            },
        )
        pipe.pexpire(worker_key, self.lease_ms)
        pipe.zadd(self.keys.workers, {self.worker_id: now_ms})
        # Every worker prunes the registry of the dead, so it never grows without bound.
        pipe.zremrangebyscore(self.keys.workers, "-inf", now_ms - self.registry_horizon_ms)
        fields_added = pipe.execute()[0]
        if fields_added and self._registered and self.on_record_rewritten is not None:
            self.on_record_rewritten()
        self._registered = True

    def beat_now(self) -> None:
        """Renew at once instead of at the next interval (e.g. when Redis is back)."""
        self._wake_event.set()

    def stop(self) -> None:
        self._stop_event.set()
        self._wake_event.set()
        if self.is_alive():
            self.join(timeout=5)
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(self.keys.worker(self.worker_id))
            pipe.zrem(self.keys.workers, self.worker_id)
            pipe.execute()
        except (redis.RedisError, *CONNECTION_ERRORS):  # type: ignore[misc]  # e.g. a moved slot
            pass  # the record expires by itself
        self.client.close()
