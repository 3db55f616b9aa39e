"""Single jobs by id: finding one by a prefix of its id, where it stands and why it waits, pages
of the jobs in one state, and pauses.

Everything here reads, or writes what is not a job (a pause); the moves of a job (cancel, run
now, the end of a pause) are Lua scripts, run by ``QueueService``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis

from qworker.clock import format_duration, format_iso
from qworker.errors import JobNotFound, QworkerError, ValidationFailed
from qworker.keys import PRIORITIES, QueueKeys, glob_escape
from qworker.models import (
    FINISHED_STATES,
    JOB_STATES,
    JobPage,
    JobRecord,
    WaitReason,
)
from qworker.producing import JOB_ID_PATTERN, check_priority
from qworker.reports import read_pauses

# The shortest prefix of an id that may stand for the id (logs and the demo print 8).
MIN_ID_PREFIX = 6
# Keys looked at per SCAN step when resolving a prefix.
SCAN_COUNT = 10_000
# A queued job's place is counted up to this far from the front (LPOS is O(place)).
MAX_POSITION = 100_000
# The largest page of ``jobs list``.
MAX_PAGE = 1000
# Entries one page looks at when filtering by type or priority: a page costs what a page costs,
# however rare the matches (the cursor goes on where it stopped).
FILTER_BUDGET = 10_000
# What a job type name may be in a pause (it is part of a key name).
MAX_TYPE_LENGTH = 100


class NoSuchJob(JobNotFound):
    def __init__(self, job_id: str, detail: str = "") -> None:
        QworkerError.__init__(self, f"no job {job_id}{detail}")
        self.job_ids = [job_id]


class AmbiguousJobId(ValidationFailed):
    def __init__(self, prefix: str, matches: Sequence[str]) -> None:
        shown = ", ".join(sorted(matches)[:10])
        more = " ..." if len(matches) > 10 else ""
        super().__init__(
            f"job id prefix {prefix!r} matches {len(matches)} jobs ({shown}{more}): "
            "give more characters"
        )
        self.matches = list(matches)


class NotWaiting(QworkerError):
    """``run_job_now`` of a job that is not waiting for a time."""


class WaitTimedOut(QworkerError):
    def __init__(self, job_id: str, state: str, timeout_s: float) -> None:
        super().__init__(f"job {job_id} is still {state} after {timeout_s:g}s")
        self.job_id = job_id
        self.state = state


async def resolve_job_id(client: aioredis.Redis, keys: QueueKeys, given: str) -> str:
    """The job id ``given`` stands for: itself if such a job exists, else the one job whose id
    starts with it (at least MIN_ID_PREFIX characters, as git takes commit ids)."""
    if not isinstance(given, str) or not JOB_ID_PATTERN.fullmatch(given):
        raise ValidationFailed(
            f"{given!r} is not a job id: ids are 1 to 64 characters of A-Z, a-z, 0-9, "
            "'.', '_', ':' and '-'"
        )
    if await client.exists(keys.job(given)):
        return given
    if len(given) < MIN_ID_PREFIX:
        raise NoSuchJob(given, f" (a prefix must have at least {MIN_ID_PREFIX} characters)")
    pattern = glob_escape(keys.job_prefix + given) + "*"
    matches: set[str] = set()
    async for key in client.scan_iter(match=pattern, count=SCAN_COUNT):
        matches.add(key.removeprefix(keys.job_prefix))
        if len(matches) > 10:
            break
    if not matches:
        raise NoSuchJob(given)
    if len(matches) > 1:
        raise AmbiguousJobId(given, sorted(matches))
    return matches.pop()


async def read_job(
    client: aioredis.Redis, keys: QueueKeys, job_id: str, now_ms: int
) -> JobRecord | None:
    """The job's record with its state and, unless it runs or has finished, why it waits."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.job(job_id))
    for key in (keys.scheduled, keys.retry, keys.parked, keys.inflight, keys.dead_letter):
        pipe.zscore(key, job_id)
    pipe.hgetall(keys.pauses)
    fields, scheduled, retry, parked, inflight, dead, pauses = await pipe.execute()
    if not fields:
        return None
    record = JobRecord.from_hash(job_id, fields)
    if "state" not in fields:  # a record older than job states: where it is says
        places = (
            ("scheduled", scheduled),
            ("retry", retry),
            ("parked", parked),
            ("running", inflight),
            ("dead", dead),
        )
        record.state = next((s for s, score in places if score is not None), "queued")  # type: ignore[misc]
    due = {"scheduled": scheduled, "retry": retry, "parked": parked, "running": inflight}
    record.waiting = await _wait_reason(client, keys, record, due, pauses, now_ms)
    return record


async def _wait_reason(
    client: aioredis.Redis,
    keys: QueueKeys,
    record: JobRecord,
    due: dict[str, float | None],
    pause_entries: dict[str, str],
    now_ms: int,
) -> WaitReason | None:
    state = record.state
    due_ms = int(score) if (score := due.get(state)) is not None else None
    paused = {p.target: p for p in await read_pauses(client, keys, now_ms, pause_entries)}
    if state == "queued":
        # A laned type's job is in its lane (routing.py), or still in the shared list.
        lists = [keys.priority(record.priority)]
        if record.job_type and await client.hexists(keys.lanes, record.job_type):
            lists.insert(0, keys.lane(record.job_type, record.priority))
        place = "further back than " + str(MAX_POSITION)
        for key in lists:
            index = await client.execute_command(  # type: ignore[no-untyped-call]
                "LPOS", key, record.id, "RANK", -1, "MAXLEN", MAX_POSITION
            )
            if index is not None:
                place = str(await client.llen(key) - int(index))
                if key != keys.priority(record.priority):
                    place += f" in the {record.job_type} lane"
                break
        pause = paused.get(f"priority {record.priority}") or paused.get(
            f"job type {record.job_type}"
        )
        if pause is not None and pause.active(now_ms):
            return WaitReason(
                reason=f"{pause.target} is paused (place {place} in priority {record.priority})",
                until_ms=pause.until_ms,
            )
        return WaitReason(reason=f"place {place} in priority {record.priority}")
    if state == "scheduled":
        return WaitReason(reason="scheduled", until_ms=due_ms)
    if state == "retry":
        return WaitReason(reason=f"retry after attempt {record.attempts} failed", until_ms=due_ms)
    if state == "parked":
        return WaitReason(
            reason=f"rate limit {record.rate_key or record.job_type!r} closed", until_ms=due_ms
        )
    if state == "paused":
        pause = paused.get(f"job type {record.job_type}")
        return WaitReason(
            reason=f"job type {record.job_type} is paused",
            until_ms=pause.until_ms if pause is not None else None,
        )
    if state == "waiting":
        deps_left, delay_ms, not_before_ms = cast(
            list[str | None],
            await client.hmget(keys.job(record.id), "deps_left", "ready_delay_ms", "not_before_ms"),
        )
        deadline = await client.zscore(keys.waiting, record.id)
        return WaitReason(
            reason=f"{deps_left or '?'} of its dependencies not done yet"
            + _then(int(delay_ms or 0), int(not_before_ms or 0)),
            until_ms=int(deadline) if deadline is not None else None,
        )
    if state == "running" and record.cancel_requested_at_ms is not None:
        return WaitReason(reason="cancel requested: its worker is stopping it")
    return None


def _then(delay_ms: int, not_before_ms: int) -> str:
    """What a waiting job given a delay or a start time does once its dependencies are done."""
    if delay_ms > 0:
        return f"; then a delay of {re.sub(r' 0[smh]$', '', format_duration(delay_ms / 1000))}"
    if not_before_ms > 0:
        return f"; then not before {format_iso(not_before_ms)}"
    return ""


# -- pages of jobs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """One list or sorted set holding jobs of a state, read in the order shown."""

    key: str
    kind: str  # 'list_front' (right end first), 'list' (left first), 'zset', 'zset_rev'
    state: str


def _sources(
    keys: QueueKeys, state: str, priority: int | None, paused_types: list[str], laned: list[str]
) -> list[_Source]:
    if state == "queued":
        chosen = [priority] if priority is not None else list(PRIORITIES)
        return [
            _Source(key, "list_front", state)
            for p in chosen
            for key in (keys.priority(p), *(keys.lane(t, p) for t in laned))
        ]
    if state in ("scheduled", "retry", "parked", "running"):
        key = {
            "scheduled": keys.scheduled,
            "retry": keys.retry,
            "parked": keys.parked,
            "running": keys.inflight,
        }[state]
        return [_Source(key, "zset", state)]
    if state == "dead":
        return [_Source(keys.dead_letter, "zset_rev", state)]
    if state in ("done", "canceled"):
        return [_Source(keys.recent(state), "list", state)]
    if state == "paused":
        return [_Source(keys.held(t), "zset", state) for t in paused_types]
    if state == "waiting":
        return [_Source(keys.waiting, "zset", state)]
    return []


async def _read_ids(client: aioredis.Redis, source: _Source, offset: int, count: int) -> list[str]:
    if source.kind == "list_front":
        ids = await client.lrange(source.key, -(offset + count), -(offset + 1))
        return list(reversed(cast(list[str], ids)))
    if source.kind == "list":
        return cast(list[str], await client.lrange(source.key, offset, offset + count - 1))
    if source.kind == "zset":
        return cast(list[str], await client.zrange(source.key, offset, offset + count - 1))
    return cast(list[str], await client.zrevrange(source.key, offset, offset + count - 1))


def _parse_cursor(cursor: str | None, sources: int) -> tuple[int, int]:
    if not cursor:
        return 0, 0
    try:
        source, _, offset = cursor.partition(":")
        position = int(source), int(offset)
    except ValueError:
        position = (-1, -1)
    if not (0 <= position[0] < max(sources, 1) and position[1] >= 0):
        raise ValidationFailed(f"{cursor!r} is not a cursor from this list: start without one")
    return position


async def list_jobs(
    client: aioredis.Redis,
    keys: QueueKeys,
    state: str,
    *,
    job_type: str | None = None,
    priority: int | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> JobPage:
    """One page of the jobs in ``state``: queued next first (priority 1 first), scheduled,
    retry, parked and running by due time, dead and finished newest first. Reads a page, not
    the list; ``next_cursor`` goes on where it stopped."""
    if state not in JOB_STATES:
        raise ValidationFailed(f"state must be one of {', '.join(JOB_STATES)}, not {state!r}")
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed(f"limit must be 1 to {MAX_PAGE}, not {limit!r}")
    if priority is not None:
        check_priority(priority)
    pause_entries = cast(dict[str, str], await client.hgetall(keys.pauses))
    paused_types = sorted(n.partition(":")[2] for n in pause_entries if n.startswith("type:"))
    laned = sorted(cast(list[str], await client.hkeys(keys.lanes))) if state == "queued" else []
    sources = _sources(keys, state, priority, paused_types, laned)
    source_index, offset = _parse_cursor(cursor, len(sources))
    filtered = job_type is not None or (priority is not None and state != "queued")
    budget = FILTER_BUDGET if filtered else limit
    jobs: list[JobRecord] = []
    while source_index < len(sources) and len(jobs) < limit and budget > 0:
        source = sources[source_index]
        count = min(max(limit - len(jobs), 100 if filtered else 0), budget)
        ids = await _read_ids(client, source, offset, count)
        if not ids:
            source_index, offset = source_index + 1, 0
            continue
        records = await _read_records(client, keys, ids)
        taken = 0
        for job_id, fields in zip(ids, records, strict=True):
            taken += 1
            if fields is None:
                continue  # finished meanwhile, or its kept record expired
            record = JobRecord.from_hash(job_id, fields)
            if "state" not in fields:
                record.state = state  # type: ignore[assignment]
            if job_type is not None and record.job_type != job_type:
                continue
            if priority is not None and record.priority != priority:
                continue
            jobs.append(record)
            if len(jobs) == limit:
                break
        offset += taken
        budget -= taken
    more = source_index < len(sources) and await _has_more(client, sources, source_index, offset)
    return JobPage(jobs=jobs, next_cursor=f"{source_index}:{offset}" if more else None)


async def _has_more(
    client: aioredis.Redis, sources: list[_Source], source_index: int, offset: int
) -> bool:
    for index in range(source_index, len(sources)):
        if await _read_ids(client, sources[index], offset if index == source_index else 0, 1):
            return True
    return False


async def _read_records(
    client: aioredis.Redis, keys: QueueKeys, job_ids: list[str]
) -> list[dict[str, str] | None]:
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hgetall(keys.job(job_id))
    return [row or None for row in await pipe.execute()]


# -- pauses ----------------------------------------------------------------------------------


def pause_field(priority: int | None, job_type: str | None) -> str:
    """The pauses hash field of a priority or a job type (exactly one of them)."""
    if (priority is None) == (job_type is None):
        raise ValidationFailed("name a priority or a job type to pause or resume (one of them)")
    if priority is not None:
        return f"priority:{check_priority(priority)}"
    assert job_type is not None
    if not job_type or len(job_type) > MAX_TYPE_LENGTH or not job_type.isprintable():
        raise ValidationFailed(f"{job_type!r} is not a job type name")
    return f"type:{job_type}"


def pause_end_ms(for_s: float | None, now_ms: int) -> int:
    """-1 (until resumed) or the time the pause ends."""
    if for_s is None:
        return -1
    if not isinstance(for_s, int | float) or not 0 < for_s < 10 * 365 * 86400:
        raise ValidationFailed(f"a pause lasts a positive time (at most 10 years), not {for_s!r}")
    return now_ms + max(int(for_s * 1000), 1)


def is_finished(state: str) -> bool:
    return state in FINISHED_STATES


def minimal_record(job_id: str, state: str) -> JobRecord:
    """What is known of a job whose record is gone (QWORKER_KEEP_FINISHED_S=0): its end."""
    return JobRecord(id=job_id, state=state, payload="")  # type: ignore[arg-type]
