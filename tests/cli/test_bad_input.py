"""Every bad input the README names, in one table: each is one stderr line (never a traceback)
with the exit code the README gives, and leaves what is already queued as it was."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import pytest

from qworker.config import Settings
from qworker.service import QueueService
from tests.cli.conftest import Cli, cli_job, enqueue, one_error_line


@dataclass(frozen=True)
class Case:
    """``args`` follow ``qworker``, where ``{port}`` is this test's Redis; a case without its own
    ``--redis-url`` or ``--namespace`` gets the test's."""

    args: tuple[str, ...]
    fragments: tuple[str, ...]
    code: int = 2
    input: str | bytes | None = None
    env: dict[str, str] = field(default_factory=dict)


def nested_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def random_bytes(count: int) -> bytes:
    # Seeded, and opening with a byte that never starts UTF-8: surely not text.
    return b"\xff" + random.Random(12).randbytes(count - 1)


TWEET = ("enqueue", "tweet", "hi")
BAD_INPUTS: dict[str, Case] = {
    # enqueue: priority, schedule
    "priority 7": Case((*TWEET, "--priority", "7"), ("--priority",)),
    "priority 0": Case((*TWEET, "-p", "0"), ("--priority",)),
    "delay nan": Case((*TWEET, "--delay", "nan"), ("'nan' is not a finite number",)),
    "delay inf": Case((*TWEET, "--delay", "inf"), ("'inf' is not a finite number",)),
    "delay 1e308": Case((*TWEET, "--delay", "1e308"), ("ends after the year 9999",)),
    "delay in units past 9999": Case((*TWEET, "--delay", "99999999999999h"), ("year 9999",)),
    "negative delay": Case((*TWEET, "--delay", "-5"), ("must not be negative",)),
    "unreadable delay": Case((*TWEET, "--delay", "5 parsecs"), ("cannot read the duration",)),
    "at year 1": Case((*TWEET, "--at", "0001-01-01T00:00:00"), ("out of range", "1970")),
    "at before 1970": Case((*TWEET, "--at", "1969-12-31T00:00:00Z"), ("from 1970 on",)),
    "unreadable at": Case((*TWEET, "--at", "tomorrow"), ("cannot read the time",)),
    "delay and at": Case((*TWEET, "--delay", "1m", "--at", "2030-01-01T00:00Z"), ("not both",)),
    # enqueue: the job itself
    "json nested 100,000 deep": Case(
        ("enqueue", "json", "-"), ("not valid JSON", "nested too deeply"), input=nested_json(10**5)
    ),
    "random bytes as json": Case(
        ("enqueue", "json", "-"), ("stdin is not UTF-8",), input=random_bytes(200)
    ),
    "random bytes as a tweet": Case(
        ("enqueue", "tweet", "-"), ("stdin is not UTF-8",), input=random_bytes(200)
    ),
    "malformed json": Case(("enqueue", "json", '{"job_type": "tweet"'), ("not valid JSON",)),
    "json not an object": Case(("enqueue", "json", "[1, 2]"), ("must be a JSON object",)),
    "unknown job type": Case(("enqueue", "json", '{"job_type": "nope"}'), ("unknown job type",)),
    "module not importable": Case(
        ("enqueue", "json", '{"job_type": "x"}', "--import", "no_such_module"), ("cannot import",)
    ),
    "tweet too long": Case(("enqueue", "tweet", "x" * 281), ("weighted length 281 > 280",)),
    "payload over the limit": Case(
        ("enqueue", "tweet", "y" * 100),
        ("the limit is 60", "QWORKER_MAX_PAYLOAD_BYTES"),
        env={"QWORKER_MAX_PAYLOAD_BYTES": "60"},
    ),
    "id with a space": Case((*TWEET, "--id", "order 42"), ("job id 'order 42' is not valid",)),
    "id of 65 characters": Case((*TWEET, "--id", "x" * 65), ("is not valid",)),
    # settings: the Redis URL and the namespace
    "port not a number": Case(
        ("--redis-url", "redis://127.0.0.1:notaport/0", *TWEET), ("invalid Redis URL", "Port")
    ),
    "port out of range": Case(
        ("--redis-url", "redis://127.0.0.1:99999/0", *TWEET), ("invalid Redis URL",)
    ),
    "db not a number": Case(
        ("--redis-url", "redis://127.0.0.1:{port}/abc", *TWEET),
        ("invalid Redis URL", "the db must be a number", "'abc'"),
    ),
    "db in the query not a number": Case(
        ("--redis-url", "redis://127.0.0.1:{port}/0?db=x", "stats"), ("the db must be a number",)
    ),
    "not a Redis URL": Case(("--redis-url", "http://example.com", *TWEET), ("redis://",)),
    "namespace with a space": Case(("--namespace", "a b", *TWEET), ("--namespace", "' '")),
    "namespace with a tab": Case(("--namespace", "a\tb", "stats"), ("--namespace",)),
    "namespace not ASCII": Case(("--namespace", "café", "work", "--burst"), ("printable ASCII",)),
    "namespace too long": Case(("--namespace", "n" * 65, *TWEET), ("the limit is 64",)),
    "namespace from the environment": Case(
        TWEET, ("QWORKER_NAMESPACE", "printable ASCII"), env={"QWORKER_NAMESPACE": "my app"}
    ),
    "a setting that is not a number": Case(
        ("stats",), ("QWORKER_LEASE_SECONDS",), env={"QWORKER_LEASE_SECONDS": "abc"}
    ),
    # settings: deployments ("Beyond one machine")
    "TLS file with redis://": Case(("--tls-ca", "/no/ca.crt", *TWEET), ("use rediss://",)),
    "TLS file that does not exist": Case(
        ("--redis-url", "rediss://127.0.0.1:{port}/0", "--tls-ca", "/no/ca.crt", *TWEET),
        ("QWORKER_REDIS_TLS_CA: no such file",),
    ),
    "sentinels without a master": Case(("--sentinels", "127.0.0.1:1", *TWEET), ("needs both",)),
    "cluster with sentinel": Case(
        ("--cluster", "--sentinels", "127.0.0.1:1", "--sentinel-master", "m", *TWEET),
        ("exclude each other",),
    ),
    "cluster namespace without a hash tag": Case(
        ("--cluster", "--namespace", "app", "stats"), ("no hash tag", "{qw}")
    ),
    # workers
    "worker without X credentials": Case(("work", "--burst"), ("X API credentials are not set",)),
    # failures, not bad input: exit 1
    "unreachable Redis": Case(
        ("--redis-url", "redis://127.0.0.1:1/0", *TWEET), ("cannot reach Redis",), code=1
    ),
    "wrong password": Case(
        ("--redis-url", "redis://qworker:wrong@127.0.0.1:{port}/0", *TWEET),
        ("refused the login", "***"),
        code=1,
    ),
}


def queued_state(settings: Settings) -> tuple[list[str], dict[str, str]]:
    async def read() -> tuple[list[str], dict[str, str]]:
        async with QueueService(settings=settings) as service:
            job_ids = await service.redis.lrange(service.keys.priority(3), 0, -1)
            return job_ids, await service.redis.hgetall(service.keys.job(job_ids[0]))

    return asyncio.run(read())


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_is_one_line_with_its_exit_code_and_touches_nothing(
    cli: Cli, settings: Settings, name: str
) -> None:
    case = BAD_INPUTS[name]
    [kept] = enqueue(settings, cli_job())
    before = queued_state(settings)
    port = cli.redis_url.rsplit(":", 1)[1].split("/")[0]
    args = [arg.replace("{port}", port) for arg in case.args]
    if "--redis-url" not in args:
        args = ["--redis-url", cli.redis_url, *args]
    if "--namespace" not in args and "QWORKER_NAMESPACE" not in case.env:
        args = ["--namespace", cli.namespace, *args]

    result = cli.raw(*args, input=case.input, env=case.env)

    line = one_error_line(result, case.code, *case.fragments)
    assert "Traceback" not in result.stderr and "unexpected error" not in line
    assert queued_state(settings) == before and before[0] == [kept]
