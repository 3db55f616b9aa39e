"""Which Redis deployment the settings describe, and the combinations refused up front.

One server by URL (``redis://``, ``rediss://``, ``unix://``), Sentinel, or Cluster; TLS files for
``rediss://``. Pure: nothing here connects. ``connection.py`` turns a checked spec into a client.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from qworker.config import Settings, mask_url
from qworker.errors import ConfigurationError

NAMESPACE_HINT = (
    "set a namespace with a hash tag, e.g. QWORKER_NAMESPACE='{qw}' or --namespace '{qw}' "
    "(one namespace lives in one slot; use several namespaces to spread queues over the cluster)"
)


@dataclass(frozen=True)
class ConnectionSpec:
    """Where and how to connect: the connection part of Settings, or a bare URL."""

    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_master: str = ""
    # The sentinels' own password; kept out of repr so no log or traceback shows it.
    sentinel_password: str | None = field(default=None, repr=False)
    cluster: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None

    @classmethod
    def of(cls, source: str | Settings) -> ConnectionSpec:
        if isinstance(source, str):
            return cls(source)
        return cls(
            url=source.redis_url,
            sentinels=tuple(source.sentinel_addresses()),
            sentinel_master=source.redis_sentinel_master,
            sentinel_password=_secret(source),
            cluster=source.redis_cluster,
            tls_ca=_path(source.redis_tls_ca),
            tls_cert=_path(source.redis_tls_cert),
            tls_key=_path(source.redis_tls_key),
        )

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme.lower()

    @property
    def is_sentinel(self) -> bool:
        return bool(self.sentinels)

    def check(self, namespace: str) -> None:
        """Contradictory or incomplete settings, as one clear ConfigurationError."""
        check_url(self.url)
        if bool(self.sentinels) != bool(self.sentinel_master):
            raise ConfigurationError(
                "Sentinel needs both QWORKER_REDIS_SENTINELS (host:port,...) and "
                "QWORKER_REDIS_SENTINEL_MASTER (the master's name); only one is set"
            )
        if self.sentinel_password and not self.sentinels:
            raise ConfigurationError(
                "QWORKER_REDIS_SENTINEL_PASSWORD is set but QWORKER_REDIS_SENTINELS is not: "
                "the sentinel password is for sentinels (the master's password goes in the URL)"
            )
        if self.cluster and self.sentinels:
            raise ConfigurationError(
                "QWORKER_REDIS_CLUSTER and QWORKER_REDIS_SENTINELS exclude each other: "
                "a Redis Cluster fails over by itself"
            )
        tls_files = {
            "QWORKER_REDIS_TLS_CA": self.tls_ca,
            "QWORKER_REDIS_TLS_CERT": self.tls_cert,
            "QWORKER_REDIS_TLS_KEY": self.tls_key,
        }
        given = [name for name, path in tls_files.items() if path]
        if given and self.scheme != "rediss":
            raise ConfigurationError(
                f"{', '.join(given)} set, but the Redis URL is {self.scheme}://; "
                "use rediss:// to connect over TLS"
            )
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigurationError(
                "QWORKER_REDIS_TLS_CERT and QWORKER_REDIS_TLS_KEY go together "
                "(the client certificate and its private key)"
            )
        for name in given:
            path = tls_files[name]
            if path and not os.path.isfile(path):
                raise ConfigurationError(f"{name}: no such file {path}")
        if self.cluster:
            self._check_cluster(namespace)

    def _check_cluster(self, namespace: str) -> None:
        if self.scheme not in ("redis", "rediss"):
            raise ConfigurationError(
                "Redis Cluster needs a redis:// or rediss:// URL naming one of its nodes"
            )
        if url_db(self.url) != 0:
            raise ConfigurationError("Redis Cluster has only db 0; remove the db from the URL")
        if hash_tag(namespace) is None:
            raise ConfigurationError(
                f"Redis Cluster needs every qworker key in one slot, and the namespace "
                f"{namespace!r} has no hash tag: {NAMESPACE_HINT}"
            )


def hash_tag(namespace: str) -> str | None:
    """The hash tag every key of ``namespace`` hashes by, as Redis Cluster finds it: the text
    between the first ``{`` and the next ``}``, if not empty. Keys start with the namespace, so
    its tag is the tag of every key."""
    start = namespace.find("{")
    end = namespace.find("}", start + 1) if start >= 0 else -1
    if end <= start + 1:
        return None
    return namespace[start + 1 : end]


def _path(value: object) -> str | None:
    return str(value) if value else None


SCHEMES = ("redis", "rediss", "unix")
_DIGITS = re.compile(r"[0-9]+")


def check_url(url: str) -> None:
    """Refuse a Redis URL that redis-py would reject late or, worse, read as something else
    (``redis://host/abc`` silently meant db 0), naming the problem; the password stays masked."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it is what checks it
    except ValueError as exc:
        raise _bad_url(url, str(exc)) from None
    if parts.scheme.lower() not in SCHEMES:
        raise _bad_url(url, "use redis://, rediss:// or unix://")
    try:
        url_db(url)
    except ValueError as exc:
        raise _bad_url(url, str(exc)) from None


def _bad_url(url: str, reason: str) -> ConfigurationError:
    return ConfigurationError(f"invalid Redis URL {mask_url(url)}: {reason}")


def url_db(url: str) -> int:
    """The db a URL selects: its path (``redis://host/2``) or its ``?db=``, which wins (as
    redis-py reads it)."""
    parts = urlsplit(url)
    texts = parse_qs(parts.query).get("db", [])[:1]
    if parts.scheme.lower() != "unix":
        texts = [unquote(parts.path).strip("/") or "0", *texts]
    for text in texts:
        if not _DIGITS.fullmatch(text):
            raise ValueError(f"the db must be a number (0, 1, ...), not {text!r}")
    return int(texts[-1]) if texts else 0


def _secret(source: Settings) -> str | None:
    secret = source.redis_sentinel_password
    value = secret.get_secret_value() if secret is not None else ""
    return value or None
