"""The worker's once-a-second look at the jobs it holds: overruns, cancels, counts.

One check a second for all jobs costs far less than a timer around every job, which a busy
worker would pay thousands of times; and the Redis writes it makes (the running/prefetched
counts ``stats`` shows, the per-minute outcome counts of the web UI's chart) stay off the
claim/execute/settle path. The watchdog also proves the event loop alive to the heartbeat
thread, which hands a blocked loop's jobs back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis
from redis.exceptions import NoScriptError

from qworker.connection import CONNECTION_ERRORS
from qworker.execution import RunningJob
from qworker.heartbeat import LOOP_TICK_S
from qworker.throughput import add_counts, new_counts

if TYPE_CHECKING:
    from qworker.clock import Clock
    from qworker.service import QueueService

log = logging.getLogger("qworker.worker")

WATCHDOG_INTERVAL_S = LOOP_TICK_S


class Watchdog:
    """Cancels jobs that overrun their timeout or that an operator canceled, and writes the
    worker's counts. ``held`` returns every job the worker holds a lease on (running or
    prefetched), ``prefetched`` how many of them wait for a slot, ``cancel`` stops one an
    operator canceled (the worker's bookkeeping), ``outcomes`` is the executor's running tally."""

    def __init__(
        self,
        *,
        service: QueueService,
        worker_id: str,
        lease_ms: int,
        clock: Clock,
        outcomes: Counter[str],
        held: Callable[[], list[RunningJob]],
        prefetched: Callable[[], int],
        cancel: Callable[[RunningJob], None],
    ) -> None:
        self.service = service
        self.keys = service.keys
        self.worker_id = worker_id
        self.lease_ms = lease_ms
        self.clock = clock
        self.outcomes = outcomes
        self.held = held
        self.prefetched = prefetched
        self.cancel = cancel
        # When the event loop last ran the watchdog: the heartbeat thread watches this.
        self.loop_alive_at = time.perf_counter()
        # The (running, prefetched) counts last written to this worker's record, and which
        # record that is (the heartbeat counts the times it wrote the record anew).
        self._counts_shown = (0, 0)
        self._record_generation = 0
        # The outcomes (executor.outcomes) already added to the per-minute counts in Redis.
        self._outcomes_written: Counter[str] = Counter()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_INTERVAL_S)
            now = self.loop_alive_at = time.perf_counter()
            for running in self.held():
                overdue = running.deadline is not None and running.deadline < now
                if overdue and not running.timed_out and running.task is not None:
                    running.timed_out = True
                    running.task.cancel()
            try:
                await self._watch_cancels_and_counts()
            except (redis.RedisError, *CONNECTION_ERRORS) as exc:  # type: ignore[misc]
                log.debug("could not look for cancel requests: %s", exc)

    def show_counts_again(self) -> None:
        """The worker's record was written anew without its counts: write them at the next look.
        Called from the heartbeat's thread: a look that wrote into the old record just before
        sees the generation change and does not take its write for shown."""
        self._record_generation += 1
        self._counts_shown = (-1, -1)

    async def _watch_cancels_and_counts(self) -> None:
        """One round trip a second while this worker holds jobs (none while idle, once its
        counts are shown): which of them an operator asked to cancel, the running/prefetched
        counts that ``stats`` shows, written when they change (or the record was written anew),
        and the outcomes settled since (the per-minute counts)."""
        held = self.held()
        prefetched = self.prefetched()
        counts = (len(held) - prefetched, prefetched)
        settled = new_counts(self.outcomes, self._outcomes_written)
        if not held and counts == self._counts_shown and not settled:
            return
        pipe = self.service.redis.pipeline(transaction=False)
        if held:
            pipe.smismember(self.keys.cancel_requests, [r.claimed.id for r in held])
        write_counts = counts != self._counts_shown
        generation = self._record_generation
        if write_counts:
            # Only into a record that is there: one that expired while this worker stalled is
            # the heartbeat's to write again, whole (worker_counts.lua).
            call = self.service.scripts.worker_counts(self.worker_id, *counts, self.lease_ms)
            pipe.execute_command(*call.command())
        # The per-minute outcome counts (the web UI's chart), written here, off the hot path.
        add_counts(pipe, self.keys, settled, self.clock.now_ms())
        replies = list(await pipe.execute(raise_on_error=False))
        asked = replies.pop(0) if held else []
        written = replies.pop(0) if write_counts else 0
        if not any(isinstance(reply, Exception) for reply in replies):
            self._outcomes_written.update(settled)  # they are in: never added twice
        if written == 1 and generation == self._record_generation:
            self._counts_shown = counts
        elif isinstance(written, NoScriptError):  # Redis lost its scripts: the counts go next time
            await self.service.runner.load_all()
        for reply in (asked, written, *replies):
            if isinstance(reply, Exception) and not isinstance(reply, NoScriptError):
                raise reply
        if held:
            canceled = [r for r, cancel in zip(held, asked, strict=True) if cancel]
            for running in canceled:
                self.cancel(running)

    async def write_last_outcome_counts(self) -> None:
        """The outcomes settled since the last write (a burst worker may end within the
        second), so the per-minute counts miss none."""
        settled = new_counts(self.outcomes, self._outcomes_written)
        if not settled:
            return
        pipe = self.service.redis.pipeline(transaction=False)
        add_counts(pipe, self.keys, settled, self.clock.now_ms())
        try:
            await pipe.execute()
            self._outcomes_written.update(settled)
        except (redis.RedisError, *CONNECTION_ERRORS) as exc:  # type: ignore[misc]
            log.debug("could not write the last outcome counts: %s", exc)
