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
"""

from __future__ import annotations

import random
from typing import Any

from qworker.keys import QueueKeys
from qworker.scripts import QueueScripts, ScriptCall

# A busy holder promotes every second, as every worker used to.
PROMOTE_INTERVAL_S = 1.0
# An idle holder looks at the earliest due times this often (a job added with an earlier due
# time than the holder knew waits at most this long); jobs due at a known time run on time.
IDLE_LOOK_S = 2.0
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
