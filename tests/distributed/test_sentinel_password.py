"""Sentinels with a password of their own (``requirepass`` on each sentinel):
QWORKER_REDIS_SENTINEL_PASSWORD lets producers, workers and the CLI ask them for the master;
without it the sentinels refuse. The password is never printed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from qworker.config import Settings
from qworker.deployment import ConnectionSpec
from qworker.errors import ConfigurationError, RedisUnavailable
from qworker.service import QueueService
from tests.cli.jobtypes import CliJobParams
from tests.distributed.conftest import REPO_ROOT, clean_env, settings_for
from tests.distributed.servers import MASTER_NAME, SentinelGroup, admin

PASSWORD = "sentinel-S3CRET-x9"
NAMESPACE = "sentinelpw"
URL = "redis:///0"


@pytest.fixture(scope="module")
def guarded_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    group = SentinelGroup(tmp_path_factory.mktemp("sentinel-pw"), sentinel_password=PASSWORD)
    try:
        group.start()
        yield group
    finally:
        group.stop()


def sentinel_settings(group: SentinelGroup, **values: str) -> Settings:
    return settings_for(
        redis_url=URL,
        namespace=NAMESPACE,
        redis_sentinels=group.addresses,
        redis_sentinel_master=MASTER_NAME,
        **values,
    )


def test_the_sentinels_really_want_a_password(guarded_group: SentinelGroup) -> None:
    port = guarded_group.sentinels[0].port
    with admin(port) as client, pytest.raises(Exception, match=r"(?i)auth"):
        client.execute_command("SENTINEL", "MASTERS")


async def test_the_service_asks_the_sentinels_with_their_password(
    guarded_group: SentinelGroup,
) -> None:
    settings = sentinel_settings(guarded_group, redis_sentinel_password=PASSWORD)
    async with QueueService(settings=settings) as service:
        job_id = await service.add_job(CliJobParams())
        record = await service.get_job(job_id)
        assert record is not None and record.state == "queued"
    # The job is on the master the sentinels named.
    with admin(guarded_group.master.port) as client:
        assert client.llen(f"{NAMESPACE}:jobs_priority_3") >= 1


async def test_without_the_password_the_sentinels_refuse(guarded_group: SentinelGroup) -> None:
    async with QueueService(settings=sentinel_settings(guarded_group)) as service:
        with pytest.raises(RedisUnavailable):
            await service.add_job(CliJobParams())


def test_a_worker_and_the_cli_read_it_from_the_environment(guarded_group: SentinelGroup) -> None:
    env = clean_env(
        QWORKER_REDIS_URL=URL,
        QWORKER_NAMESPACE=NAMESPACE + "-cli",
        QWORKER_REDIS_SENTINELS=guarded_group.addresses,
        QWORKER_REDIS_SENTINEL_MASTER=MASTER_NAME,
        QWORKER_REDIS_SENTINEL_PASSWORD=PASSWORD,
    )
    qworker = [sys.executable, "-m", "qworker"]
    plugin = ["--import", "tests.cli.jobtypes"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*qworker, *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
        )

    enqueued = run("enqueue", "json", '{"job_type": "cli_job"}', *plugin)
    assert enqueued.returncode == 0, enqueued.stderr
    worked = run("work", "--burst", "--job-types", "cli_job", *plugin)
    assert worked.returncode == 0, worked.stderr
    stats = run("stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert '"total_processed": 1' in stats.stdout
    for output in (enqueued, worked, stats):
        assert PASSWORD not in output.stdout + output.stderr


def test_the_password_is_never_shown() -> None:
    settings = settings_for(
        redis_sentinels="127.0.0.1:1", redis_sentinel_master="m", redis_sentinel_password=PASSWORD
    )
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())
    spec = ConnectionSpec.of(settings)
    assert spec.sentinel_password == PASSWORD and PASSWORD not in repr(spec)


def test_a_sentinel_password_without_sentinels_is_refused() -> None:
    spec = ConnectionSpec.of(settings_for(redis_sentinel_password=PASSWORD))
    with pytest.raises(ConfigurationError, match="QWORKER_REDIS_SENTINELS is not"):
        spec.check("")
