"""Settings from the environment and a ``.env`` file in the working directory.

The variable names are a public contract (see ``.env.example``). Secrets are ``SecretStr`` and the
Redis URL is only ever shown through :func:`mask_url`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
NAMESPACE_MAX_CHARS = 64


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="QWORKER_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    redis_url: str = Field(
        default=DEFAULT_REDIS_URL,
        validation_alias=AliasChoices("QWORKER_REDIS_URL", "REDIS_URL"),
    )
    # Sentinel: the sentinels to ask and the name of the master they watch; the URL then gives
    # only the credentials and the db. Cluster: the URL names any node.
    redis_sentinels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_sentinel_master: str = ""
    # The sentinels' own password (their requirepass), when they have one; the master's is in
    # the URL. A secret: never printed.
    redis_sentinel_password: SecretStr | None = None
    redis_cluster: bool = False
    # TLS (with a rediss:// URL): the CA that signed the server's certificate (default: the
    # system's), and a client certificate and key when the server asks for one.
    redis_tls_ca: Path | None = None
    redis_tls_cert: Path | None = None
    redis_tls_key: Path | None = None
    # After an enqueue, wait until this many replicas have the jobs (WAIT); 0: do not wait.
    durable_replicas: int = Field(default=0, ge=0)
    durable_timeout_ms: int = Field(default=1000, gt=0)
    namespace: str = ""
    # true: run on a Redis that may evict keys when full (maxmemory-policy other than
    # noeviction), with a warning; an evicted job is lost without a trace.
    allow_eviction: bool = False
    job_modules: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The job types a worker serves (qworker work --job-types); empty: every type it knows.
    job_types: Annotated[list[str], NoDecode] = Field(default_factory=list)
    lease_seconds: float = Field(default=60.0, gt=0)
    max_payload_bytes: int = Field(default=65_536, gt=0)
    dead_letter_max_jobs: int = Field(default=10_000, ge=1)
    dead_letter_max_age_days: float = Field(default=30.0, gt=0)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    # A job handed back this many times after it started, without finishing, is dead-lettered.
    max_handbacks: int = Field(default=10, ge=1)
    # How long a job whose type no worker knows waits for one that does (a rolling deploy).
    unknown_type_grace_s: float = Field(default=600.0, ge=0)
    # How long the record of a done or canceled job stays readable (job show, job wait); 0
    # deletes it at once. Dead jobs stay as long as the dead-letter queue keeps them.
    keep_finished_s: float = Field(default=3600.0, ge=0)
    # The largest result (JSON) a job may return; a larger one fails the attempt.
    max_result_bytes: int = Field(default=65_536, gt=0)
    log_format: Literal["text", "json"] = "text"
    dry_run: bool = False

    # X's side of the tweet job (qworker/jobs/x_plan.py): the plan gives the posting windows
    # their defaults ("plan"; a number or empty for none overrides it), the longest post in
    # X's weighted length, and on pay-per-use the prices and the monthly budget in US dollars.
    x_plan: Literal["free", "pay-per-use", "custom"] = "free"
    tweet_max_per_day: Annotated[int, Field(ge=0)] | Literal["plan"] | None = "plan"
    tweet_max_per_hour: Annotated[int, Field(ge=0)] | Literal["plan"] | None = "plan"
    tweet_max_per_15_minutes: Annotated[int, Field(ge=0)] | Literal["plan"] | None = "plan"
    tweet_min_interval_minutes: float = Field(default=0.0, ge=0)
    tweet_max_length: int = Field(default=280, ge=1, le=25_000)
    x_price_per_post_usd: float = Field(default=0.015, ge=0)
    x_price_per_post_with_url_usd: float = Field(default=0.20, ge=0)
    x_monthly_budget_usd: float | None = Field(default=None, ge=0)

    twitter_api_key: SecretStr | None = Field(default=None, validation_alias="TWITTER_API_KEY")
    twitter_api_secret: SecretStr | None = Field(
        default=None, validation_alias="TWITTER_API_SECRET"
    )
    twitter_access_token: SecretStr | None = Field(
        default=None, validation_alias="TWITTER_ACCESS_TOKEN"
    )
    twitter_access_token_secret: SecretStr | None = Field(
        default=None, validation_alias="TWITTER_ACCESS_TOKEN_SECRET"
    )

    @field_validator("job_modules", "job_types", mode="before")
    @classmethod
    def _split_modules(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        problem = namespace_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _split_sentinels(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for address in value:
                parse_address(str(address))  # raises ValueError with the reason
        return value

    @field_validator("redis_tls_ca", "redis_tls_cert", "redis_tls_key", mode="before")
    @classmethod
    def _empty_path_means_none(cls, value: object) -> object:
        return None if value == "" else value

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [parse_address(address) for address in self.redis_sentinels]

    @field_validator(
        "tweet_max_per_day",
        "tweet_max_per_hour",
        "tweet_max_per_15_minutes",
        "x_monthly_budget_usd",
        mode="before",
    )
    @classmethod
    def _empty_means_unlimited(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def keep_finished_ms(self) -> int:
        return int(self.keep_finished_s * 1000)

    def masked_redis_url(self) -> str:
        return mask_url(self.redis_url)


def namespace_problem(namespace: str) -> str | None:
    """Why ``namespace`` cannot prefix qworker's keys, or None. A key name is printable ASCII
    without spaces: what any shell, log line, ACL rule (``~ns:jobs_*``) and ``redis-cli`` show
    as typed."""
    if len(namespace) > NAMESPACE_MAX_CHARS:
        return (
            f"the namespace is {len(namespace)} characters long; the limit is {NAMESPACE_MAX_CHARS}"
        )
    bad = next((char for char in namespace if not "!" <= char <= "~"), None)
    if bad is not None:
        return (
            f"the namespace {namespace!r} contains {bad!r}: use printable ASCII without spaces "
            "(e.g. app, app:prod or {qw})"
        )
    return None


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:26379`` for IPv6) as a pair; ValueError says what is wrong."""
    host, sep, port = address.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port")
    return host, int(port)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (the user name stays: it is not a secret)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
