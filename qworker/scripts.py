"""The only Python that knows the Lua scripts: one typed method per script in ``lua/``.

Each method returns a :class:`ScriptCall` (keys, arguments and a parser for the reply) instead of
running it, so the caller decides whether to run it alone or in one pipeline with others: the
worker acknowledges finished jobs and claims new ones in a single round trip. Argument names and
order follow each script's header.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any, Generic, TypeVar

from qworker.keys import LUA_KEY_NAMES, RECENT_FINISHED_MAX, STAT_DRY_RUN, QueueKeys

T = TypeVar("T")

# Entries one clear or trim_dead_letter call deletes at most, so that no call blocks Redis for
# long (about a millisecond per thousand); the caller loops until done.
DELETE_BATCH = 1000

SCRIPT_NAMES = (
    "enqueue",
    "claim",
    "complete",
    "defer",
    "bury",
    "hand_back",
    "recover",
    "promote",
    "release_parked",
    "renew",
    "checkpoint",
    "requeue_dead",
    "trim_dead_letter",
    "clear",
    "rate_reserve",
    "rate_block",
    "unknown_type",
    "cancel",
    "run_now",
    "watch",
    "lift_pauses",
    "maintenance_turn",
    "x_gate",
    "x_settle",
    "schedule_upsert",
    "schedule_fire",
    "schedule_pause",
    "schedule_remove",
    "mark_dry_run",
    "delete_dead",
    "enqueue_flow",
    "dep_timeout",
)
# A line ``--#include NAME`` in a script stands for the file ``lua/include/NAME.lua``: helpers
# several scripts share (one copy to review, and every script that uses them is still one step).
# ``--#include keys`` stands for the key names of keys.py, as the Lua table KEY_NAMES, and the
# length of the lists of recently finished jobs, RECENT_MAX.
_INCLUDE = re.compile(r"^--#include (\w+)$", re.MULTILINE)


def key_names_prelude() -> str:
    """The Lua that ``--#include keys`` stands for."""
    entries = ", ".join(f"{name} = '{suffix}'" for name, suffix in LUA_KEY_NAMES.items())
    return f"local KEY_NAMES = {{{entries}}}\nlocal RECENT_MAX = {RECENT_FINISHED_MAX}"


def _included(match: re.Match[str]) -> str:
    if match[1] == "keys":
        return key_names_prelude()
    lua = files("qworker").joinpath("lua", "include", f"{match[1]}.lua")
    return lua.read_text(encoding="utf-8")


@dataclass(frozen=True)
class LuaScript:
    name: str
    source: str
    sha: str


@cache
def load_script(name: str) -> LuaScript:
    source = files("qworker").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")
    while _INCLUDE.search(source):  # an included file may include another
        source = _INCLUDE.sub(_included, source)
    return LuaScript(name, source, hashlib.sha1(source.encode()).hexdigest())


@dataclass(frozen=True)
class ScriptCall(Generic[T]):
    script: LuaScript
    keys: Sequence[str]
    args: Sequence[str | int | float]
    parse: Callable[[Any], T]

    def command(self) -> tuple[Any, ...]:
        return ("EVALSHA", self.script.sha, len(self.keys), *self.keys, *self.args)


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
class EnqueueReply:
    stored: int
    # Index in the batch of each job refused as a duplicate -> the id holding its unique key.
    duplicates: dict[int, str]


@dataclass(frozen=True)
class JobStep:
    """The reply of cancel and run_now: what happened, and the job's state before."""

    outcome: str
    state: str


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


def _as_str_pair(reply: Any) -> tuple[str, str]:
    return str(reply[0]), str(reply[1])


def _as_int(reply: Any) -> int:
    return int(reply)


def _as_str_list(reply: Any) -> list[str]:
    return [str(item) for item in reply]


def _as_str_pairs(reply: Any) -> list[tuple[str, str]]:
    return [(str(reply[i]), str(reply[i + 1])) for i in range(0, len(reply), 2)]


def _as_int_pair(reply: Any) -> tuple[int, int]:
    return int(reply[0]), int(reply[1])


def _as_int_triple(reply: Any) -> tuple[int, int, int]:
    return int(reply[0]), int(reply[1]), int(reply[2])


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


def _parse_step(reply: Any) -> JobStep:
    return JobStep(str(reply[0]), str(reply[1]))


def _unique_spec(item: EnqueueItem) -> str:
    """enqueue.lua's one argument for a unique key: 'UNTIL:FOR_MS:KEY', or '' for none."""
    if not item.unique_key:
        return ""
    return f"{item.unique_until}:{item.unique_for_ms or ''}:{item.unique_key}"


def _time(now_ms: int | str | None) -> int | str:
    """None asks the script to read Redis's own clock (TIME): one clock for every host."""
    return "" if now_ms is None else now_ms


def _pairs(pairs: Sequence[tuple[str, str]]) -> list[str]:
    return [value for pair in pairs for value in pair]


class QueueScripts:
    """Builds the call of every script for one namespace."""

    def __init__(self, keys: QueueKeys) -> None:
        self.keys = keys

    def _call(
        self,
        name: str,
        keys: Sequence[str],
        args: Sequence[str | int | float],
        parse: Callable[[Any], T],
    ) -> ScriptCall[T]:
        return ScriptCall(load_script(name), keys, args, parse)

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

    def delete_dead(self, job_ids: Sequence[str]) -> ScriptCall[list[str]]:
        k = self.keys
        return self._call(
            "delete_dead", [k.dead_letter, k.fence], [k.job_prefix, *job_ids], _as_str_list
        )

    def trim_dead_letter(
        self, oldest_kept_ms: int, max_jobs: int, limit: int = DELETE_BATCH
    ) -> ScriptCall[int]:
        """Drops at most ``limit`` entries; call again while it replies ``limit``."""
        k = self.keys
        return self._call(
            "trim_dead_letter",
            [k.dead_letter, k.stats, k.fence],
            [k.job_prefix, oldest_kept_ms, max_jobs, limit],
            _as_int,
        )

    def maintenance_turn(self, worker_id: str, ttl_ms: int) -> ScriptCall[int]:
        """1 when ``worker_id`` holds the fleet's maintenance turn now; ``ttl_ms`` 0 gives it up."""
        k = self.keys
        return self._call(
            "maintenance_turn", [k.maintenance_turn, k.fence], [worker_id, ttl_ms], _as_int
        )

    def clear(self, queue_keys: Sequence[str], limit: int = DELETE_BATCH) -> ScriptCall[int]:
        """Deletes at most ``limit`` entries; call again while it replies ``limit``."""
        k = self.keys
        return self._call("clear", [*queue_keys, k.fence], [k.job_prefix, limit], _as_int)

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
        self, name: str, *, pause: bool, next_due_ms: int | None, now_ms: int
    ) -> ScriptCall[int]:
        """Replies 1 changed, 0 already so, -1 no such schedule."""
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

    def mark_dry_run(self, job_id: str, owner: str, now_ms: int) -> ScriptCall[int]:
        """Record that a dry run did not do the job's work, and count it (once per job)."""
        k = self.keys
        return self._call(
            "mark_dry_run",
            [k.job(job_id), k.stats, k.fence],
            [owner, now_ms, STAT_DRY_RUN],
            _as_int,
        )


__all__ = [
    "SCRIPT_NAMES",
    "ClaimReply",
    "ClaimedJob",
    "EnqueueItem",
    "EnqueueReply",
    "FireReply",
    "FlowItem",
    "FlowReply",
    "JobStep",
    "QueueScripts",
    "ScheduledJob",
    "ScriptCall",
]
