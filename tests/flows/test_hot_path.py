"""What the end of a job outside any flow costs: nothing for flows, nothing for media it does
not carry (job_end.lua reads flags in the HMGET it already does, END_FIELDS)."""

from __future__ import annotations

from pathlib import Path

from qworker.jobs.tweet_media import HAS_MEDIA_FIELD
from qworker.service import QueueService
from tests.flows.jobtypes import step

COUNTED = ("del", "smembers", "hincrby", "hget")


async def calls(service: QueueService) -> dict[str, int]:
    stats = await service.redis.info("commandstats")
    return {c: int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in COUNTED}


async def complete_costs(service: QueueService, job_id: str) -> dict[str, int]:
    """The commands one complete.lua call of ``job_id`` made, of those counted."""
    reply = await service.run(service.scripts.claim("w", None, 60_000, 1, "base"))
    [claimed] = reply.jobs
    owner = f"w:{claimed.claims}"
    assert claimed.id == job_id
    before = await calls(service)
    lost = await service.run(service.scripts.complete([(job_id, owner, "")], None, 60_000))
    after = await calls(service)
    assert lost == []
    return {c: after[c] - before[c] for c in COUNTED}


async def test_a_plain_job_ends_without_a_del_or_a_flow_read(
    service: QueueService, log: Path
) -> None:
    job_id = await service.add_job(step(log, "plain"))
    # hincrby: the 'processed' counter only; no dependents' counts, no media DEL, no reads.
    assert await complete_costs(service, job_id) == {
        "del": 0,
        "smembers": 0,
        "hincrby": 1,
        "hget": 0,
    }


async def test_a_job_with_media_deletes_them_at_its_end(service: QueueService, log: Path) -> None:
    job_id = await service.add_job(step(log, "with media"))
    await service.redis.hset(service.keys.media(job_id), "0", "bytes")
    await service.redis.hset(service.keys.job(job_id), HAS_MEDIA_FIELD, "1")
    assert (await complete_costs(service, job_id))["del"] == 1
    assert not await service.redis.exists(service.keys.media(job_id))
