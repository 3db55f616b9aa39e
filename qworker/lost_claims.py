"""Claims whose reply never came back: the claim may have run and leased jobs to this worker,
which never learned which.

Each claim names itself (its id_base, recorded on every job it takes as ``claim_id``). Once
Redis answers again, the worker finds those jobs among the in-flight ones and hands them back,
unstarted, at once: nobody waits out a lease for them, and no attempt is charged for a run that
never happened (a job with ``max_retries=0`` would otherwise be dead-lettered without running).
The search reads the whole in-flight set, which costs O(jobs in flight), and happens only after
a claim met a lost connection.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from qworker.clock import Clock
    from qworker.service import QueueService

log = logging.getLogger("qworker.worker")

# In-flight records read per pipeline, and jobs handed back per script call.
READ_BATCH = 1000


class LostClaims:
    """The ids of this worker's claims whose reply was lost, and the hand-back of their jobs."""

    def __init__(
        self, service: QueueService, clock: Clock, *, max_handbacks: int, keep_ms: int
    ) -> None:
        self.service = service
        self.clock = clock
        self.max_handbacks = max_handbacks
        self.keep_ms = keep_ms
        self.claim_ids: set[str] = set()

    def note(self, claim_id: str) -> None:
        """A claim was sent and its reply lost: it may have taken jobs."""
        self.claim_ids.add(claim_id)

    def __bool__(self) -> bool:
        return bool(self.claim_ids)

    async def release(self) -> int:
        """Hand back the in-flight jobs the noted claims took; how many. Raises (and keeps the
        claims noted) if Redis cannot be reached yet."""
        keys, redis = self.service.keys, self.service.redis
        in_flight = cast(list[str], await redis.zrange(keys.inflight, 0, -1))
        taken: list[tuple[str, str, bool]] = []
        for start in range(0, len(in_flight), READ_BATCH):
            batch = in_flight[start : start + READ_BATCH]
            pipe = redis.pipeline(transaction=False)
            for job_id in batch:
                pipe.hmget(keys.job(job_id), "claim_id", "owner")
            for job_id, (claim_id, owner) in zip(batch, await pipe.execute(), strict=True):
                if claim_id in self.claim_ids and owner:
                    taken.append((job_id, owner, False))  # never started here: no hand-back counted
        handed_back = 0
        for start in range(0, len(taken), READ_BATCH):
            # hand_back.lua checks each owner: a job recovered by another worker meanwhile stays.
            call = self.service.scripts.hand_back(
                taken[start : start + READ_BATCH],
                self.max_handbacks,
                "",
                self.clock.now_ms(),
                self.keep_ms,
            )
            handed_back += (await self.service.run(call))[0]
        self.claim_ids.clear()
        if handed_back:
            log.warning("handed back %d job(s) taken by a claim whose reply was lost", handed_back)
        return handed_back
