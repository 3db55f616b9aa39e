"""The tweet job: post one tweet through the X API v2 with tweepy, at most once.

Importing this module is cheap: tweepy and requests are imported inside the functions that post,
because the enqueue command imports this module on every cron run and must start fast.

How a tweet is posted at most once, even across crashes:

1. ``tweet_sending=1`` is checkpointed on the job *before* the request goes out, so a later
   attempt knows an earlier one may have reached the API (crash, timeout, cancelled thread).
2. The tweet id is checkpointed the moment the API returns it; a job that finds ``tweet_id``
   finishes without posting again.
3. If the id was lost after all (a crash between the answer and the checkpoint), the retry is
   refused by X as duplicate content; with ``tweet_sending`` set that means "already out".
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import field_validator

from qworker.clients import ClientContainer
from qworker.errors import (
    AlreadyDone,
    ConfigurationError,
    JobError,
    PermanentJobError,
    RateLimitedJobError,
    RetryableJobError,
)
from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory
from qworker.policy import (
    DEFAULT_BASE_DELAY_S,
    DEFAULT_MAX_RETRIES,
    MIN_RATE_LIMIT_WAIT_S,
    clamp_rate_limit_reset_s,
)
from qworker.rate_limiter import RateLimit

if TYPE_CHECKING:
    import requests

    from qworker.config import Settings

log = logging.getLogger("qworker.tweet")

JOB_TYPE = "tweet"
CLIENT_NAME = "twitter"
MAX_TWEET_CHARS = 280
MAX_MEDIA_IDS = 4
# Checkpoint names, stored on the job record (see the module docstring for why there are two).
TWEET_ID_CHECKPOINT = "tweet_id"
SENDING_CHECKPOINT = "tweet_sending"

# tweepy sets no timeout at all; without one a stalled connection would hold a worker thread
# forever. The read timeout stays well under BaseJob.timeout_s so the request ends first.
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 30.0
# When a 429 names no usable reset time: the length of the X API's rate-limit window.
DEFAULT_RATE_LIMIT_WAIT_S = 900.0
# The v1.1 error code X still sends for "Status is a duplicate".
DUPLICATE_STATUS_CODE = 187

# Settings field -> the environment variable a user sets (Settings' validation aliases).
CREDENTIAL_ENV_VARS: tuple[tuple[str, str], ...] = (
    ("twitter_api_key", "TWITTER_API_KEY"),
    ("twitter_api_secret", "TWITTER_API_SECRET"),
    ("twitter_access_token", "TWITTER_ACCESS_TOKEN"),
    ("twitter_access_token_secret", "TWITTER_ACCESS_TOKEN_SECRET"),
)

_SNOWFLAKE = re.compile(r"[0-9]{1,19}")  # X ids are unsigned 64-bit integers, sent as strings
DESCRIBE_CHARS = 20


# -- parameters --------------------------------------------------------------------------------
class TweetJobParams(BaseJobParams):
    """One tweet: its text, up to four uploaded media ids, and optionally the tweet it answers."""

    job_type: Literal["tweet"] = "tweet"
    content: str
    media_ids: list[str] | None = None
    reply_to: str | None = None

    @field_validator("content")
    @classmethod
    def _check_content(cls, content: str) -> str:
        # X counts characters after NFC normalisation, so a decomposed "é" is one character.
        length = len(unicodedata.normalize("NFC", content))
        if length == 0:
            raise ValueError("content is empty; a tweet needs 1 to 280 characters")
        if not content.strip():
            raise ValueError("content is only whitespace; X rejects blank tweets")
        if length > MAX_TWEET_CHARS:
            raise ValueError(f"content is {length} characters; the limit is {MAX_TWEET_CHARS}")
        return content

    @field_validator("media_ids", "reply_to", mode="before")
    @classmethod
    def _ids_as_strings(cls, value: object) -> object:
        # tweepy's media upload hands back ints; accept them, store the canonical string form.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, list | tuple):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value

    @field_validator("media_ids")
    @classmethod
    def _check_media_ids(cls, media_ids: list[str] | None) -> list[str] | None:
        if not media_ids:
            return None  # an empty list means "no media", as leaving it out does
        if len(media_ids) > MAX_MEDIA_IDS:
            raise ValueError(f"media_ids has {len(media_ids)} ids; the limit is {MAX_MEDIA_IDS}")
        for index, media_id in enumerate(media_ids):
            if not _SNOWFLAKE.fullmatch(media_id):
                raise ValueError(f"media_ids[{index}] is {media_id!r}; media ids are digits only")
        return media_ids

    @field_validator("reply_to")
    @classmethod
    def _check_reply_to(cls, reply_to: str | None) -> str | None:
        if reply_to is not None and not _SNOWFLAKE.fullmatch(reply_to):
            raise ValueError(f"reply_to is {reply_to!r}; a tweet id is digits only")
        return reply_to


# -- the job -------------------------------------------------------------------------------------
class DuplicateContentError(PermanentJobError):
    """X refused the text because the account already posted it (403 duplicate content)."""


class TweetJob(BaseJob[TweetJobParams]):
    """Posts ``params.content`` once; see the module docstring for the at-most-once protocol."""

    async def execute(self) -> dict[str, str]:
        """Post the tweet; the result is its id (``{"tweet_id": ...}``)."""
        posted_id = self.context.checkpoints.get(TWEET_ID_CHECKPOINT)
        if posted_id:
            log.info("%s: already posted as %s; not posting again", self.describe(), posted_id)
            return {"tweet_id": posted_id}
        client = self._client()
        maybe_sent_before = self.context.checkpoints.get(SENDING_CHECKPOINT) == "1"
        # From here until the tweet id is recorded, a cancel waits: a tweet that was posted
        # must be reported posted, never canceled.
        with self.context.cancel_shield():
            await self.context.checkpoint(SENDING_CHECKPOINT, "1")
            try:
                tweet_id = await client.post_tweet(
                    self.params.content,
                    media_ids=self.params.media_ids,
                    reply_to=self.params.reply_to,
                )
            except DuplicateContentError as exc:
                if maybe_sent_before:
                    raise AlreadyDone(
                        f"already posted: an earlier attempt reached the API and X now says: {exc}"
                    ) from None
                raise
            except JobError as exc:
                if not exc.reached_remote and not maybe_sent_before:
                    await self._forget_sending()
                raise
            await self.context.checkpoint(TWEET_ID_CHECKPOINT, tweet_id)
        if getattr(client, "dry_run", False):  # never passed off as posted: job show, stats
            await self.context.record_dry_run()
            log.info("%s: DRY RUN, not posted (%s)", self.describe(), tweet_id)
            return {"tweet_id": tweet_id}
        log.info("%s: posted as %s", self.describe(), tweet_id)
        return {"tweet_id": tweet_id}

    def _client(self) -> TwitterClient:
        try:
            client: TwitterClient = self.clients.get(CLIENT_NAME)
        except ConfigurationError as exc:
            # The worker refuses to start without credentials; if one runs anyway, keep the
            # jobs (retry, then dead-letter for a requeue) and give the rate-limit slot back.
            raise RetryableJobError(str(exc), reached_remote=False) from None
        return client

    async def _forget_sending(self) -> None:
        """The request surely never reached X: clear the flag so a later duplicate-content
        answer is not mistaken for our own tweet. Best effort: if this write fails the flag
        stays set, which only errs towards "already posted" for identical text."""
        try:
            await self.context.checkpoint(SENDING_CHECKPOINT, "0")
        except Exception:
            log.warning("could not clear %s on job %s", SENDING_CHECKPOINT, self.context.job_id)

    def get_rate_limit_key(self) -> str:
        return JOB_TYPE

    def get_rate_limit(self) -> RateLimit:
        """The account's posting limits from settings; dry runs obey them too."""
        return RateLimit(
            max_per_day=self.config.tweet_max_per_day,
            max_per_hour=self.config.tweet_max_per_hour,
            min_interval_minutes=self.config.tweet_min_interval_minutes,
        )

    def get_retry_config(self) -> dict[str, Any]:
        # The seed's schedule: retried after 1, 2 and 4 minutes, then dead-lettered.
        return {"max_retries": DEFAULT_MAX_RETRIES, "base_delay": DEFAULT_BASE_DELAY_S}

    def describe(self) -> str:
        text = " ".join(self.params.content.split())
        if len(text) > DESCRIBE_CHARS:
            text = text[: DESCRIBE_CHARS - 1] + "…"
        return f'tweet "{text}"'


# -- clients -------------------------------------------------------------------------------------
class TwitterClient(Protocol):
    """What the tweet job needs from a client. Failures are raised as ``qworker.errors``
    job errors (``DuplicateContentError`` for duplicate text), never as tweepy's."""

    async def post_tweet(
        self, text: str, *, media_ids: Sequence[str] | None = None, reply_to: str | None = None
    ) -> str:
        """Post ``text`` and return the new tweet's id."""
        ...


def missing_credentials(settings: Settings) -> list[str]:
    """The environment variables of the X API credentials that are unset or empty."""
    missing = []
    for field, env_var in CREDENTIAL_ENV_VARS:
        secret = getattr(settings, field)
        if secret is None or not secret.get_secret_value().strip():
            missing.append(env_var)
    return missing


def build_twitter_client(settings: Settings) -> TwitterClient:
    """The ``twitter`` client factory: a dry-run client, or tweepy with the settings' keys."""
    if settings.dry_run:
        return DryRunTwitterClient()
    missing = missing_credentials(settings)
    if missing:
        raise ConfigurationError(
            f"X API credentials are not set: {', '.join(missing)} "
            "(set them in the environment or .env, or run with dry run)"
        )
    return TweepyTwitterClient(settings)


class TweepyTwitterClient:
    """Posts through tweepy's ``Client.create_tweet`` with OAuth 1.0a user-context keys.

    tweepy is synchronous, so each post runs in a thread (``asyncio.to_thread``). It never
    waits on rate limits itself: a 429 becomes ``RateLimitedJobError`` and the worker parks
    the job, sharing the reset time with every worker through the rate limiter.
    """

    def __init__(self, settings: Settings) -> None:
        import tweepy  # type: ignore[import-untyped]

        missing = missing_credentials(settings)
        if missing:
            raise ConfigurationError(f"X API credentials are not set: {', '.join(missing)}")
        _silence_credential_debug_logs()
        key, key_secret, token, token_secret = (
            getattr(settings, field).get_secret_value() for field, _ in CREDENTIAL_ENV_VARS
        )
        # The keys live only inside tweepy's client; this wrapper keeps no copy to leak.
        self._client: Any = tweepy.Client(
            consumer_key=key,
            consumer_secret=key_secret,
            access_token=token,
            access_token_secret=token_secret,
            return_type=dict,
            wait_on_rate_limit=False,
        )
        self._client.session = _session_with_timeouts(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
        # Each worker thread may post at once, and requests.Session is not thread-safe.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(OAuth 1.0a user context)"

    async def post_tweet(
        self, text: str, *, media_ids: Sequence[str] | None = None, reply_to: str | None = None
    ) -> str:
        return await asyncio.to_thread(self._post_blocking, text, media_ids, reply_to)

    def close(self) -> None:
        self._client.session.close()

    def _post_blocking(
        self, text: str, media_ids: Sequence[str] | None, reply_to: str | None
    ) -> str:
        import requests
        import tweepy

        try:
            with self._lock:
                answer = self._client.create_tweet(
                    text=text,
                    media_ids=list(media_ids) if media_ids else None,
                    in_reply_to_tweet_id=reply_to,
                    user_auth=True,
                )
        except tweepy.HTTPException as exc:
            response = exc.response
            raise http_error_to_job_error(
                response.status_code,
                response.reason or "",
                response.headers,
                [str(message) for message in exc.api_messages],
                list(exc.api_codes),
                now_s=time.time(),
            ) from None
        except requests.RequestException as exc:
            raise transport_error_to_job_error(exc) from exc
        return _tweet_id(answer)


def _tweet_id(answer: object) -> str:
    data = answer.get("data") if isinstance(answer, dict) else None
    tweet_id = data.get("id") if isinstance(data, dict) else None
    if not tweet_id:
        # Probably posted; the retry then meets "duplicate content" and finishes as done.
        raise RetryableJobError("the X API accepted the tweet but returned no tweet id")
    return str(tweet_id)


def _session_with_timeouts(connect_s: float, read_s: float) -> requests.Session:
    import requests

    class TimeoutSession(requests.Session):
        """A session whose requests time out unless the caller says otherwise."""

        def request(self, *args: Any, **kwargs: Any) -> requests.Response:
            kwargs.setdefault("timeout", (connect_s, read_s))
            return super().request(*args, **kwargs)

    return TimeoutSession()


def _silence_credential_debug_logs() -> None:
    """requests-oauthlib and oauthlib log the signed Authorization header (consumer key and
    access token) at DEBUG; keep those two loggers at INFO even when the worker runs at DEBUG."""
    for name in ("requests_oauthlib", "oauthlib"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)


# -- error mapping -------------------------------------------------------------------------------
def http_error_to_job_error(
    status: int,
    reason: str,
    headers: Mapping[str, str],
    api_messages: list[str],
    api_codes: list[int],
    *,
    now_s: float,
) -> JobError:
    """Map one refusal of the X API to what the worker should do with the job."""
    detail = "; ".join(api_messages) or "no details"
    answer = f"X API answered {status} {reason}".rstrip()
    if status == 429:
        reset_at = rate_limit_reset_at(headers, now_s)
        return RateLimitedJobError(f"{answer}: {detail}", reset_at=reset_at)
    if status >= 500:
        return RetryableJobError(f"{answer}: {detail}", retry_after=_retry_after_s(headers))
    if status == 403 and _is_duplicate(api_messages, api_codes):
        return DuplicateContentError(f"{answer}: {detail}")
    if status == 401:
        return PermanentJobError(
            f"{answer}: {detail} (check TWITTER_API_KEY, TWITTER_API_SECRET, "
            "TWITTER_ACCESS_TOKEN and TWITTER_ACCESS_TOKEN_SECRET)"
        )
    if status == 403 and "permi" in detail.lower():
        # The usual cause: an app left Read-only, or tokens generated before the change.
        return PermanentJobError(
            f"{answer}: {detail} (the app needs Read and Write permission, and access "
            "tokens generated after granting it)"
        )
    return PermanentJobError(f"{answer}: {detail}")


def _is_duplicate(api_messages: list[str], api_codes: list[int]) -> bool:
    return DUPLICATE_STATUS_CODE in api_codes or any(
        "duplicate" in message.lower() for message in api_messages
    )


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def rate_limit_reset_at(headers: Mapping[str, str], now_s: float) -> float:
    """When a 429 ends, in epoch seconds: the latest reset among the exhausted limits.

    X sends one pair of headers per limit: ``x-rate-limit-*`` for the 15-minute window, and
    ``x-user-limit-24hour-*`` / ``x-app-limit-24hour-*`` for the daily caps. A limit counts
    as exhausted when its ``-remaining`` header is 0. With none exhausted the 15-minute reset
    is used, and with no usable header at all, the length of one window from now.
    """
    exhausted = []
    for prefix in ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour"):
        remaining = _int_header(headers, f"{prefix}-remaining")
        reset = _int_header(headers, f"{prefix}-reset")
        if remaining == 0 and reset is not None:
            exhausted.append(reset)
    window_reset = _int_header(headers, "x-rate-limit-reset")
    if exhausted:
        reset_at = float(max(exhausted))
    elif window_reset is not None:
        reset_at = float(window_reset)
    else:
        reset_at = now_s + DEFAULT_RATE_LIMIT_WAIT_S
    return clamp_rate_limit_reset_s(reset_at, now_s)  # the rule every job type gets


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name, "").strip()
    return int(value) if value.isdigit() else None


def transport_error_to_job_error(exc: requests.RequestException) -> RetryableJobError:
    """Timeouts and connection failures are retried; ``reached_remote`` is False only when
    the request surely never left (no connection, TLS or proxy failure, connect timeout)."""
    import requests
    from urllib3.exceptions import NewConnectionError

    never_sent = isinstance(
        exc, requests.ConnectTimeout | requests.exceptions.SSLError | requests.exceptions.ProxyError
    )
    if not never_sent and isinstance(exc, requests.ConnectionError) and exc.args:
        # requests wraps urllib3's MaxRetryError, whose reason says how the connection failed.
        never_sent = isinstance(getattr(exc.args[0], "reason", None), NewConnectionError)
    what = "could not reach the X API" if never_sent else "the X API request failed"
    return RetryableJobError(f"{what}: {type(exc).__name__}: {exc}", reached_remote=not never_sent)


# -- dry run -------------------------------------------------------------------------------------
class DryRunTwitterClient:
    """Logs the tweet it would post (logger ``qworker.tweet``) and returns ``dry-run-<n>``.

    Used when ``settings.dry_run`` is true; needs no credentials and makes no request. Two
    markers in the content fail on purpose, to demonstrate retries and the dead-letter queue:

    * ``#fail-once``: the first post of a given text raises ``RetryableJobError`` (a simulated
      connection failure, so the rate-limit slot is given back); the next one succeeds. The
      memory is this client's, i.e. one worker process.
    * ``#always-fail``: always raises ``PermanentJobError``.
    """

    # Jobs it serves are recorded as dry runs (JobContext.record_dry_run), never as posted.
    dry_run = True
    FAIL_ONCE_MARKER = "#fail-once"
    ALWAYS_FAIL_MARKER = "#always-fail"

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._failed_once: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    async def post_tweet(
        self, text: str, *, media_ids: Sequence[str] | None = None, reply_to: str | None = None
    ) -> str:
        if self.ALWAYS_FAIL_MARKER in text:
            raise PermanentJobError(f"dry run: the content contains {self.ALWAYS_FAIL_MARKER}")
        if self.FAIL_ONCE_MARKER in text:
            with self._lock:
                first = text not in self._failed_once
                self._failed_once.add(text)
            if first:
                raise RetryableJobError(
                    f"dry run: first attempt of content with {self.FAIL_ONCE_MARKER}",
                    reached_remote=False,
                )
        with self._lock:
            tweet_id = f"dry-run-{next(self._ids)}"
        log.info(
            "dry run: would post %r (media_ids=%s, reply_to=%s) as %s",
            text,
            list(media_ids) if media_ids else None,
            reply_to,
            tweet_id,
        )
        return tweet_id


JobFactory.register_job_type(JOB_TYPE, TweetJob, TweetJobParams)
ClientContainer.register_factory(CLIENT_NAME, build_twitter_client)

__all__ = [
    "MIN_RATE_LIMIT_WAIT_S",
    "DryRunTwitterClient",
    "DuplicateContentError",
    "TweepyTwitterClient",
    "TweetJob",
    "TweetJobParams",
    "TwitterClient",
    "build_twitter_client",
    "missing_credentials",
    "rate_limit_reset_at",
]
