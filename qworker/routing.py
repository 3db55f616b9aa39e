"""Which job types a worker serves (``qworker work --job-types``), and the lanes that let a
worker skip every other type at no cost per job.

Why lanes. A worker that serves only some types must never claim the others, and their jobs
must wait for a worker that serves them: not dead-lettered, not spinning, and not costing the
types that do run anything per job. Reading past them in the shared priority lists would cost
every claim a read per waiting job (and a list of 100,000 waiting tweets would stall every other
type's claim), and moving them aside at each claim, as a paused type's jobs are, would cost a
move per job for as long as no worker serves the type. So a type that a worker does not serve
gets a *lane*: four lists of its own, one per priority (``keys.lane``), and a wakeup list of its
own (``keys.lane_wakeup``). The lanes are listed in one hash (``keys.lanes``); enqueue, and
every script that makes a job ready again (a retry, a hand-back, a recovered lease, a released
rate limit, a lifted pause, ``job run``, ``dlq requeue``), route a job of a laned type to its
lane (``lua/include/lanes.lua``: one HEXISTS per type and call). A lane nobody serves is never
read: its jobs wait at no cost at all, and ``stats`` names the type (``unserved_types``).

Who opens a lane. A worker serving only some types reads the shared lists and the lanes of its
own types. A job of another type that it meets in the shared lists is moved, once, to the back
of its type's lane (opening the lane, for good: from then on enqueue routes that type there).
So jobs queued before any worker was restricted are sorted out by the first claims, and in a
fleet of restricted workers every type ends up in its lane after its first job. (A payload
another program pushes by hand names its type in its JSON: it is sorted the same way.) A worker
serving every type (the default) reads the shared lists as before and the lane of every laned
type it knows: with no lanes, its claim costs one HKEYS more than before (one O(1) command per
claim, not per job); with lanes, one EXISTS tells an empty source at once. Enqueue pays one
HEXISTS per job type and call. Within a priority the lists are read from a start that rotates
with each claim, so no lane starves another; priority order holds across all lists, FIFO within
each list (jobs moved to a lane join its back, behind any enqueued there since it opened).

Waking. Each lane has its own wakeup list, so an idle worker wakes only for jobs it serves: a
token a tweet enqueue pushes is never taken (and dropped) by a worker that serves only
reports. An idle worker blocks on the shared wakeup list and on those of the lanes it reads, in
one BLPOP: its idle command rate does not grow with the number of types.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis

from qworker.errors import ValidationFailed
from qworker.keys import PRIORITIES, QueueKeys

# Fields of a worker's record (keys.worker): whether it serves every type it knows, and those
# types (the ones it knows, or the only ones it serves).
SERVES_ALL_FIELD = "serves_all"
JOB_TYPES_FIELD = "job_types"


def parse_job_types(value: str | Iterable[str] | None) -> list[str]:
    """``"tweet, report"`` or ``["tweet", "report"]`` as a list without blanks or repeats;
    an empty list means every type."""
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else [p for v in value for p in v.split(",")]
    names: list[str] = []
    for part in (p.strip() for p in parts):
        if part and part not in names:
            names.append(part)
    return names


@dataclass(frozen=True)
class Served:
    """The job types a worker serves: every type it knows (``only`` empty), or just ``only``."""

    only: tuple[str, ...] = ()

    @classmethod
    def checked(cls, job_types: Sequence[str], known: Sequence[str]) -> Served:
        """``job_types`` (empty: every type), each of which must be a type this worker knows:
        a worker serving a type it cannot run would take its jobs only to defer them."""
        unknown = [name for name in job_types if name not in known]
        if unknown:
            raise ValidationFailed(
                f"--job-types names job type(s) this worker does not know: {', '.join(unknown)} "
                f"(known: {', '.join(known) or 'none'}); load the module that registers them "
                "with --import MODULE or QWORKER_JOB_MODULES"
            )
        return cls(tuple(job_types))

    @property
    def serves_all(self) -> bool:
        return not self.only

    def serves(self, job_type: str) -> bool:
        return self.serves_all or job_type in self.only

    def claim_types(self, known: Sequence[str]) -> Sequence[str]:
        """What claim.lua is given after its mode: the types known ('all') or served ('only')."""
        return known if self.serves_all else self.only

    def wakeup_keys(self, keys: QueueKeys, lanes: Sequence[str]) -> list[str]:
        """The lists an idle worker blocks on: the shared one, then those of the lanes it reads
        (its own types', or, serving every type, the laned types its last claim saw)."""
        return [keys.wakeup, *(keys.lane_wakeup(t) for t in (self.only or lanes))]

    def record(self, known: Sequence[str]) -> dict[str, str]:
        """The fields of the worker's record that ``stats`` reads to find unserved types."""
        return {
            SERVES_ALL_FIELD: "1" if self.serves_all else "0",
            JOB_TYPES_FIELD: json.dumps(list(self.claim_types(known))),
        }

    def describe(self) -> str:
        return ", ".join(self.only) if self.only else "every type it knows"


async def read_lane_lengths(client: aioredis.Redis, keys: QueueKeys) -> dict[str, list[int]]:
    """Every laned type to the lengths of its four lists (priority 1 first): one HKEYS and
    one pipeline, whatever the lengths."""
    laned = sorted(cast(list[str], await client.hkeys(keys.lanes)))
    if not laned:
        return {}
    pipe = client.pipeline(transaction=False)
    for job_type in laned:
        for priority in PRIORITIES:
            pipe.llen(keys.lane(job_type, priority))
    lengths = [int(n) for n in await pipe.execute()]
    size = len(PRIORITIES)
    return {t: lengths[i * size : (i + 1) * size] for i, t in enumerate(laned)}


def served_types(worker_record: dict[str, str]) -> set[str] | None:
    """The types a live worker's claims read the lanes of; None for a worker that did not say
    (one older than lanes: it reads no lane)."""
    try:
        return set(json.loads(worker_record[JOB_TYPES_FIELD]))
    except (KeyError, ValueError, TypeError):
        return None


async def read_unserved(
    client: aioredis.Redis, keys: QueueKeys, lanes: dict[str, int]
) -> dict[str, int]:
    """The laned types with jobs waiting that no live worker serves (read only when some lane
    has jobs: one ZRANGE and a pipeline over the live workers)."""
    if not any(lanes.values()):
        return {}
    worker_ids = cast(list[str], await client.zrange(keys.workers, 0, -1))
    pipe = client.pipeline(transaction=False)
    for worker_id in worker_ids:
        pipe.hget(keys.worker(worker_id), JOB_TYPES_FIELD)
    served = [
        served_types({JOB_TYPES_FIELD: value}) if value else None for value in await pipe.execute()
    ]
    return unserved_types(lanes, served)


def unserved_types(lanes: dict[str, int], served: Iterable[set[str] | None]) -> dict[str, int]:
    """The laned types with jobs waiting that no live worker serves, to how many wait."""
    covered: set[str] = set()
    for types in served:
        covered |= types or set()
    return {t: n for t, n in sorted(lanes.items()) if n and t not in covered}


__all__ = [
    "JOB_TYPES_FIELD",
    "SERVES_ALL_FIELD",
    "Served",
    "parse_job_types",
    "read_lane_lengths",
    "read_unserved",
    "served_types",
    "unserved_types",
]
