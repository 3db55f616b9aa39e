"""The scheduler step every worker runs beside its loop: fire the schedules that have come due.

No leader, no lock: every worker may find a schedule due at the same moment, and the fire
script's compare-and-set on the schedule's next due time lets exactly one of them enqueue it.
Idle cost does not grow with the number of schedules: one ``ZRANGE`` of the schedules sorted set
tells when the earliest is due, and the scheduler sleeps until then, waking early when a
schedule changes (Pub/Sub, which costs no command while nothing happens) and at least every
RECHECK_S in case an announcement was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from typing import TYPE_CHECKING, Any, cast

import redis

from qworker.clock import SYSTEM_CLOCK, Clock
from qworker.connection import CONNECTION_ERRORS
from qworker.service import QueueService

if TYPE_CHECKING:
    from qworker.schedule_store import ScheduleStore
    from qworker.schedules import Schedule

log = logging.getLogger("qworker.scheduler")

# Longest sleep while subscribed to schedule changes, and without a subscription (it failed).
RECHECK_S = 10.0
RECHECK_UNSUBSCRIBED_S = 1.0
# Schedules read per look; more than this many due at once are fired over several rounds.
BATCH = 100
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, *CONNECTION_ERRORS)


class Scheduler:
    """Fires due schedules for one worker until cancelled."""

    def __init__(
        self,
        service: QueueService,
        clock: Clock = SYSTEM_CLOCK,
        *,
        recheck_s: float = RECHECK_S,
    ) -> None:
        self.service = service
        self._store: ScheduleStore | None = None
        self.keys = service.keys
        self.clock = clock
        self.recheck_s = recheck_s
        # Redis's clock minus ours, learned from the fire script's replies: due times are
        # decided by Redis's clock, so a host whose clock is behind still fires on time.
        self.offset_ms = 0
        self.fired = 0
        self._pubsub: Any = None
        self._can_subscribe = True

    @property
    def store(self) -> ScheduleStore:
        """Made when the first schedule comes due: the schedules' code (the Schedule model,
        cron parsing, time zones) costs memory that a fleet without schedules never uses."""
        if self._store is None:
            from qworker.schedule_store import ScheduleStore

            self._store = ScheduleStore(self.service)
        return self._store

    def now_ms(self) -> int:
        return self.clock.now_ms() + self.offset_ms

    async def run(self) -> None:
        try:
            while True:
                try:
                    next_due_ms = await self.tick()
                except REDIS_ERRORS as exc:
                    log.debug("scheduler cannot reach Redis (%s); trying again", exc)
                    await self._close_pubsub()
                    await asyncio.sleep(RECHECK_UNSUBSCRIBED_S)
                    continue
                except Exception:
                    # A bug here must not silently end scheduling for the worker's lifetime.
                    log.exception("scheduler step failed; trying again in a second")
                    await asyncio.sleep(RECHECK_UNSUBSCRIBED_S)
                    continue
                await self._sleep_until(next_due_ms)
        finally:
            await self._close_pubsub()

    async def tick(self) -> int | None:
        """Fire every schedule due now; returns the earliest next due time (None: none)."""
        for _ in range(10):
            entries = cast(
                list[tuple[str, float]],
                await self.service.redis.zrange(self.keys.schedules, 0, BATCH - 1, withscores=True),
            )
            now_ms = self.now_ms()
            due = [str(name) for name, score in entries if score <= now_ms]
            if not due:
                finite = [int(score) for _, score in entries if math.isfinite(score)]
                return min(finite) if finite else None
            moved = [await self._fire(name) for name in due]
            if not any(moved):  # only schedules that cannot fire now (e.g. unreadable ones)
                break
        return self.now_ms() + 1000  # still due: look again in a second, not in a loop

    async def _fire(self, name: str) -> bool:
        """Fire one schedule the sorted set says is due; False if it could not be moved on."""
        from qworker.schedule_store import ScheduleNotFound  # a due schedule: rare, not per job

        try:
            schedule = await self.store.get(name)
        except ScheduleNotFound:
            return False  # a name without its hash: not one qworker's scripts leave
        except ValueError as exc:  # a hash no qworker wrote; the others still fire
            log.error("schedule %s cannot be read (%s); skipping it", name, exc)
            return False
        now_ms = self.now_ms()
        if schedule.paused or schedule.next_due_ms is None or schedule.next_due_ms > now_ms:
            return True  # changed since the sorted set was read: look again
        script_now_ms = self.clock.script_now_ms()
        plan, reply = await self.store.fire_due(schedule, now_ms, script_now_ms)
        if script_now_ms is None:
            self.offset_ms = reply.now_ms - self.clock.now_ms()
        if reply.code == 1:
            self.fired += reply.count
            self._log_fired(schedule, plan.fires, plan.missed, plan.overlapped)
        elif reply.code == 3:
            log.info(
                "schedule %s: due %s skipped, its previous job %s is unfinished (no-overlap)",
                name,
                _utc_text(schedule.next_due_ms),
                schedule.last_job_id,
            )
        return reply.code != -1

    def _log_fired(self, schedule: Schedule, fires: list[Any], missed: int, dropped: int) -> None:
        for fire in fires:
            extra = f" (standing for {fire.covers} due times missed)" if fire.covers > 1 else ""
            log.info(
                "schedule %s fired for %s%s", schedule.name, _utc_text(fire.scheduled_for_ms), extra
            )
        if missed:
            log.warning(
                "schedule %s: %d due time(s) missed while no worker ran (policy %s)",
                schedule.name,
                missed,
                schedule.missed,
            )
        if dropped:
            log.info("schedule %s: %d due time(s) skipped (no-overlap)", schedule.name, dropped)

    async def _sleep_until(self, next_due_ms: int | None) -> None:
        """Until the next due time, a schedule change, or the recheck, whichever is first."""
        subscribed = await self._subscribe()
        cap_s = self.recheck_s if subscribed else RECHECK_UNSUBSCRIBED_S
        timeout_s = cap_s
        if next_due_ms is not None:
            timeout_s = min(cap_s, max((next_due_ms - self.now_ms()) / 1000, 0.0))
        if not subscribed:
            await asyncio.sleep(timeout_s)
            return
        loop = asyncio.get_running_loop()
        current = asyncio.current_task()
        deadline = loop.time() + timeout_s
        while (left := deadline - loop.time()) > 0:
            try:
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=min(left, 1.0)
                )
            except redis.exceptions.NoPermissionError as exc:  # the subscription's reply
                self._no_pubsub(exc)
                await self._close_pubsub()
                return
            except REDIS_ERRORS as exc:
                log.debug("schedule announcements lost (%s); resubscribing", exc)
                await self._close_pubsub()
                return
            if message is not None:
                return  # a schedule changed: look again now
            # redis-py's get_message can swallow a cancel that lands while it reads, and the
            # worker stops the scheduler by cancelling it: honour the cancel here.
            if current is not None and current.cancelling():
                raise asyncio.CancelledError

    async def _subscribe(self) -> bool:
        if self._pubsub is not None:
            return True
        if not self._can_subscribe:
            return False
        try:
            pubsub = self.service.redis.pubsub()
            await pubsub.subscribe(self.keys.schedules_channel)
        except REDIS_ERRORS as exc:
            log.debug("cannot subscribe to schedule announcements (%s)", exc)
            return False
        except Exception as exc:  # a client without Pub/Sub: look once a second instead
            self._no_pubsub(exc)
            return False
        self._pubsub = pubsub
        return True

    def _no_pubsub(self, exc: Exception) -> None:
        """No Pub/Sub here (an ACL user without channels, a client without it): look for
        schedule changes once a second, and stop asking for a subscription."""
        log.info("schedule changes are looked for once a second (no Pub/Sub: %s)", exc)
        self._can_subscribe = False

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*REDIS_ERRORS, RuntimeError):
                await pubsub.aclose()


def _utc_text(ms: int) -> str:
    # Only reached after a schedule was read, when the cron module is loaded already.
    from qworker.cron import utc_text

    return utc_text(ms)
