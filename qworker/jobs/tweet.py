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

import functools
import importlib
import json
import logging
import re
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    SerializerFunctionWrapHandler,
    ValidationInfo,
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
from qworker.jobs.tweet_media import MediaRef, check_media
from qworker.jobs.tweet_text import MAX_WEIGHTED_LENGTH, has_invalid_characters, parse_tweet
from qworker.policy import DEFAULT_BASE_DELAY_S, DEFAULT_MAX_RETRIES, MIN_RATE_LIMIT_WAIT_S

if TYPE_CHECKING:
    from qworker.config import Settings
    from qworker.jobs.tweet_client import (
        CLIENT_NAME,
        CONNECT_TIMEOUT_S,
        CREDENTIAL_ENV_VARS,
        DEFAULT_RATE_LIMIT_WAIT_S,
        DUPLICATE_STATUS_CODE,
        READ_TIMEOUT_S,
        DryRunTwitterClient,
        DuplicateContentError,
        Posted,
        TweepyTwitterClient,
        TwitterClient,
        build_twitter_client,
        http_error_to_job_error,
        missing_credentials,
        rate_limit_reset_at,
        transport_error_to_job_error,
    )
    from qworker.jobs.tweet_media import UploadedMedia
    from qworker.jobs.x_account import Charge, RemoteLimit, XAccount
    from qworker.rate_limiter import RateLimit

log = logging.getLogger("qworker.tweet")

JOB_TYPE = "tweet"
MAX_TWEET_CHARS = MAX_WEIGHTED_LENGTH
MAX_MEDIA_IDS = 4
# Checkpoint names, stored on the job record (see the module docstring for why there are two).
TWEET_ID_CHECKPOINT = "tweet_id"
SENDING_CHECKPOINT = "tweet_sending"
# The ids X gave the job's media, and until when they may be posted with (JSON).
MEDIA_CHECKPOINT = "media_ids"
# An uploaded id is reused only while this much of its validity is left.
MEDIA_REUSE_MARGIN_S = 600.0
# tweet_client.CLIENT_NAME and x_account.CLIENT_NAME (a test checks they agree), spelled here so
# that registering the job type imports neither the X client nor the Redis client under it.
TWITTER_CLIENT = "twitter"
X_ACCOUNT_CLIENT = "x_account"


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
    # The tweet this one answers (X's own name for it); ``reply_to`` is the older name, kept.
    in_reply_to_tweet_id: str | None = None
    reply_to: str | None = None
    # Answer the tweet the job it waits for posted (its result's tweet_id): a thread's posts.
    reply_to_dependency: bool = False
    # Files stored with the job in Redis (tweet_media.py), uploaded by the worker.
    media: list[MediaRef] | None = None

    @model_serializer(mode="wrap")
    def _omit_no_media(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A tweet without files is stored as before: workers of the previous release read it.
        data = handler(self)
        if isinstance(data, dict):
            for name, absent in (("media", None), ("in_reply_to_tweet_id", None),
                                 ("reply_to_dependency", False)):  # fmt: skip
                if data.get(name, absent) == absent:
                    data.pop(name, None)
        return data

    @model_validator(mode="after")
    def _check_reply(self) -> TweetJobParams:
        given = {self.in_reply_to_tweet_id, self.reply_to} - {None}
        if len(given) > 1:
            raise ValueError("give in_reply_to_tweet_id or reply_to (the same thing), not both")
        if given and self.reply_to_dependency:
            raise ValueError("a tweet answers a given id or its dependency's tweet, not both")
        return self

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

    @field_validator("media_ids", "reply_to", "in_reply_to_tweet_id", mode="before")
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

    @field_validator("reply_to", "in_reply_to_tweet_id")
    @classmethod
    def _check_reply_to(cls, reply_to: str | None, info: ValidationInfo) -> str | None:
        if reply_to is not None and not _SNOWFLAKE.fullmatch(reply_to):
            raise ValueError(f"{info.field_name} is {reply_to!r}; a tweet id is digits only")
        return reply_to


# -- the job -------------------------------------------------------------------------------------


class TweetJob(BaseJob[TweetJobParams]):
    """Posts ``params.content`` once; see the module docstring for the at-most-once protocol."""

    async def execute(self) -> dict[str, str]:
        """Post the tweet; the result is its id (``{"tweet_id": ...}``)."""
        posted_id = self.context.checkpoints.get(TWEET_ID_CHECKPOINT)
        if posted_id:
            log.info("%s: already posted as %s; not posting again", self.describe(), posted_id)
            return {"tweet_id": posted_id}
        from qworker.jobs.tweet_client import DuplicateContentError

        reply_to = self._reply_to()
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
                    reply_to=reply_to,
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
        if getattr(client, "dry_run", False):  # never passed off as posted: job show, stats
            await self.context.record_dry_run()
            log.info("%s: DRY RUN, not posted (%s)", self.describe(), posted.tweet_id)
            return {"tweet_id": posted.tweet_id}
        log.info("%s: posted as %s", self.describe(), posted.tweet_id)
        return {"tweet_id": posted.tweet_id}

    def _reply_to(self) -> str | None:
        """The tweet this one answers: given, or posted by the job it waited for (a thread)."""
        p = self.params
        if not p.reply_to_dependency:
            return p.in_reply_to_tweet_id or p.reply_to
        posted = [
            result.get("tweet_id")
            for result in self.context.dependency_results.values()
            if isinstance(result, dict)
        ]
        if len(posted) != 1 or not isinstance(posted[0], str):
            raise PermanentJobError(
                "this post answers the tweet its dependency posted, but found no one posted "
                f"tweet id among its dependencies' results ({len(posted)} results)"
            )
        return posted[0]

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
        from qworker.jobs.tweet_media import load_media, media_intact

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
        # Imported here, not with the module: it brings the Redis client, which enqueueing a
        # tweet does not need. Importing it registers its client factory.
        import qworker.jobs.x_account  # noqa: F401

        account: XAccount = self.clients.get(X_ACCOUNT_CLIENT)
        return account

    async def _gate(self, account: XAccount | None) -> Charge | None:
        """Take this post's place in X's windows and the month's budget, or park the job (as a
        rate limit: not a failure) until they allow it."""
        from qworker.jobs.x_account import GateRefusal
        from qworker.jobs.x_plan import counts_spend, price_micro_usd

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
            client: TwitterClient = self.clients.get(TWITTER_CLIENT)
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
        from qworker.jobs.x_plan import tweet_rate_limit

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


def _build_twitter_client(settings: Settings) -> TwitterClient:
    from qworker.jobs.tweet_client import build_twitter_client

    return build_twitter_client(settings)


# What this module offers of tweet_client, loaded on first use: importing the module to validate
# a tweet (every ``qworker enqueue tweet``) then costs no X client and no Redis client.
_FROM_TWEET_CLIENT = frozenset(
    {
        "CLIENT_NAME",
        "CONNECT_TIMEOUT_S",
        "CREDENTIAL_ENV_VARS",
        "DEFAULT_RATE_LIMIT_WAIT_S",
        "DUPLICATE_STATUS_CODE",
        "READ_TIMEOUT_S",
        "DryRunTwitterClient",
        "DuplicateContentError",
        "Posted",
        "TweepyTwitterClient",
        "TwitterClient",
        "build_twitter_client",
        "http_error_to_job_error",
        "missing_credentials",
        "rate_limit_reset_at",
        "transport_error_to_job_error",
    }
)


def __getattr__(name: str) -> Any:
    if name not in _FROM_TWEET_CLIENT:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("qworker.jobs.tweet_client"), name)
    globals()[name] = value
    return value


JobFactory.register_job_type(JOB_TYPE, TweetJob, TweetJobParams)
ClientContainer.register_factory(TWITTER_CLIENT, _build_twitter_client)

__all__ = [
    "CLIENT_NAME",
    "CONNECT_TIMEOUT_S",
    "CREDENTIAL_ENV_VARS",
    "DEFAULT_RATE_LIMIT_WAIT_S",
    "DUPLICATE_STATUS_CODE",
    "MIN_RATE_LIMIT_WAIT_S",
    "READ_TIMEOUT_S",
    "DryRunTwitterClient",
    "DuplicateContentError",
    "Posted",
    "TweepyTwitterClient",
    "TweetJob",
    "TweetJobParams",
    "TwitterClient",
    "build_twitter_client",
    "http_error_to_job_error",
    "missing_credentials",
    "rate_limit_reset_at",
    "transport_error_to_job_error",
]
