"""The wrappers of the scripts behind single features: flows, rate limits and the tweet job's X
side, schedules, the dry run, the fleet's maintenance turn and the worker's counts. Each family
is small; together they keep the job-moving wrappers (core.py) short enough to read at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qworker.keys import STAT_DRY_RUN
from qworker.scripts.loading import (
    ScriptCall,
    ScriptsBase,
    _as_int,
    _as_int_pair,
    _as_str_pair,
    _time,
)


@dataclass(frozen=True)
class FlowItem:
    """One job of a flow (enqueue_flow.lua): a job that may wait for others (``deps``)."""

    job_id: str
    priority: int
    job_type: str
    payload: str
    max_retries: int | None
    deps: tuple[str, ...] = ()
    # What the job does when a dependency fails: "fail" (dead-lettered) or "run" (runs anyway).
    on_dep_fail: str = "fail"
    dep_timeout_ms: int = 7 * 24 * 3600 * 1000
    # Once its dependencies are done: scheduled this long after (ms), or not before this time
    # (ms since the epoch); 0 for none.
    ready_delay_ms: int = 0
    not_before_ms: int = 0


@dataclass(frozen=True)
class FlowReply:
    """enqueue_flow's reply: how many jobs it stored, or (stored 0) why none: an unknown
    dependency's id, or an id already taken."""

    stored: int
    unknown_dep: str | None = None
    taken_id: str | None = None


def _parse_flow(reply: Any) -> FlowReply:
    code = int(reply[0])
    if code == -1:
        return FlowReply(0, unknown_dep=str(reply[1]))
    if code == -2:
        return FlowReply(0, taken_id=str(reply[1]))
    return FlowReply(code)


@dataclass(frozen=True)
class ScheduledJob:
    """One job a schedule fire enqueues: for ``scheduled_for_ms``, standing for ``covers`` due
    times from ``first_ms``."""

    job_id: str
    scheduled_for_ms: int
    first_ms: int
    covers: int


@dataclass(frozen=True)
class FireReply:
    """schedule_fire's reply: ``code`` (1 fired, 0 stale, -1 gone or paused, 2 not due yet,
    3 skipped for overlap), the script's clock, and the jobs enqueued or ms to wait."""

    code: int
    now_ms: int
    count: int


def _parse_fire(reply: Any) -> FireReply:
    return FireReply(int(reply[0]), int(reply[1]), int(reply[2]))


class FeatureScripts(ScriptsBase):
    """Flows, rate limits, the X side, schedules, the dry run, the maintenance turn, the
    worker's counts."""

    # -- flows (qworker/dependencies.py) -----------------------------------------------------

    def enqueue_flow(self, items: Sequence[FlowItem], now_ms: int) -> ScriptCall[FlowReply]:
        k = self.keys
        args: list[str | int | float] = [k.job_prefix, now_ms]
        for item in items:
            args += [
                item.job_id,
                item.priority,
                item.job_type,
                item.payload,
                "" if item.max_retries is None else item.max_retries,
                ",".join(item.deps),
                item.on_dep_fail,
                item.dep_timeout_ms,
                item.ready_delay_ms,
                item.not_before_ms,
            ]
        return self._call(
            "enqueue_flow",
            [*k.priorities, k.waiting, k.wakeup, k.seq, k.fence],
            args,
            _parse_flow,
        )

    def dep_timeout(self, now_ms: int | None, limit: int) -> ScriptCall[int]:
        """Dead-letters at most ``limit`` jobs waiting past their dep-timeout; call again while
        it replies ``limit``."""
        k = self.keys
        return self._call(
            "dep_timeout", [k.waiting, k.fence], [k.job_prefix, _time(now_ms), limit], _as_int
        )

    # -- rate limits (qworker/rate_limiter.py) -----------------------------------------------

    def rate_reserve(
        self,
        rate_key: str,
        now_ms: int | None,
        member: str,
        max_per_day: int | None,
        max_per_hour: int | None,
        min_interval_ms: int,
    ) -> ScriptCall[tuple[int, int]]:
        k = self.keys
        return self._call(
            "rate_reserve",
            [k.rate_log(rate_key), k.rate_blocked(rate_key), k.rate_keys, k.fence],
            [
                rate_key,
                _time(now_ms),
                member,
                "" if max_per_day is None else max_per_day,
                "" if max_per_hour is None else max_per_hour,
                min_interval_ms,
            ],
            _as_int_pair,
        )

    def rate_block(
        self, rate_key: str, blocked_until_ms: int, now_ms: int | None, give_back: str = ""
    ) -> ScriptCall[int]:
        """``give_back``: the member of a reservation to release in the same step."""
        k = self.keys
        return self._call(
            "rate_block",
            [k.rate_blocked(rate_key), k.rate_keys, k.rate_log(rate_key), k.fence],
            [rate_key, blocked_until_ms, _time(now_ms), give_back],
            _as_int,
        )

    # -- the tweet job's X side (qworker/jobs/x_account.py) ----------------------------------

    def x_gate(
        self,
        rate_key: str,
        month: str,
        now_ms: int,
        max_per_15_minutes: int | None,
        price_micro_usd: int,
        budget_micro_usd: int | None,
        month_end_ms: int,
        spend_field: str,
    ) -> ScriptCall[tuple[int, int]]:
        """Replies (0, 0) to go, or (reason, until_ms): 1 window, 2 X's limit, 3 budget."""
        k = self.keys
        return self._call(
            "x_gate",
            [k.rate_log(rate_key), k.x_limits(rate_key), k.x_spend(month), k.fence],
            [
                now_ms,
                "" if max_per_15_minutes is None else max_per_15_minutes,
                price_micro_usd,
                "" if budget_micro_usd is None else budget_micro_usd,
                month_end_ms,
                spend_field,
            ],
            _as_int_pair,
        )

    def x_settle(
        self,
        rate_key: str,
        month: str,
        now_ms: int,
        refund_micro_usd: int,
        spend_field: str,
        limits: Sequence[tuple[str, int, int]],
    ) -> ScriptCall[int]:
        """``limits``: (name, remaining, reset_ms) triples. Replies the block now in force."""
        k = self.keys
        return self._call(
            "x_settle",
            [k.x_limits(rate_key), k.rate_blocked(rate_key), k.x_spend(month), k.fence],
            [now_ms, refund_micro_usd, spend_field, *(v for limit in limits for v in limit)],
            _as_int,
        )

    def attach_media(
        self, job_id: str, payload: str, blobs: Sequence[bytes], keep_ms: int
    ) -> ScriptCall[int]:
        """Store a tweet's media with the job an enqueue just stored (run after it, in one
        MULTI/EXEC); 0 when that enqueue stored no job of this payload."""
        k = self.keys
        return self._call(
            "attach_media",
            [k.job(job_id), k.media(job_id), k.fence],
            [payload, keep_ms, *blobs],
            _as_int,
        )

    # -- schedules (qworker/schedule_store.py) ----------------------------------------------

    def schedule_upsert(
        self,
        name: str,
        now_ms: int,
        spec_key: str,
        next_due_ms: int | None,
        anchor_ms: int,
        config: dict[str, str],
    ) -> ScriptCall[tuple[str, str]]:
        """Replies ('added' or 'updated', the next due time in ms or '')."""
        k = self.keys
        return self._call(
            "schedule_upsert",
            [k.schedule(name), k.schedules, k.fence],
            [
                name,
                now_ms,
                spec_key,
                "" if next_due_ms is None else next_due_ms,
                anchor_ms,
                k.schedules_channel,
                *[v for pair in config.items() for v in pair],
            ],
            _as_str_pair,
        )

    def schedule_fire(
        self,
        name: str,
        now_ms: int | None,
        *,
        trigger: bool = False,
        version: int = 0,
        due_ms: int = 0,
        next_due_ms: int | None = None,
        missed: int = 0,
        overlapped: int = 0,
        jobs: Sequence[ScheduledJob] = (),
    ) -> ScriptCall[FireReply]:
        k = self.keys
        per_job = [
            v for job in jobs for v in (job.job_id, job.scheduled_for_ms, job.first_ms, job.covers)
        ]
        return self._call(
            "schedule_fire",
            [k.schedule(name), k.schedules, *k.priorities, k.wakeup, k.seq, k.fence],
            [
                k.job_prefix,
                _time(now_ms),
                name,
                "trigger" if trigger else "due",
                version,
                due_ms,
                "" if next_due_ms is None else next_due_ms,
                missed,
                overlapped,
                *per_job,
            ],
            _parse_fire,
        )

    def schedule_pause(
        self, name: str, *, pause: bool, next_due_ms: int | None, now_ms: int, version: int
    ) -> ScriptCall[int]:
        """Replies 1 changed, 0 already so, -1 no such schedule, -2 (a resume) the schedule
        changed since ``version``, which ``next_due_ms`` was computed from."""
        k = self.keys
        return self._call(
            "schedule_pause",
            [k.schedule(name), k.schedules, k.fence],
            [
                name,
                "1" if pause else "0",
                "" if next_due_ms is None else next_due_ms,
                now_ms,
                k.schedules_channel,
                version,
            ],
            _as_int,
        )

    def schedule_remove(self, name: str) -> ScriptCall[int]:
        k = self.keys
        return self._call(
            "schedule_remove",
            [k.schedule(name), k.schedules, k.fence],
            [name, k.schedules_channel],
            _as_int,
        )

    # -- the dry run, the maintenance turn, the worker's counts ------------------------------

    def mark_dry_run(self, job_id: str, owner: str, now_ms: int) -> ScriptCall[int]:
        """Record that a dry run did not do the job's work, and count it (once per job)."""
        k = self.keys
        return self._call(
            "mark_dry_run",
            [k.job(job_id), k.stats, k.fence],
            [owner, now_ms, STAT_DRY_RUN],
            _as_int,
        )

    def maintenance_turn(self, worker_id: str, ttl_ms: int) -> ScriptCall[int]:
        """1 when ``worker_id`` holds the fleet's maintenance turn now; ``ttl_ms`` 0 gives it up."""
        k = self.keys
        return self._call(
            "maintenance_turn", [k.maintenance_turn, k.fence], [worker_id, ttl_ms], _as_int
        )

    def worker_counts(
        self, worker_id: str, running: int, prefetched: int, lease_ms: int
    ) -> ScriptCall[int]:
        """Write a worker's running/prefetched counts into its record; 0 if it has none now."""
        k = self.keys
        return self._call(
            "worker_counts",
            [k.worker(worker_id), k.fence],
            [running, prefetched, lease_ms],
            _as_int,
        )
