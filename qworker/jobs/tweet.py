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
import dataclasses
import functools
import itertools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import (
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

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
from qworker.jobs.tweet_media import MediaRef, UploadedMedia, check_media, load_media, media_intact
from qworker.jobs.tweet_text import MAX_WEIGHTED_LENGTH, has_invalid_characters, parse_tweet
from qworker.jobs.x_account import (
    CLIENT_NAME as X_ACCOUNT_CLIENT,
)
from qworker.jobs.x_account import (
    Charge,
    GateRefusal,
    RemoteLimit,
    XAccount,
    limits_from_headers,
)
from qworker.jobs.x_plan import counts_spend, price_micro_usd, tweet_rate_limit
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
MAX_TWEET_CHARS = MAX_WEIGHTED_LENGTH
MAX_MEDIA_IDS = 4
# Checkpoint names, stored on the job record (see the module docstring for why there are two).
TWEET_ID_CHECKPOINT = "tweet_id"
SENDING_CHECKPOINT = "tweet_sending"
# The ids X gave the job's media, and until when they may be posted with (JSON).
MEDIA_CHECKPOINT = "media_ids"
# An uploaded id is reused only while this much of its validity is left.
MEDIA_REUSE_MARGIN_S = 600.0

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
@functools.cache
def configured_max_length() -> int:
    """QWORKER_TWEET_MAX_LENGTH (environment or .env), read once per process. Parameters are
    validated where no Settings object is at hand (at enqueue, and when a worker decodes a
    job), so producer and worker both read the variable itself."""
    from pydantic import ValidationError

    from qworker.config import Settings

    try:
        return Settings().tweet_max_length
    except ValidationError:  # another setting is wrong: that error is reported where it matters
        return MAX_WEIGHTED_LENGTH


class TweetJobParams(BaseJobParams):
    """One tweet: its text, up to four uploaded media ids, and optionally the tweet it answers."""

    job_type: Literal["tweet"] = "tweet"
    content: str
    media_ids: list[str] | None = None
    reply_to: str | None = None
    # Files stored with the job in Redis (tweet_media.py), uploaded by the worker.
    media: list[MediaRef] | None = None

    @model_serializer(mode="wrap")
    def _omit_no_media(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A tweet without files is stored as before: workers of the previous release read it.
        data = handler(self)
        if isinstance(data, dict) and data.get("media") is None:
            data.pop("media", None)
        return data

    @model_validator(mode="after")
    def _check_media(self) -> TweetJobParams:
        if self.media:
            if self.media_ids:
                raise ValueError("give media files or uploaded media ids, not both")
            check_media(self.media)
        return self

    @field_validator("content")
    @classmethod
    def _check_content(cls, content: str) -> str:
        if not content:
            raise ValueError("content is empty; a tweet needs some text")
        if not content.strip():
            raise ValueError("content is only whitespace; X rejects blank tweets")
        # X's own count (tweet_text.py): CJK and emoji weigh 2, every URL 23.
        parsed = parse_tweet(content)
        limit = configured_max_length()
        if parsed.weighted_length > limit:
            raise ValueError(
                f"content has weighted length {parsed.weighted_length} > {limit} (X counts "
                "CJK characters and emoji as 2 and every URL as 23; QWORKER_TWEET_MAX_LENGTH "
                "sets a longer limit for accounts allowed longer posts)"
            )
        if has_invalid_characters(content):
            raise ValueError("content holds a character X refuses (U+FFFE, U+FEFF or U+FFFF)")
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
        account = self._account()
        media_ids = await self._media_ids(client, account)
        maybe_sent_before = self.context.checkpoints.get(SENDING_CHECKPOINT) == "1"
        # From here until the tweet id is recorded, a cancel waits: a tweet that was posted
        # must be reported posted, never canceled.
        with self.context.cancel_shield():
            charge = await self._gate(account)
            limits: list[RemoteLimit] = []
            try:
                await self.context.checkpoint(SENDING_CHECKPOINT, "1")
                posted = await client.post_tweet(
                    self.params.content,
                    media_ids=media_ids,
                    reply_to=self.params.reply_to,
                    limits_out=limits,
                )
            except DuplicateContentError as exc:
                await self._settle(account, limits, charge, refund=True)
                if maybe_sent_before:
                    raise AlreadyDone(
                        f"already posted: an earlier attempt reached the API and X now says: {exc}"
                    ) from None
                raise
            except JobError as exc:
                await self._settle(account, limits, charge, refund=not_posted(exc))
                if not exc.reached_remote and not maybe_sent_before:
                    await self._forget_sending()
                raise
            except BaseException:
                await self._settle(account, limits, charge, refund=False)
                raise
            await self.context.checkpoint(TWEET_ID_CHECKPOINT, posted.tweet_id)
            await self._settle(account, posted.limits, charge, refund=False)
        log.info("%s: posted as %s", self.describe(), posted.tweet_id)
        return {"tweet_id": posted.tweet_id}

    async def _media_ids(self, client: TwitterClient, account: XAccount | None) -> list[str]:
        """The ids to post with: given ones, or those of the job's own media, uploaded once
        and checkpointed so that a retry within their validity does not upload again."""
        if not self.params.media:
            return list(self.params.media_ids or [])
        recorded = _valid_media_ids(
            self.context.checkpoints.get(MEDIA_CHECKPOINT), len(self.params.media), time.time()
        )
        if recorded is not None:
            log.info("%s: reusing uploaded media %s", self.describe(), ", ".join(recorded))
            return recorded
        blobs = await self._stored_media(account)
        uploaded: list[UploadedMedia] = []
        for ref, blob in zip(self.params.media, blobs, strict=True):
            uploaded.append(await client.upload_media(blob, ref.mime, ref.alt))
        ids = [media.media_id for media in uploaded]
        valid_until_s = time.time() + min(media.expires_after_s for media in uploaded)
        record = json.dumps({"ids": ids, "valid_until_s": valid_until_s})
        await self.context.checkpoint(MEDIA_CHECKPOINT, record)
        return ids

    async def _stored_media(self, account: XAccount | None) -> list[bytes]:
        if account is None:  # a dry run uploads nothing, so it needs no bytes either
            return [b""] * len(self.params.media or [])
        blobs = await load_media(account.redis, account.keys.media(self.context.job_id))
        if not media_intact(self.params.media or [], blobs):
            raise PermanentJobError(
                f"the media of job {self.context.job_id} are no longer stored (deleted when "
                "it ended, or expired); enqueue the tweet again with its --media files"
            )
        return blobs

    def _account(self) -> XAccount | None:
        """The X account's shared state in Redis; none in a dry run (nothing reaches X)."""
        if self.config.dry_run:
            return None
        account: XAccount = self.clients.get(X_ACCOUNT_CLIENT)
        return account

    async def _gate(self, account: XAccount | None) -> Charge | None:
        """Take this post's place in X's windows and the month's budget, or park the job (as a
        rate limit: not a failure) until they allow it."""
        if account is None:
            return None
        has_url = parse_tweet(self.params.content).has_url
        price = price_micro_usd(self.config, has_url=has_url) if counts_spend(self.config) else 0
        try:
            decision = await account.gate(self.config, price_micro_usd=price, has_url=has_url)
        except Exception as exc:  # Redis unreachable: nothing was sent, try again later
            raise RetryableJobError(
                f"could not check X's limits in Redis: {type(exc).__name__}: {exc}",
                reached_remote=False,
            ) from exc
        if isinstance(decision, GateRefusal):
            raise RateLimitedJobError(
                f"not posted yet: {decision.reason}", reset_at=decision.until_ms / 1000
            )
        return decision

    async def _settle(
        self,
        account: XAccount | None,
        limits: list[RemoteLimit],
        charge: Charge | None,
        *,
        refund: bool,
    ) -> None:
        """Share what X's headers said with every worker, and give back the price of a post X
        did not make. Best effort: the post's own outcome must not hang on this bookkeeping."""
        if account is None:
            return
        try:
            await account.settle(limits, charge, refund=refund)
        except Exception as exc:
            log.warning("could not record X's rate-limit headers or spend: %s", exc)

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
        """The account's posting windows: QWORKER_X_PLAN's defaults, overridden by the
        QWORKER_TWEET_MAX_* settings given (x_plan.py); dry runs obey them too."""
        return tweet_rate_limit(self.config)

    def get_retry_config(self) -> dict[str, Any]:
        # The seed's schedule: retried after 1, 2 and 4 minutes, then dead-lettered.
        return {"max_retries": DEFAULT_MAX_RETRIES, "base_delay": DEFAULT_BASE_DELAY_S}

    def describe(self) -> str:
        text = " ".join(self.params.content.split())
        if len(text) > DESCRIBE_CHARS:
            text = text[: DESCRIBE_CHARS - 1] + "…"
        return f'tweet "{text}"'


def _valid_media_ids(recorded: str | None, count: int, now_s: float) -> list[str] | None:
    """The checkpointed media ids if they are all there and still usable for a while."""
    if not recorded:
        return None
    try:
        record = json.loads(recorded)
        ids, valid_until_s = list(record["ids"]), float(record["valid_until_s"])
    except (ValueError, KeyError, TypeError):
        return None
    if len(ids) != count or valid_until_s - MEDIA_REUSE_MARGIN_S <= now_s:
        return None
    return [str(media_id) for media_id in ids]


def not_posted(exc: JobError) -> bool:
    """Whether X surely made no post: the request never reached it, or X answered with a
    refusal (4xx, 429). A 5xx or a lost answer may hide a post, and keeps its price counted."""
    return not exc.reached_remote or isinstance(exc, PermanentJobError | RateLimitedJobError)


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


JobFactory.register_job_type(JOB_TYPE, TweetJob, TweetJobParams)
ClientContainer.register_factory(CLIENT_NAME, build_twitter_client)

__all__ = [
    "MIN_RATE_LIMIT_WAIT_S",
    "DryRunTwitterClient",
    "DuplicateContentError",
    "Posted",
    "TweepyTwitterClient",
    "TweetJob",
    "TweetJobParams",
    "TwitterClient",
    "build_twitter_client",
    "missing_credentials",
    "rate_limit_reset_at",
]
