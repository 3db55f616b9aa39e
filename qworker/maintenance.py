"""Fleet maintenance by one worker at a time: promoting due retries, scheduled and parked jobs,
lifting ended pauses, recovering expired leases.

Every maintenance script is safe with any number of workers running it, but a fleet where each
worker runs them every second costs Redis O(workers) commands a second for nothing. So the
workers take turns: the holder of a short-lived turn key (``maintenance_turn.lua``) does the
work; the others only try to take the turn now and then, which succeeds once its holder stops
renewing it (stopped, crashed, cut off). A stopping holder gives the turn up, so another worker
takes it within one try interval; a crashed one passes it on within the turn's time to live.

An idle holder does not run the promote scripts every second either: it looks at the earliest
due time of each time-ordered set (three ``ZRANGE``s and an ``EXISTS``) every ``IDLE_LOOK_S``, and
runs the scripts when something is due, or every second while it runs jobs.

``Maintainer`` is a worker's share of it: the timing of each step, the scripts it sends and what
their replies mean. The worker owns the task that drives it (and its handling of outages); a
burst worker calls it from its own loop instead, since it must see its drain through.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import redis

from qworker.connection import CONNECTION_ERRORS
from qworker.error_records import error_json
from qworker.keys import QueueKeys
from qworker.policy import DEFAULT_MAX_RETRIES
from qworker.scripts import QueueScripts, ScriptCall

if TYPE_CHECKING:
    from qworker.clock import Clock
    from qworker.config import Settings
    from qworker.redis_link import RedisLink
    from qworker.service import QueueService

log = logging.getLogger("qworker.worker")

# A busy holder promotes every second, as every worker used to.
PROMOTE_INTERVAL_S = 1.0
# An idle holder looks at the earliest due times this often (a job added with an earlier due
# time than the holder knew waits at most this long); jobs due at a known time run on time.
IDLE_LOOK_S = 2.0
# The background maintenance task wakes at least this often (no Redis command unless due).
MAINTENANCE_TICK_S = 0.25
MAINTENANCE_BATCH = 500
# The dead-letter retention cap is kept within a minute: no need to trim at every recovery.
TRIM_INTERVAL_S = 60.0
# The turn's time to live is a quarter of the lease, within these bounds: a crashed holder's
# turn passes on well before the leases it would have recovered expire.
TURN_TTL_MIN_S = 1.0
TURN_TTL_MAX_S = 12.0


def turn_ttl_s(lease_s: float) -> float:
    return min(max(lease_s / 4, TURN_TTL_MIN_S), TURN_TTL_MAX_S)


class MaintenanceTurn:
    """Whether this worker holds the fleet's maintenance turn, and when to renew or try it.

    The holder renews twice per time to live; the others try twice per time to live,
    at a jittered interval so that a fleet started at once does not try in step."""

    def __init__(
        self, scripts: QueueScripts, worker_id: str, ttl_s: float, rng: random.Random
    ) -> None:
        self.scripts = scripts
        self.worker_id = worker_id
        self.ttl_s = ttl_s
        self.rng = rng
        self.held = False
        self.next_check = 0.0

    def due(self, now: float) -> bool:
        return now >= self.next_check

    def call(self) -> ScriptCall[int]:
        return self.scripts.maintenance_turn(self.worker_id, int(self.ttl_s * 1000))

    def update(self, reply: int, now: float) -> bool:
        """Record the script's reply; True when the turn was just taken."""
        taken = bool(reply) and not self.held
        self.held = bool(reply)
        if self.held:
            self.next_check = now + self.ttl_s / 2
        else:
            self.next_check = now + self.ttl_s / 2 * self.rng.uniform(0.75, 1.25)
        return taken

    def release_call(self) -> ScriptCall[int] | None:
        """The call that gives the turn up (at a stop), or None when not held."""
        if not self.held:
            return None
        self.held = False
        return self.scripts.maintenance_turn(self.worker_id, 0)


async def look_due(client: Any, keys: QueueKeys) -> tuple[int | None, int]:
    """(the earliest due time in the retry, scheduled and parked sets, or None when all are
    empty; 1 when any pause is recorded, else 0), in one round trip of four reads (commands
    the least-privilege ACL user of the README may send: EXISTS, not HLEN)."""
    pipe = client.pipeline(transaction=False)
    for key in (keys.retry, keys.scheduled, keys.parked):
        pipe.zrange(key, 0, 0, withscores=True)
    pipe.exists(keys.pauses)
    *firsts, pauses = await pipe.execute()
    dues = [int(first[0][1]) for first in firsts if first]
    return (min(dues) if dues else None), int(pauses)


class Maintainer:
    """One worker's fleet maintenance: what is due, the scripts that do it, their replies.

    Runs once a second or less, off the claim/execute/settle path. ``holds_jobs`` tells it
    whether the worker holds any job: a busy holder promotes every second, an idle one only
    looks at the due times. ``pauses`` is the worker's last count of pauses (its claims read
    it): while any, promotion also lifts the ended ones."""

    def __init__(
        self,
        *,
        service: QueueService,
        settings: Settings,
        clock: Clock,
        link: RedisLink,
        worker_id: str,
        rng: random.Random,
        holds_jobs: Callable[[], bool],
    ) -> None:
        self.service = service
        self.keys = service.keys
        self.scripts = service.scripts
        self.settings = settings
        self.clock = clock
        self.link = link
        self.worker_id = worker_id
        self.holds_jobs = holds_jobs
        self.turn = MaintenanceTurn(
            self.scripts, worker_id, turn_ttl_s(settings.lease_seconds), rng
        )
        self.next_promotion = 0.0
        self.next_recovery = 0.0
        self.next_trim = 0.0
        self.next_look = 0.0
        # Rounds of maintenance scripts this worker ran (one worker of a fleet runs them).
        self.runs = 0
        # Expired leases are looked for a few times per lease, and at least every 15 s.
        self.recovery_interval_s = min(max(settings.lease_seconds / 4, 0.25), 15.0)
        self.next_due_ms: int | None = None
        # Entries in the pauses hash at the last claim: while any, maintenance lifts ended ones.
        self.pauses = 0

    async def maintain_once(self) -> bool:
        """One look at what is due, by the holder of the turn (or a worker trying to take
        it); True when it reached Redis (most looks need not)."""
        turn = self.turn
        now = time.monotonic()
        taken = contacted = False
        if turn.due(now):
            contacted = True
            taken = turn.update(await self.service.runner.run(turn.call()), now)
            if taken:
                log.debug("worker %s took the maintenance turn", self.worker_id[:8])
        if not turn.held:
            return contacted
        if not taken and not self.holds_jobs() and now >= self.next_look:
            # Idle: a look at the earliest due times instead of the promote scripts.
            self.next_look = now + IDLE_LOOK_S
            self.next_due_ms, self.pauses = await look_due(self.service.redis, self.keys)
            contacted = True
        runs = self.runs
        await self.maintain_if_due(force=taken, in_turn=True)
        return contacted or self.runs != runs

    def pause_s(self) -> float:
        """Until the next thing the task may have to do, at most a tick; no Redis involved."""
        pause_s = MAINTENANCE_TICK_S
        if self.next_due_ms is not None and self.turn.held:
            pause_s = min(pause_s, max(self.next_due_ms - self.clock.now_ms(), 0) / 1000)
        return max(pause_s, 0.005)

    async def release_turn(self) -> None:
        """Give the turn up, so another worker takes it within one try instead of waiting
        for it to expire."""
        release = self.turn.release_call()
        if release is not None:
            try:
                await self.service.runner.run(release)
            except (redis.RedisError, *CONNECTION_ERRORS) as exc:  # type: ignore[misc]
                log.debug("could not give the maintenance turn up (it expires): %s", exc)

    def slot_wait_s(self) -> float:
        """How long a burst worker with every slot busy may wait: until maintenance is due."""
        return max(min(self.next_promotion, self.next_recovery) - time.monotonic(), 0.01)

    def idle_wait_s(self, idle_poll_s: float) -> float:
        """How long a worker maintaining in its own loop may block waiting for work."""
        timeout_s = min(idle_poll_s, max(self.next_promotion - time.monotonic(), 0.0))
        if self.next_due_ms is not None:
            timeout_s = min(timeout_s, max(self.next_due_ms - self.clock.now_ms(), 0) / 1000)
        return max(timeout_s, 0.01)

    async def maintain_if_due(self, *, force: bool = False, in_turn: bool = False) -> int:
        """Promote due retries, scheduled and parked jobs (when one is due, and every second
        while jobs run or pauses exist, or always for a worker maintaining in its own loop,
        not ``in_turn``); recover expired leases (a few times per lease) and trim the
        dead-letter queue (every minute). Returns how many jobs became ready."""
        now = time.monotonic()
        due = self.next_due_ms is not None and self.next_due_ms <= self.clock.now_ms()
        busy = not in_turn or self.holds_jobs() or self.pauses > 0
        promote = force or due or (busy and now >= self.next_promotion)
        # Nobody recovers anything until connected for one lease (since it started, and after
        # an outage): a lapsed lease need not mean a dead worker yet (see redis_link.py).
        recover = (force or now >= self.next_recovery) and self.link.may_recover()
        if not (promote or recover):
            return 0
        moved = 0
        calls: list[ScriptCall[Any]] = []
        lift = promote and self.pauses > 0
        if promote:
            self.next_promotion = now + PROMOTE_INTERVAL_S
            calls += self._promote_calls()
        if lift:
            calls.append(self.scripts.lift_pauses(self.clock.script_now_ms(), MAINTENANCE_BATCH))
        recover_at = len(calls)
        if recover:
            self.next_recovery = now + self.recovery_interval_s
            trim = force or now >= self.next_trim
            if trim:
                self.next_trim = now + TRIM_INTERVAL_S
            calls += self._recover_calls(trim=trim)
        self.runs += 1
        replies = await self.service.runner.run_many(calls)
        if promote:
            moved += self._after_promote(replies[:3])
        if lift:
            lifted, self.pauses, _ = replies[3]
            moved += lifted
        if recover:
            moved += self._after_recover(replies[recover_at:])
        return moved

    def _promote_calls(self) -> list[ScriptCall[Any]]:
        k, s, now_ms = self.keys, self.scripts, self.clock.script_now_ms()
        return [
            s.promote(k.retry, now_ms, MAINTENANCE_BATCH),
            s.promote(k.scheduled, now_ms, MAINTENANCE_BATCH),
            s.release_parked(now_ms, MAINTENANCE_BATCH),
        ]

    def _after_promote(self, replies: list[tuple[int, int]]) -> int:
        (retried, next_retry), (scheduled, next_scheduled), (parked, next_parked) = replies
        dues = [ms for ms in (next_retry, next_scheduled, next_parked) if ms >= 0]
        self.next_due_ms = min(dues) if dues else None
        if retried + scheduled + parked:
            log.debug("promoted %d retry, %d scheduled, %d parked", retried, scheduled, parked)
        return retried + scheduled + parked

    def _recover_calls(self, *, trim: bool) -> list[ScriptCall[Any]]:
        oldest_kept_ms = self.clock.now_ms() - int(
            self.settings.dead_letter_max_age_days * 86_400_000
        )
        lost_error = error_json("LeaseExpired", "the worker running this job stopped answering")
        now_ms = self.clock.script_now_ms()
        calls: list[ScriptCall[Any]] = [
            self.scripts.recover(
                now_ms,
                MAINTENANCE_BATCH,
                DEFAULT_MAX_RETRIES,
                lost_error,
                self.settings.keep_finished_ms,
            ),
            # Jobs that waited for their dependencies past their dep-timeout: dead-lettered.
            self.scripts.dep_timeout(now_ms, MAINTENANCE_BATCH),
        ]
        if trim:
            max_jobs = self.settings.dead_letter_max_jobs
            keep_ms = self.settings.keep_finished_ms
            calls.append(self.scripts.trim_dead_letter(oldest_kept_ms, max_jobs, keep_ms=keep_ms))
        return calls

    def _after_recover(self, replies: list[Any]) -> int:
        """replies: recover's, dep_timeout's, then trim_dead_letter's when it ran."""
        requeued, buried = cast(tuple[int, int], replies[0])
        timed_out = int(replies[1])
        dropped = int(replies[2]) if len(replies) > 2 else 0
        if requeued or buried:
            log.warning(
                "recovered %d job(s) from workers that stopped answering (%d to dead letter)",
                requeued + buried,
                buried,
            )
        if dropped:
            log.warning("dead-letter retention cap dropped %d oldest job(s)", dropped)
        if timed_out:
            log.warning("%d job(s) waited past their dep-timeout: dead-lettered", timed_out)
        return requeued
