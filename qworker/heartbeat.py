"""The heartbeat: a thread that renews the leases of running jobs and keeps the worker listed.

It is a thread, not a task, so that a job blocking the event loop (synchronous code, a slow C
call) cannot starve it: the leases stay renewed while the job is alive. A renewal the worker is
refused (the job was recovered after the worker stalled past its lease) is reported back, and
the worker will then neither acknowledge nor move that job.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable

import redis

from qworker.clock import Clock
from qworker.config import Settings
from qworker.connection import CONNECTION_ERRORS, SyncScriptRunner, sync_client
from qworker.keys import QueueKeys
from qworker.scripts import QueueScripts

log = logging.getLogger("qworker.worker")


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
        owned_jobs: Callable[[], list[tuple[str, str]]],
        jobs_done: Callable[[], int],
        on_lost: Callable[[list[tuple[str, str]]], None],
        client: redis.Redis | None = None,
    ) -> None:
        super().__init__(name="qworker-heartbeat", daemon=True)
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
        self.clock = clock
        self.owned_jobs = owned_jobs
        self.jobs_done = jobs_done
        self.on_lost = on_lost
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
            self._wake_event.wait(self.interval_s)
            self._wake_event.clear()

    def beat(self) -> None:
        now_ms = self.clock.now_ms()
        owned = self.owned_jobs()
        if owned:
            renew = self.scripts.renew(self.clock.script_now_ms(), self.lease_ms, owned)
            lost = self.runner.run(renew)
            if lost:
                self.on_lost(lost)
        self.register(now_ms, [job_id for job_id, _owner in owned])

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
            },
        )
        pipe.pexpire(worker_key, self.lease_ms)
        pipe.zadd(self.keys.workers, {self.worker_id: now_ms})
        pipe.execute()

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
