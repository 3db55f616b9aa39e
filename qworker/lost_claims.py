"""Claims whose reply never came back: the claim may have run and leased jobs to this worker,
which never learned which.

Such jobs are in flight under this worker's owner token (``worker_id:claims``) yet unknown to
it: neither held nor settled here. Once Redis answers again, the worker finds them among the
in-flight jobs and hands them back, unstarted, at once: nobody waits out a lease for them, and
no attempt is charged for a run that never happened (a job with ``max_retries=0`` would
otherwise be dead-lettered without running).

The claim itself stays as it was (nothing more to write per job). The search looks only where
the lost claim's leases can end: their deadline is the claim's time plus the lease it asked for,
and nobody renews them. So it reads the in-flight jobs whose deadline falls in that window (the
jobs any worker claimed meanwhile), not the whole set, and only after a claim met a lost
connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from qworker.clock import Clock
    from qworker.service import QueueService

log = logging.getLogger("qworker.worker")

# In-flight records read per pipeline, and jobs handed back per script call.
BATCH = 1000
# Margin around a lost claim's lease deadlines (Redis's clock read at another moment).
WINDOW_SLACK_MS = 1000

Claim = tuple[str, str]  # (job id, owner token)


@dataclass(frozen=True)
class SentClaim:
    """When a claim whose reply was lost was sent, and what it asked for."""

    sent_at: float  # time.monotonic() when it was sent
    now_ms: int | None  # the time given to the script, or None: Redis's own clock
    lease_ms: int


class LostClaims:
    """Claims of this worker that lost their reply, and the hand-back of what they took.

    ``known`` returns the claims the worker knows of (held, or settled without Redis's
    acknowledgement yet): those are never handed back here."""

    def __init__(
        self,
        service: QueueService,
        clock: Clock,
        worker_id: str,
        *,
        known: Callable[[], set[Claim]],
        max_handbacks: int,
        keep_ms: int,
    ) -> None:
        self.service = service
        self.clock = clock
        self.worker_id = worker_id
        self.known = known
        self.max_handbacks = max_handbacks
        self.keep_ms = keep_ms
        self.claims: list[SentClaim] = []

    def note(self, sent: SentClaim) -> None:
        """A claim was sent and its reply lost: it may have taken jobs."""
        self.claims.append(sent)

    def __bool__(self) -> bool:
        return bool(self.claims)

    async def release(self) -> int:
        """Hand back the in-flight jobs the lost claims leased to this worker that it does not
        know of; how many. Raises a Redis error (the claims stay noted) while Redis cannot be
        reached."""
        # Known before the reads too: a job that leaves the worker's hands meanwhile (cancelled
        # at a stop) is still one it knew.
        known = self.known()
        candidates = await self._in_flight_within(await self._windows())
        owners: list[str | None] = []
        redis, keys = self.service.redis, self.service.keys
        for start in range(0, len(candidates), BATCH):
            pipe = redis.pipeline(transaction=False)
            for job_id in candidates[start : start + BATCH]:
                pipe.hget(keys.job(job_id), "owner")
            owners += await pipe.execute()
        # And after: a job settled while the reads were on their way is known by now.
        known |= self.known()
        lost = [
            (job_id, owner, False)  # never started here: no hand-back counted
            for job_id, owner in zip(candidates, owners, strict=True)
            if owner is not None
            and owner.rpartition(":")[0] == self.worker_id
            and (job_id, owner) not in known
        ]
        handed_back = 0
        for start in range(0, len(lost), BATCH):
            # hand_back.lua checks each owner: a job recovered by another worker meanwhile, or
            # settled, stays as it is.
            call = self.service.scripts.hand_back(
                lost[start : start + BATCH],
                self.max_handbacks,
                "",
                self.clock.now_ms(),
                self.keep_ms,
            )
            handed_back += (await self.service.runner.run(call))[0]
        self.claims = []
        if handed_back:
            log.warning("handed back %d job(s) taken by a claim whose reply was lost", handed_back)
        return handed_back

    async def _windows(self) -> list[tuple[int, int]]:
        """Where each lost claim's lease deadlines fall, in the script's clock (ms)."""
        redis_now_ms: int | None = None
        windows = []
        for sent in self.claims:
            if sent.now_ms is not None:  # the time it was given: its deadline exactly
                deadline = sent.now_ms + sent.lease_ms
                windows.append((deadline, deadline))
                continue
            if redis_now_ms is None:
                seconds, micros = await self.service.redis.time()
                redis_now_ms = int(seconds) * 1000 + int(micros) // 1000
            # It ran at Redis's time between its sending and now.
            since_sent_ms = int((time.monotonic() - sent.sent_at) * 1000)
            windows.append(
                (
                    redis_now_ms - since_sent_ms + sent.lease_ms - WINDOW_SLACK_MS,
                    redis_now_ms + sent.lease_ms + WINDOW_SLACK_MS,
                )
            )
        return windows

    async def _in_flight_within(self, windows: list[tuple[int, int]]) -> list[str]:
        redis, inflight = self.service.redis, self.service.keys.inflight
        found: dict[str, None] = {}
        for low, high in windows:
            start = 0
            while True:
                page = cast(
                    list[str],
                    await redis.zrangebyscore(inflight, low, high, start=start, num=BATCH),
                )
                found.update(dict.fromkeys(page))
                if len(page) < BATCH:
                    break
                start += BATCH
        return list(found)
