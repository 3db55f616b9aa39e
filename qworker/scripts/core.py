"""The wrappers of the scripts that move jobs: enqueue, claim, complete, defer, bury, hand back,
recover, promote, renew, checkpoint, the unknown-type mark. The worker's hot path runs these, so
they stay plain methods that build one :class:`ScriptCall` each, with nothing in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qworker.scripts.loading import (
    ScriptCall,
    ScriptsBase,
    _as_int,
    _as_int_pair,
    _as_str_list,
    _as_str_pairs,
    _pairs,
    _time,
)


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    claims: int
    fields: dict[str, str]


@dataclass(frozen=True)
class ClaimReply:
    jobs: list[ClaimedJob]
    # Entries in the pauses hash: while there are any, the worker lifts the ended ones.
    pauses: int
    # The laned types whose lanes the worker read: it blocks on their wakeup lists too.
    lanes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EnqueueItem:
    job_id: str
    priority: int
    job_type: str
    payload: str
    max_retries: int | None
    run_at_ms: int | None
    unique_key: str | None = None
    unique_for_ms: int | None = None
    # The point that releases the unique key: "started" or "finished".
    unique_until: str = "finished"


@dataclass(frozen=True)
class EnqueueReply:
    stored: int
    # Index in the batch of each job refused as a duplicate -> the id holding its unique key.
    duplicates: dict[int, str]


def _parse_claimed(reply: Any) -> ClaimReply:
    jobs = []
    for index in range(2, len(reply), 2):
        flat = reply[index + 1]
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        jobs.append(ClaimedJob(reply[index], int(fields["claims"]), fields))
    return ClaimReply(jobs, int(reply[0]), [str(lane) for lane in reply[1]])


def _parse_enqueued(reply: Any) -> EnqueueReply:
    pairs = reply[1:]
    return EnqueueReply(
        int(reply[0]), {int(pairs[i]) - 1: str(pairs[i + 1]) for i in range(0, len(pairs), 2)}
    )


def _unique_spec(item: EnqueueItem) -> str:
    """enqueue.lua's one argument for a unique key: 'UNTIL:FOR_MS:KEY', or '' for none."""
    if not item.unique_key:
        return ""
    return f"{item.unique_until}:{item.unique_for_ms or ''}:{item.unique_key}"


class CoreScripts(ScriptsBase):
    """The job-moving scripts, in the order a job meets them."""

    def enqueue(self, items: Sequence[EnqueueItem], now_ms: int) -> ScriptCall[EnqueueReply]:
        k = self.keys
        args: list[str | int | float] = [k.job_prefix, now_ms]
        for item in items:
            args += [
                item.job_id,
                item.priority,
                item.job_type,
                item.payload,
                "" if item.max_retries is None else item.max_retries,
                "" if item.run_at_ms is None else item.run_at_ms,
                _unique_spec(item),
            ]
        return self._call(
            "enqueue",
            [*k.priorities, k.scheduled, k.wakeup, k.seq, k.fence],
            args,
            _parse_enqueued,
        )

    def claim(
        self,
        worker_id: str,
        now_ms: int | None,
        lease_ms: int,
        max_jobs: int,
        id_base: str,
        *,
        serves_all: bool = True,
        job_types: Sequence[str] = (),
    ) -> ScriptCall[ClaimReply]:
        """``now_ms`` None: the script reads Redis's clock (as every ``now_ms`` below).
        ``job_types``: the types the worker knows (``serves_all``) or the only ones it serves."""
        k = self.keys
        return self._call(
            "claim",
            [*k.priorities, k.inflight, k.wakeup, k.pauses, k.fence],
            [
                k.job_prefix,
                worker_id,
                _time(now_ms),
                lease_ms,
                max_jobs,
                id_base,
                "all" if serves_all else "only",
                *job_types,
            ],
            _parse_claimed,
        )

    def complete(
        self, finished: Sequence[tuple[str, str, str]], now_ms: int | None, keep_ms: int
    ) -> ScriptCall[list[str]]:
        """``finished``: (job id, owner token, result JSON or '') triples. Replies with the ids
        no longer owned."""
        k = self.keys
        with_result = [v for triple in finished if triple[2] for v in triple]
        without = [v for job_id, owner, result in finished if not result for v in (job_id, owner)]
        return self._call(
            "complete",
            [k.inflight, k.stats, k.fence],
            [k.job_prefix, _time(now_ms), keep_ms, len(with_result) // 3, *with_result, *without],
            _as_str_list,
        )

    def defer(
        self,
        target_key: str,
        job_id: str,
        owner: str,
        due_ms: int,
        attempts: int | None,
        error_json: str,
        now_ms: int,
        *,
        state: str,
        keep_ms: int,
        rate_key: str = "",
    ) -> ScriptCall[int]:
        """``state``: the job's state in ``target_key`` (retry, parked, scheduled). Replies 1
        moved, 2 canceled instead (an operator asked), 0 no longer owned."""
        k = self.keys
        return self._call(
            "defer",
            [k.inflight, target_key, k.stats, k.fence],
            [
                k.job_prefix,
                job_id,
                owner,
                due_ms,
                "" if attempts is None else attempts,
                error_json,
                now_ms,
                rate_key,
                state,
                keep_ms,
            ],
            _as_int,
        )

    def bury(
        self,
        job_id: str,
        owner: str,
        attempts: int,
        error_json: str,
        now_ms: int,
        *,
        attempt_failed: bool,
        keep_ms: int,
    ) -> ScriptCall[int]:
        """Replies 1 moved, 2 canceled instead (an operator asked), 0 no longer owned."""
        k = self.keys
        return self._call(
            "bury",
            [k.inflight, k.dead_letter, k.stats, k.fence],
            [
                k.job_prefix,
                job_id,
                owner,
                attempts,
                error_json,
                now_ms,
                "1" if attempt_failed else "0",
                keep_ms,
            ],
            _as_int,
        )

    def hand_back(
        self,
        jobs: Sequence[tuple[str, str, bool]],
        max_handbacks: int,
        error_json: str,
        now_ms: int,
        keep_ms: int,
    ) -> ScriptCall[tuple[int, int]]:
        """``jobs``: (job id, owner token, whether it had started). Replies with how many were
        handed back and how many went to the dead-letter queue (their hand-backs used up)."""
        k = self.keys
        triples = [str(v) for job_id, owner, ran in jobs for v in (job_id, owner, int(ran))]
        return self._call(
            "hand_back",
            [k.inflight, *k.priorities, k.wakeup, k.dead_letter, k.stats, k.fence],
            [k.job_prefix, max_handbacks, error_json, now_ms, keep_ms, *triples],
            _as_int_pair,
        )

    def recover(
        self,
        now_ms: int | None,
        limit: int,
        default_max_retries: int,
        error_json: str,
        keep_ms: int,
    ) -> ScriptCall[tuple[int, int]]:
        k = self.keys
        return self._call(
            "recover",
            [k.inflight, *k.priorities, k.dead_letter, k.stats, k.wakeup, k.fence],
            [k.job_prefix, _time(now_ms), limit, default_max_retries, error_json, keep_ms],
            _as_int_pair,
        )

    def promote(
        self, source_key: str, max_due_ms: int | str | None, limit: int
    ) -> ScriptCall[tuple[int, int]]:
        """``max_due_ms``: a time, '+inf' for every job, or None for Redis's clock."""
        k = self.keys
        return self._call(
            "promote",
            [source_key, *k.priorities, k.wakeup, k.fence],
            [k.job_prefix, _time(max_due_ms), limit],
            _as_int_pair,
        )

    def release_parked(self, now_ms: int | None, limit: int) -> ScriptCall[tuple[int, int]]:
        k = self.keys
        return self._call(
            "release_parked",
            [k.parked, *k.priorities, k.wakeup, k.rate_keys, k.fence],
            [k.job_prefix, k.rate_prefix, _time(now_ms), limit],
            _as_int_pair,
        )

    def renew(
        self, now_ms: int | None, lease_ms: int, owned: Sequence[tuple[str, str]]
    ) -> ScriptCall[list[tuple[str, str]]]:
        """Replies with the (job id, owner token) pairs no longer owned."""
        k = self.keys
        return self._call(
            "renew",
            [k.inflight, k.fence],
            [k.job_prefix, _time(now_ms), lease_ms, *_pairs(owned)],
            _as_str_pairs,
        )

    def checkpoint(self, job_id: str, owner: str, field: str, value: str) -> ScriptCall[int]:
        k = self.keys
        return self._call("checkpoint", [k.job(job_id), k.fence], [owner, field, value], _as_int)

    def unknown_type(self, job_id: str, owner: str, *, mark: bool, now_ms: int) -> ScriptCall[int]:
        """Mark a job no worker here knows the type of (replies when it was first seen so), or
        clear the mark once one does (replies 1 if there was one); 0 when not owned."""
        k = self.keys
        return self._call(
            "unknown_type",
            [k.job(job_id), k.stats, k.fence],
            [owner, "mark" if mark else "clear", now_ms],
            _as_int,
        )
