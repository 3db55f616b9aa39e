"""The wrappers of the scripts an operator (or the service on one's behalf) runs: the dead-letter
queue, cancel and run-now, waiting on a job, pauses, and clearing a queue. Kept apart from the
job-moving scripts because none of them is on the worker's hot path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qworker.scripts.loading import (
    ScriptCall,
    ScriptsBase,
    _as_int,
    _as_int_triple,
    _as_str_list,
    _time,
)

# Entries one clear or trim_dead_letter call deletes at most, so that no call blocks Redis for
# long (about a millisecond per thousand); the caller loops until done.
DELETE_BATCH = 1000


@dataclass(frozen=True)
class JobStep:
    """The reply of cancel and run_now: what happened, and the job's state before."""

    outcome: str
    state: str


def _parse_step(reply: Any) -> JobStep:
    return JobStep(str(reply[0]), str(reply[1]))


class ControlScripts(ScriptsBase):
    """Dead letters, one job by id, pauses, clear."""

    def requeue_dead(
        self,
        job_ids: Sequence[str],
        *,
        requeue_all: bool,
        priority: int | None,
        now_ms: int | None = None,
    ) -> ScriptCall[list[str]]:
        k = self.keys
        return self._call(
            "requeue_dead",
            [k.dead_letter, *k.priorities, k.wakeup, k.fence],
            [
                k.job_prefix,
                "" if priority is None else priority,
                "1" if requeue_all else "0",
                _time(now_ms),
                *job_ids,
            ],
            _as_str_list,
        )

    # Each deleting script takes keep_ms: a deleted job that still counted among a dependency's
    # open dependents lets go of that dependency's record, which is then kept keep_ms.

    def delete_dead(self, job_ids: Sequence[str], *, keep_ms: int) -> ScriptCall[list[str]]:
        k = self.keys
        return self._call(
            "delete_dead",
            [k.dead_letter, k.fence],
            [k.job_prefix, keep_ms, *job_ids],
            _as_str_list,
        )

    def trim_dead_letter(
        self, oldest_kept_ms: int, max_jobs: int, *, keep_ms: int, limit: int = DELETE_BATCH
    ) -> ScriptCall[int]:
        """Drops at most ``limit`` entries; call again while it replies ``limit``."""
        k = self.keys
        return self._call(
            "trim_dead_letter",
            [k.dead_letter, k.stats, k.fence],
            [k.job_prefix, oldest_kept_ms, max_jobs, limit, keep_ms],
            _as_int,
        )

    def clear(
        self, queue_keys: Sequence[str], *, keep_ms: int, limit: int = DELETE_BATCH
    ) -> ScriptCall[int]:
        """Deletes at most ``limit`` entries; call again while it replies ``limit``."""
        k = self.keys
        return self._call("clear", [*queue_keys, k.fence], [k.job_prefix, limit, keep_ms], _as_int)

    def cancel(self, job_id: str, now_ms: int | None, keep_ms: int) -> ScriptCall[JobStep]:
        k = self.keys
        return self._call(
            "cancel",
            [*k.priorities, k.scheduled, k.retry, k.parked, k.inflight, k.stats, k.fence],
            [k.job_prefix, job_id, _time(now_ms), keep_ms],
            _parse_step,
        )

    def run_now(self, job_id: str, now_ms: int | None) -> ScriptCall[JobStep]:
        k = self.keys
        return self._call(
            "run_now",
            [*k.priorities, k.scheduled, k.retry, k.parked, k.wakeup, k.fence],
            [k.job_prefix, job_id, _time(now_ms)],
            _parse_step,
        )

    def watch(self, job_id: str) -> ScriptCall[str]:
        """Registers a waiter unless the job has ended; replies with its state ('' missing)."""
        k = self.keys
        return self._call("watch", [k.job(job_id), k.fence], [], str)

    def lift_pauses(
        self, now_ms: int | None, limit: int, end_now: str = ""
    ) -> ScriptCall[tuple[int, int, int]]:
        """``end_now``: a pauses field to end first (a resume). Replies (held jobs moved back,
        pauses left, 1 if ``end_now`` was paused)."""
        k = self.keys
        return self._call(
            "lift_pauses",
            [k.pauses, *k.priorities, k.wakeup, k.fence],
            [k.job_prefix, _time(now_ms), limit, end_now],
            _as_int_triple,
        )
