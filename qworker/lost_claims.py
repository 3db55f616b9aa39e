"""Claims whose reply never came back: the claim may have run and leased jobs to this worker,
which never learned which.

Such jobs are in flight under this worker's owner token (``worker_id:claims``) yet unknown to
it: neither held nor settled here. Once Redis answers again, the worker finds them among the
in-flight jobs and hands them back, unstarted, at once: nobody waits out a lease for them, and
no attempt is charged for a run that never happened (a job with ``max_retries=0`` would
otherwise be dead-lettered without running). The search reads the whole in-flight set, O(jobs
in flight), and only after a claim met a lost connection: the claim itself stays as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from qworker.clock import Clock
    from qworker.service import QueueService

log = logging.getLogger("qworker.worker")

# In-flight records read per pipeline, and jobs handed back per script call.
BATCH = 1000

Claim = tuple[str, str]  # (job id, owner token)


class LostClaims:
    """Whether a claim of this worker lost its reply, and the hand-back of what it took.

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
        self.pending = False

    def note(self) -> None:
        """A claim was sent and its reply lost: it may have taken jobs."""
        self.pending = True

    def __bool__(self) -> bool:
        return self.pending

    async def release(self) -> int:
        """Hand back the in-flight jobs leased to this worker that it does not know of; how
        many. Raises (and stays pending) while Redis cannot be reached."""
        keys, redis = self.service.keys, self.service.redis
        in_flight = cast(list[str], await redis.zrange(keys.inflight, 0, -1))
        owners: list[str | None] = []
        for start in range(0, len(in_flight), BATCH):
            pipe = redis.pipeline(transaction=False)
            for job_id in in_flight[start : start + BATCH]:
                pipe.hget(keys.job(job_id), "owner")
            owners += await pipe.execute()
        # Read after the replies: a job settled meanwhile is among the known ones by now.
        known = self.known()
        lost = [
            (job_id, owner, False)  # never started here: no hand-back counted
            for job_id, owner in zip(in_flight, owners, strict=True)
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
            handed_back += (await self.service.run(call))[0]
        self.pending = False
        if handed_back:
            log.warning("handed back %d job(s) taken by a claim whose reply was lost", handed_back)
        return handed_back
