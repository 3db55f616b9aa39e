"""Settings from the environment and a ``.env`` file in the working directory.

The variable names are a public contract (see ``.env.example``). Secrets are ``SecretStr`` and the
Redis URL is only ever shown through :func:`mask_url`.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_REDIS_URL = "redis://localhost:6379/0"


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
    namespace: str = ""
    job_modules: Annotated[list[str], NoDecode] = Field(default_factory=list)
    lease_seconds: float = Field(default=60.0, gt=0)
    max_payload_bytes: int = Field(default=65_536, gt=0)
    dead_letter_max_jobs: int = Field(default=10_000, ge=1)
    dead_letter_max_age_days: float = Field(default=30.0, gt=0)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    log_format: Literal["text", "json"] = "text"
    dry_run: bool = False

    tweet_max_per_day: int | None = Field(default=17, ge=0)
    tweet_max_per_hour: int | None = Field(default=3, ge=0)
    tweet_min_interval_minutes: float = Field(default=0.0, ge=0)

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

    @field_validator("job_modules", mode="before")
    @classmethod
    def _split_modules(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("tweet_max_per_day", "tweet_max_per_hour", mode="before")
    @classmethod
    def _empty_means_unlimited(cls, value: object) -> object:
        return None if value == "" else value

    def masked_redis_url(self) -> str:
        return mask_url(self.redis_url)


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
