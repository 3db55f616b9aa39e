"""The tweet job's clients: tweepy posting and uploading to X, the dry run, and the one map from
X's answers to what the worker does with the job.

Importing this module is cheap: tweepy and requests are imported inside the functions that post.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from qworker.errors import (
    ConfigurationError,
    JobError,
    PermanentJobError,
    RateLimitedJobError,
    RetryableJobError,
)
from qworker.jobs.tweet_media import UploadedMedia
from qworker.jobs.x_account import RemoteLimit, limits_from_headers
from qworker.policy import clamp_rate_limit_reset_s

if TYPE_CHECKING:
    import requests

    from qworker.config import Settings

log = logging.getLogger("qworker.tweet")

CLIENT_NAME = "twitter"

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


class DuplicateContentError(PermanentJobError):
    """X refused the text because the account already posted it (403 duplicate content)."""


# -- clients -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Posted:
    tweet_id: str
    # The limits X's response headers reported (x_account.py shares them with every worker).
    limits: list[RemoteLimit] = dataclasses.field(default_factory=list)


class TwitterClient(Protocol):
    """What the tweet job needs from a client. Failures are raised as ``qworker.errors``
    job errors (``DuplicateContentError`` for duplicate text), never as tweepy's."""

    async def post_tweet(
        self,
        text: str,
        *,
        media_ids: Sequence[str] | None = None,
        reply_to: str | None = None,
        limits_out: list[RemoteLimit] | None = None,
    ) -> Posted:
        """Post ``text``; the new tweet's id. The limits X reported in its answer, even a
        refusal, are appended to ``limits_out``."""
        ...

    async def upload_media(self, data: bytes, mime: str, alt: str | None) -> UploadedMedia:
        """Upload one image or GIF (with its alt text); its media id."""
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
        # How a GIF upload waits for X's processing (tests wait by hand).
        self.sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        return f"{type(self).__name__}(OAuth 1.0a user context)"

    async def post_tweet(
        self,
        text: str,
        *,
        media_ids: Sequence[str] | None = None,
        reply_to: str | None = None,
        limits_out: list[RemoteLimit] | None = None,
    ) -> Posted:
        limits = limits_out if limits_out is not None else []
        return await asyncio.to_thread(self._post_blocking, text, media_ids, reply_to, limits)

    async def upload_media(self, data: bytes, mime: str, alt: str | None) -> UploadedMedia:
        return await asyncio.to_thread(self._upload_blocking, data, mime, alt)

    def close(self) -> None:
        self._client.session.close()

    def _upload_blocking(self, data: bytes, mime: str, alt: str | None) -> UploadedMedia:
        """tweepy 4's Client has no v2 media upload: send it on tweepy's own session, signed
        with the OAuth 1.0a user context tweepy signs ``create_tweet`` with."""
        import requests
        import tweepy

        from qworker.jobs.tweet_media import upload_blocking

        client = self._client
        auth = tweepy.OAuth1UserHandler(
            client.consumer_key,
            client.consumer_secret,
            client.access_token,
            client.access_token_secret,
        ).apply_auth()

        def send(method: str) -> Callable[..., requests.Response]:
            def request(url: str, **kwargs: Any) -> requests.Response:
                response: requests.Response = client.session.request(
                    method, url, auth=auth, **kwargs
                )
                if response.status_code >= 400:
                    raise tweepy.HTTPException(response)
                return response

            return request

        try:
            with self._lock:
                return upload_blocking(send("POST"), send("GET"), data, mime, alt, self.sleep)
        except tweepy.HTTPException as exc:
            response = exc.response
            error = http_error_to_job_error(
                response.status_code,
                response.reason or "",
                response.headers,
                [str(message) for message in exc.api_messages],
                list(exc.api_codes),
                now_s=time.time(),
            )
            raise error from None
        except requests.RequestException as exc:
            raise transport_error_to_job_error(exc) from exc
        except (ValueError, TimeoutError) as exc:
            raise RetryableJobError(f"media upload: {exc}") from exc

    def _post_blocking(
        self,
        text: str,
        media_ids: Sequence[str] | None,
        reply_to: str | None,
        limits: list[RemoteLimit],
    ) -> Posted:
        import requests
        import tweepy

        try:
            with self._lock:
                self._client.session.last_headers = {}
                try:
                    answer = self._client.create_tweet(
                        text=text,
                        media_ids=list(media_ids) if media_ids else None,
                        in_reply_to_tweet_id=reply_to,
                        user_auth=True,
                    )
                finally:
                    limits.extend(limits_from_headers(self._client.session.last_headers))
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
        return Posted(_tweet_id(answer), list(limits))


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
        """A session whose requests time out unless the caller says otherwise, and which keeps
        the headers of its last response (tweepy hands back only the body)."""

        last_headers: Mapping[str, str] = {}

        def request(self, *args: Any, **kwargs: Any) -> requests.Response:
            kwargs.setdefault("timeout", (connect_s, read_s))
            response = super().request(*args, **kwargs)
            self.last_headers = response.headers
            return response

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
        self,
        text: str,
        *,
        media_ids: Sequence[str] | None = None,
        reply_to: str | None = None,
        limits_out: list[RemoteLimit] | None = None,
    ) -> Posted:
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
        return Posted(tweet_id)

    async def upload_media(self, data: bytes, mime: str, alt: str | None) -> UploadedMedia:
        with self._lock:
            media_id = f"dry-run-media-{next(self._ids)}"
        log.info("dry run: would upload a %s (alt text %r) as %s", mime, alt, media_id)
        return UploadedMedia(media_id, expires_after_s=86_400.0)
