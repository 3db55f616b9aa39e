"""The connection settings without a server: parsing, contradictions refused with one clear
message, the hash tag a cluster needs, and what each kind of client is made with."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.asyncio.sentinel import MasterNotFoundError, SentinelConnectionPool
from redis.crc import key_slot

from qworker.connection import async_client, sync_client, unavailable
from qworker.deployment import ConnectionSpec, check_url, hash_tag, url_db
from qworker.errors import ConfigurationError, ReplicationUnconfirmed
from qworker.keys import QueueKeys
from tests.distributed.acl import acl_rule
from tests.distributed.conftest import settings_for


@pytest.mark.parametrize(
    ("namespace", "tag"),
    [("{qw}", "qw"), ("app{qw}", "qw"), ("{a}{b}", "a"), ("}{x}", "x"), ("app", None),
     ("", None), ("{}", None), ("{qw", None), ("qw}", None)],
)  # fmt: skip
def test_hash_tag_as_redis_cluster_reads_it(namespace: str, tag: str | None) -> None:
    assert hash_tag(namespace) == tag


def every_key(keys: QueueKeys) -> list[str]:
    return [
        *keys.static_keys,
        keys.job("0123456789abcdef"),
        keys.rate_log("tweet"),
        keys.rate_blocked("tweet"),
        keys.worker("w1"),
    ]


def test_a_tagged_namespace_puts_every_key_in_one_slot() -> None:
    assert {key_slot(key.encode()) for key in every_key(QueueKeys("{qw}"))} == {key_slot(b"{qw}")}
    # Without a tag the keys scatter, and no script could run in a cluster.
    assert len({key_slot(key.encode()) for key in every_key(QueueKeys("qw"))}) > 1


def test_sentinels_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWORKER_REDIS_SENTINELS", "10.0.0.1:26379, [::1]:26380,")
    monkeypatch.setenv("QWORKER_REDIS_SENTINEL_MASTER", "main")
    from qworker.config import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.sentinel_addresses() == [("10.0.0.1", 26379), ("::1", 26380)]
    assert settings.redis_sentinel_master == "main"


@pytest.mark.parametrize("bad", ["10.0.0.1", "host:port", ":26379", "h:0", "h:70000"])
def test_a_sentinel_address_must_be_host_and_port(bad: str) -> None:
    with pytest.raises(ValidationError, match="not host:port"):
        settings_for(redis_sentinels=bad)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"redis_sentinels": "h:1"}, "needs both"),
        ({"redis_sentinel_master": "m"}, "needs both"),
        ({"redis_sentinels": "h:1", "redis_sentinel_master": "m", "redis_cluster": True},
         "exclude each other"),
        ({"redis_tls_ca": "/ca.crt"}, "use rediss://"),
        ({"redis_url": "rediss://h/0", "redis_tls_cert": "/c.crt"}, "go together"),
        ({"redis_url": "unix:///tmp/r.sock", "redis_cluster": True}, "redis:// or rediss://"),
        ({"redis_url": "redis://h/1", "redis_cluster": True, "namespace": "{q}"}, "only db 0"),
        ({"redis_url": "redis://h/0", "redis_cluster": True, "namespace": "q"}, "no hash tag"),
        ({"redis_url": "unix:///r.sock", "redis_sentinels": "h:1", "redis_sentinel_master": "m"},
         "must be redis:// or rediss://"),
    ],
)  # fmt: skip
def test_contradictions_are_one_clear_error(values: dict[str, object], message: str) -> None:
    settings = settings_for(**values)
    with pytest.raises(ConfigurationError, match=message):
        async_client(settings)
    with pytest.raises(ConfigurationError, match=message):
        sync_client(settings)


def tls_file(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text("not read until a connection is made\n")
    return path


async def test_tls_files_reach_the_connections(tmp_path: Path) -> None:
    ca, cert, key = (tls_file(tmp_path, name) for name in ("ca.crt", "client.crt", "client.key"))
    settings = settings_for(
        redis_url="rediss://u:p@redis.example:6380/2",
        redis_tls_ca=ca,
        redis_tls_cert=cert,
        redis_tls_key=key,
    )
    client = async_client(settings)
    options = client.connection_pool.connection_kwargs
    assert (options["ssl_ca_certs"], options["ssl_certfile"], options["ssl_keyfile"]) == (
        str(ca),
        str(cert),
        str(key),
    )
    assert (options["username"], options["password"], options["db"]) == ("u", "p", 2)
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"
    await client.aclose()


def test_a_missing_tls_file_is_named(tmp_path: Path) -> None:
    settings = settings_for(redis_url="rediss://h/0", redis_tls_ca=tmp_path / "nope.crt")
    with pytest.raises(ConfigurationError, match=r"QWORKER_REDIS_TLS_CA: no such file .*nope"):
        async_client(settings)


async def test_sentinel_takes_credentials_and_db_from_the_url(tmp_path: Path) -> None:
    ca = tls_file(tmp_path, "ca.crt")
    settings = settings_for(
        redis_url="rediss://qw:pw@ignored-host:1/3",
        redis_sentinels="127.0.0.1:26379,127.0.0.1:26380",
        redis_sentinel_master="main",
        redis_tls_ca=ca,
    )
    client = async_client(settings)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "main"
    options = pool.connection_kwargs
    assert (options["username"], options["password"], options["db"]) == ("qw", "pw", 3)
    assert "host" not in options and options["ssl_ca_certs"] == str(ca)
    assert pool.connection_class.__name__ == "SentinelManagedSSLConnection"
    await client.aclose()
    sync = sync_client(settings)
    assert isinstance(sync, redis.Redis)
    sync.close()


def test_a_bare_url_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWORKER_REDIS_CLUSTER", "true")
    assert ConnectionSpec.of("redis://h/0") == ConnectionSpec("redis://h/0")
    assert isinstance(async_client("redis://h/0"), aioredis.Redis)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (redis.AuthenticationError("invalid username-password pair or user is disabled."),
         "Redis at rediss://qw:***@h:6380/0 refused the login: invalid username-password"),
        (redis.ConnectionError("Error 111 connecting to h:6380. Connect call failed ('h', 6380)."),
         "cannot reach Redis at rediss://qw:***@h:6380/0: Connection refused"),
        (redis.ConnectionError(
            "Error 1 connecting to h:6380. [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
            "failed: self-signed certificate in certificate chain (_ssl.c:1006)."),
         "cannot reach Redis at rediss://qw:***@h:6380/0: [SSL: CERTIFICATE_VERIFY_FAILED]"),
        (MasterNotFoundError("No master found for 'main' : <redis.asyncio.client.Redis(...)>"),
         "No master found for 'main' (the sentinels are unreachable"),
    ],
)  # fmt: skip
def test_connection_errors_read_as_one_line(error: Exception, expected: str) -> None:
    message = str(unavailable("rediss://qw:secret@h:6380/0", error))
    assert message.startswith(expected) or expected in message
    assert "secret" not in message and "\n" not in message and "Redis(" not in message


def test_an_unconfirmed_durable_enqueue_says_the_jobs_are_queued() -> None:
    one = str(ReplicationUnconfirmed(["abc"], 0, 1, 500))
    assert one.startswith("job abc is queued on the master, but only 0 of 1 replica(s)")
    assert "do not enqueue it again" in one
    assert str(ReplicationUnconfirmed(["a", "b"], 1, 2, 500)).startswith("2 jobs are queued")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://h:notaport/0", "Port could not be cast to integer value as 'notaport'"),
        ("redis://h:99999/0", "Port out of range"),
        ("redis://h/abc", "the db must be a number (0, 1, ...), not 'abc'"),
        ("redis://h/0/1", "not '0/1'"),
        ("redis://h/-1", "not '-1'"),
        ("redis://h/0?db=two", "not 'two'"),
        ("unix:///run/redis.sock?db=x", "not 'x'"),
        ("http://h/0", "use redis://, rediss:// or unix://"),
        ("redis://:secret@h/abc", "redis://:***@h/abc"),
    ],
)
def test_a_redis_url_read_wrongly_or_late_is_refused_up_front(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)) as raised:
        async_client(url)
    assert str(raised.value).startswith("invalid Redis URL ") and "secret" not in str(raised.value)
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        sync_client(settings_for(redis_url=url))


@pytest.mark.parametrize(
    ("url", "db"),
    [("redis://h", 0), ("redis://h/", 0), ("redis://h/3", 3), ("rediss://u:p@h:6380/2/", 2),
     ("redis://qw:pw@/1", 1), ("redis://h/1?db=4", 4), ("unix:///r.sock?db=5", 5),
     ("unix:///r.sock", 0)],
)  # fmt: skip
def test_urls_redis_reads_as_we_do_are_accepted(url: str, db: int) -> None:
    check_url(url)
    assert url_db(url) == db


def test_the_readme_acl_rule_is_the_one_the_tests_run_as() -> None:
    """The README's least-privilege rule and tests/distributed/acl.py say the same."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    match = re.search(r"^ACL SETUSER qworker on >CHANGE-ME (.+)$", readme, re.MULTILINE)
    assert match is not None
    assert match.group(1).split() == acl_rule("{qw}")
    assert "+info" in match.group(1).split()  # the eviction check reads INFO memory
