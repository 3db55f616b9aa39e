"""Workflows as the README's least-privilege ACL user: a flow is stored, run, failed and
repaired, a waiting job is canceled, and ``stats``, ``job show`` and the web UI read the flow,
with nothing refused (Redis checks every command a script calls against the rule too)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from qworker.dependencies import job_links, read_flow, waits_for
from qworker.flows import chain
from qworker.jobs.x_account import Charge, build_x_account
from qworker.jobs.x_plan import price_micro_usd
from qworker.service import QueueService
from qworker.worker import Worker
from tests.distributed.acl import denials
from tests.distributed.conftest import settings_for
from tests.distributed.servers import admin
from tests.flows.conftest import JOB_MODULES
from tests.flows.jobtypes import ran, step
from tests.redis_server import RedisServer
from tests.service.test_memory_policy import readme_acl_rule


@pytest.fixture
def acl_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        with admin(server.port) as client:
            client.execute_command("ACL", "SETUSER", "qworker", "on", ">pw", *readme_acl_rule())
        yield server


async def test_a_flow_lives_its_whole_life_within_the_readme_rule(
    acl_server: RedisServer, tmp_path: Path
) -> None:
    log, broken = tmp_path / "steps.jsonl", tmp_path / "broken"
    broken.touch()
    url = f"redis://qworker:pw@127.0.0.1:{acl_server.port}/0"
    settings = settings_for(redis_url=url, namespace="{qw}")
    async with QueueService(settings=settings) as service:

        async def burst() -> None:
            worker = Worker(service, settings=settings, burst=True, job_modules=JOB_MODULES)
            await asyncio.wait_for(worker.run(), 30)

        a, b, c = await service.add_flow(
            chain(step(log, "a"), step(log, "b", fail_while=str(broken)), step(log, "c"))
        )
        [_d, e] = await service.add_flow(chain(step(log, "d"), step(log, "e")), after=[c])
        assert (await service.get_queue_stats()).waiting == 4
        assert [w.job_id for w in await waits_for(service, [b, c])] == [b, c]
        await burst()
        # b failed for good: c and what waits for it were dead-lettered with the reason.
        assert [line["name"] for line in ran(log)] == ["a"]
        assert (await job_links(service, c)).dependencies[0].state == "dead"

        broken.unlink()
        assert (await service.requeue_dead([b])).requeued == [b]
        assert (await service.cancel_job(e)).outcome == "canceled"
        queued = await service.add_job(step(log, "never"), priority=1)
        assert (await service.cancel_job(queued)).outcome == "canceled"
        await burst()
        assert [line["name"] for line in ran(log)] == ["a", "b", "c", "d"]
        graph = await read_flow(service, a)
        assert {m.id: m.state for m in graph.jobs}[e] == "canceled"
        assert await service.expire_waiting() == 0
        stats = await service.get_queue_stats()
        assert (stats.waiting, stats.dead_letter, stats.total_processed) == (0, 0, 4)

    with admin(acl_server.port) as client:
        assert denials(client) == []


async def test_a_post_counted_in_the_month_spend_within_the_readme_rule(
    acl_server: RedisServer,
) -> None:
    url = f"redis://qworker:pw@127.0.0.1:{acl_server.port}/0"
    settings = settings_for(redis_url=url, namespace="{qw}", x_plan="pay-per-use")
    account = build_x_account(settings)
    try:
        price = price_micro_usd(settings, has_url=False)
        assert price > 0
        charge = await account.gate(settings, price_micro_usd=price, has_url=False)
        assert isinstance(charge, Charge) and charge.price_micro_usd == price
    finally:
        await account.aclose()
    with admin(acl_server.port) as client:
        assert denials(client) == []
        assert client.pttl(f"{{qw}}:jobs_x_spend:{charge.month.name}") > 0


async def test_a_running_job_canceled_within_the_readme_rule(
    acl_server: RedisServer, tmp_path: Path
) -> None:
    url = f"redis://qworker:pw@127.0.0.1:{acl_server.port}/0"
    settings = settings_for(redis_url=url, namespace="{qw}")
    async with QueueService(settings=settings) as service:
        slow = await service.add_job(step(tmp_path / "steps.jsonl", "slow", sleep_s=60))
        worker = Worker(service, settings=settings, burst=True, job_modules=JOB_MODULES)
        running = asyncio.create_task(worker.run())
        # Poll for the state (the worker claims it at once): the job itself never ends alone.
        async with asyncio.timeout(30):
            while (job := await service.get_job(slow)) is None or job.state != "running":
                await asyncio.sleep(0.05)
        assert (await service.cancel_job(slow, wait_s=30)).state == "canceled"
        await asyncio.wait_for(running, 30)
        assert await service.redis.smembers(service.keys.cancel_requests) == set()
    with admin(acl_server.port) as client:
        assert denials(client) == []
