"""The audit stream: every action taken in the web UI (who, what, when, which jobs), in one
Redis stream capped at about ``audit_max_entries`` entries, read newest first in pages."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import cast

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from qworker.keys import QueueKeys

# The ids named in one entry; an action on more (requeue all) records how many instead.
MAX_IDS_RECORDED = 100


class AuditEntry(BaseModel):
    id: str = Field(description="The stream entry id (its time in ms, then a sequence).")
    at_ms: int
    who: str
    action: str
    job_ids: list[str] = Field(default_factory=list)
    detail: str = ""


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_cursor: str | None = None


async def record(
    client: aioredis.Redis,
    keys: QueueKeys,
    *,
    who: str,
    action: str,
    job_ids: Sequence[str] = (),
    detail: str = "",
    max_entries: int,
) -> None:
    """Add one entry (one XADD, trimming the oldest beyond ``max_entries``)."""
    ids = list(job_ids)
    if len(ids) > MAX_IDS_RECORDED:
        detail = f"{detail} ({len(ids)} jobs; the first {MAX_IDS_RECORDED} listed)".strip()
        ids = ids[:MAX_IDS_RECORDED]
    fields = {"who": who, "action": action, "jobs": json.dumps(ids), "detail": detail}
    await client.xadd(keys.audit, fields, maxlen=max_entries, approximate=True)  # type: ignore[arg-type]


async def read_page(
    client: aioredis.Redis, keys: QueueKeys, *, limit: int, cursor: str | None = None
) -> AuditPage:
    """Entries newest first; ``cursor`` is the id of the last entry of the previous page."""
    top = f"({cursor}" if cursor else "+"
    rows = cast(
        list[tuple[str, dict[str, str]]],
        await client.xrevrange(keys.audit, max=top, min="-", count=limit + 1),
    )
    entries = [_entry(entry_id, fields) for entry_id, fields in rows[:limit]]
    more = len(rows) > limit
    return AuditPage(entries=entries, next_cursor=entries[-1].id if more and entries else None)


def _entry(entry_id: str, fields: dict[str, str]) -> AuditEntry:
    try:
        job_ids = [str(job_id) for job_id in json.loads(fields.get("jobs", "[]"))]
    except ValueError:
        job_ids = []
    return AuditEntry(
        id=entry_id,
        at_ms=int(entry_id.partition("-")[0]),
        who=fields.get("who", "?"),
        action=fields.get("action", "?"),
        job_ids=job_ids,
        detail=fields.get("detail", ""),
    )


def valid_cursor(cursor: str | None) -> bool:
    if not cursor:
        return True
    ms, sep, seq = cursor.partition("-")
    return bool(sep) and ms.isdigit() and seq.isdigit()
