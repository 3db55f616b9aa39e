"""Images and GIFs a tweet carries: checked at enqueue, kept in Redis with the job, uploaded by
the worker through X API v2 media upload.

* **Enqueue** (:func:`read_media_files`): up to 4 images (JPEG, PNG, WebP) or 1 GIF, their type
  read from their first bytes (not their name), at most 5 MB an image and 15 MB a GIF, as X
  documents; alt text up to 1,000 characters. The bytes go to the job's own media hash
  (``keys.media(job_id)``) in the same MULTI/EXEC as the job itself (:func:`enqueue_with_media`),
  so producer and worker share no disk; the job's payload only names them (type, size, SHA-256,
  alt text). Every end of the job (done, dead, canceled) deletes the hash (``job_end.lua``); a
  safety expiry removes what a crash could leave behind.
* **Worker** (:func:`upload_blocking`): ``POST https://api.x.com/2/media/upload`` for an image
  (one request), the ``initialize`` / ``append`` / ``finalize`` flow for a GIF, then
  ``POST /2/media/metadata`` for alt text; signed with the OAuth 1.0a user context tweepy
  signs its own requests with. The tweet job checkpoints the ids, so a retry within their
  validity posts with them instead of uploading again.

Importing this module is cheap: requests and tweepy are imported by the functions that upload.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from qworker.errors import ConfigurationError, ValidationFailed

if TYPE_CHECKING:
    import requests

    from qworker.jobs.base import BaseJobParams
    from qworker.models import EnqueueResult
    from qworker.scripts import ScriptCall
    from qworker.service import QueueService

MediaType = Literal["image/jpeg", "image/png", "image/webp", "image/gif"]
MB = 1024 * 1024
MAX_IMAGE_BYTES = 5 * MB
MAX_GIF_BYTES = 15 * MB
MAX_IMAGES = 4
MAX_ALT_CHARS = 1000
# The media of a job that never ended (a crash between writes) expire this long after it was
# due to run: far beyond any retry schedule.
MEDIA_KEEP_MS = 30 * 86_400_000

UPLOAD_URL = "https://api.x.com/2/media/upload"
INITIALIZE_URL = "https://api.x.com/2/media/upload/initialize"
METADATA_URL = "https://api.x.com/2/media/metadata"
CHUNK_BYTES = 4 * MB  # X takes segments of up to 5 MB
MAX_PROCESSING_WAIT_S = 60.0


class MediaRef(BaseModel):
    """One media file of a tweet job, as its payload names it; the bytes are in Redis."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mime: MediaType
    size: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    alt: str | None = Field(default=None, max_length=MAX_ALT_CHARS)


def sniff_type(data: bytes) -> MediaType | None:
    """The image type of ``data`` by its signature, or None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_media(refs: Sequence[MediaRef]) -> None:
    """X's rule for one post: up to 4 images, or a single GIF."""
    gifs = sum(ref.mime == "image/gif" for ref in refs)
    if gifs and len(refs) > 1:
        raise ValueError("a GIF must be a tweet's only media (X allows 4 images or 1 GIF)")
    if len(refs) > MAX_IMAGES:
        raise ValueError(f"{len(refs)} media files; X allows at most {MAX_IMAGES} images a post")


def read_media_files(
    paths: Sequence[Path], alts: Sequence[str]
) -> tuple[list[MediaRef], list[bytes]]:
    """Read and check ``--media`` files (``--alt`` texts in the same order). Raises
    ValidationFailed naming the file and what to do."""
    if len(alts) > len(paths):
        raise ValidationFailed(f"{len(alts)} --alt texts for {len(paths)} --media files")
    if len(paths) > MAX_IMAGES:
        raise ValidationFailed(
            f"{len(paths)} --media files; X allows at most {MAX_IMAGES} images (or 1 GIF) a post"
        )
    refs, blobs = [], []
    for index, path in enumerate(paths):
        data = _read(path)
        mime = sniff_type(data)
        if mime is None:
            raise ValidationFailed(
                f"{path} is not a JPEG, PNG, WebP or GIF image (judged by its content)"
            )
        limit = MAX_GIF_BYTES if mime == "image/gif" else MAX_IMAGE_BYTES
        if len(data) > limit:
            raise ValidationFailed(
                f"{path} is over {limit:,} bytes; X takes at most {limit // MB} MB "
                f"for {'a GIF' if mime == 'image/gif' else 'an image'}"
            )
        alt = alts[index] if index < len(alts) else None
        if alt is not None and len(alt) > MAX_ALT_CHARS:
            raise ValidationFailed(f"--alt for {path} is {len(alt)} characters; X takes 1000")
        refs.append(MediaRef(mime=mime, size=len(data), sha256=_sha256(data), alt=alt or None))
        blobs.append(data)
    try:
        check_media(refs)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    return refs, blobs


def _read(path: Path) -> bytes:
    if str(path) in ("", "."):  # --media "" arrives as the current directory
        raise ValidationFailed("--media needs the path of an image file, not an empty one")
    try:
        if not path.is_file():
            reason = "no such file" if not path.exists() else "not a regular file"
            raise ValidationFailed(f"cannot read media file {path}: {reason}")
        with path.open("rb") as file:
            # One byte over the largest limit is enough to refuse it: never read a huge file.
            return file.read(MAX_GIF_BYTES + 1)
    except OSError as exc:
        raise ValidationFailed(f"cannot read media file {path}: {exc.strerror or exc}") from None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def media_intact(refs: Sequence[MediaRef], blobs: Sequence[bytes]) -> bool:
    return len(refs) == len(blobs) and all(
        ref.size == len(blob) and ref.sha256 == _sha256(blob)
        for ref, blob in zip(refs, blobs, strict=True)
    )


# A field of the job record: set when the job carries media (job_end.lua deletes it then).
HAS_MEDIA_FIELD = "has_media"


# -- storing with the job ------------------------------------------------------------------------
async def enqueue_with_media(
    service: QueueService,
    params: BaseJobParams,
    blobs: Sequence[bytes],
    *,
    priority: int,
    delay_s: float | None,
    run_at_ms: int | None,
    job_id: str | None,
    unique_key: str | None,
    unique_for_s: float | None,
    unique_until: str,
) -> EnqueueResult:
    """Queue a tweet job and its media in one MULTI/EXEC (the enqueue script, then
    attach_media.lua), as ``QueueService.enqueue_job`` queues a job alone."""
    from qworker.clients import ClientContainer
    from qworker.models import EnqueueResult
    from qworker.producing import new_job_id, prepare, with_unique_key
    from qworker.producing import run_at_ms as ready_at

    if not blobs:  # attach_media.lua would fail after the enqueue went in
        raise ValueError("enqueue_with_media needs at least one file; use add_job without media")
    if service.settings.durable_replicas > 0:  # its MULTI/EXEC is not followed by a WAIT
        raise ConfigurationError(
            "a tweet with media cannot be enqueued durably yet; use a service whose "
            "durable_replicas is 0 for it"
        )
    now_ms = service.clock.now_ms()
    job_id = job_id or new_job_id()
    ready_at_ms = ready_at(delay_s, run_at_ms, now_ms)
    item = prepare(params, priority, ready_at_ms, job_id, service.settings,
                   ClientContainer(service.settings))  # fmt: skip
    item = with_unique_key(item, unique_key, unique_for_s, unique_until)
    enqueue = service.scripts.enqueue([item], now_ms)
    keep_ms = max((ready_at_ms or now_ms) - now_ms, 0) + MEDIA_KEEP_MS
    attach = service.scripts.attach_media(job_id, item.payload, blobs, keep_ms)
    await service.check_memory_policy()
    replies = await _enqueue_and_attach(service.redis, enqueue, attach)
    reply = enqueue.parse(replies[0])
    holder = reply.duplicates.get(0)
    if holder is not None:
        return EnqueueResult(job_id=holder, created=False, duplicate=True)
    return EnqueueResult(job_id=job_id, created=reply.stored == 1)


async def _enqueue_and_attach(redis: Any, *calls: ScriptCall[Any]) -> list[Any]:
    """One MULTI/EXEC: the media goes with the job this enqueue stores, or nowhere (a duplicate,
    an id already taken), and no other client sees the job without its media. The scripts are
    loaded first and run by EVALSHA, which a least-privilege user may (EVAL it may not); a
    Redis that lost them in between (a restart) ran neither, and the pair is sent again."""
    from redis.exceptions import NoScriptError

    for _attempt in range(2):
        for call in calls:  # one at a time: a cluster client sends SCRIPT LOAD to every primary
            await redis.script_load(call.script.source)
        async with redis.pipeline(transaction=True) as pipe:
            for call in calls:
                pipe.execute_command(*call.command())
            replies = list(await pipe.execute(raise_on_error=False))
        if not any(isinstance(reply, NoScriptError) for reply in replies):
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            return replies
    raise NoScriptError("Redis lost qworker's scripts twice while a tweet with media was queued")


async def load_media(redis: Any, media_key: str) -> list[bytes]:
    """The media bytes of a job, in order ([] when gone); read undecoded whatever the client's
    ``decode_responses``."""
    from redis.client import NEVER_DECODE

    stored = await redis.execute_command("HGETALL", media_key, **{NEVER_DECODE: True})
    if isinstance(stored, list):  # RESP2 without a response callback: a flat list
        stored = dict(zip(stored[::2], stored[1::2], strict=True))
    by_index = {int(key): value for key, value in stored.items()}
    return [by_index[index] for index in sorted(by_index)]


# -- uploading ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UploadedMedia:
    media_id: str
    # How long X keeps the id usable for a post.
    expires_after_s: float


Post = Callable[..., "requests.Response"]


def upload_blocking(
    post: Post,
    get: Post,
    data: bytes,
    mime: str,
    alt: str | None,
    sleep: Callable[[float], None] = time.sleep,
) -> UploadedMedia:
    """Upload one file (a GIF by the chunked flow) and set its alt text. ``post``/``get`` send
    a signed request (tweepy's session with its OAuth 1.0a auth) and raise for an HTTP error."""
    if mime == "image/gif":
        uploaded = _chunked(post, get, data, mime, sleep)
    else:
        files = {"media": ("media", data, mime)}
        answer = post(UPLOAD_URL, files=files, data={"media_category": "tweet_image"}).json()
        uploaded = _uploaded(answer)
    if alt:
        body = {"id": uploaded.media_id, "metadata": {"alt_text": {"text": alt}}}
        post(METADATA_URL, json=body)
    return uploaded


def _chunked(
    post: Post, get: Post, data: bytes, mime: str, sleep: Callable[[float], None]
) -> UploadedMedia:
    init = {"media_type": mime, "total_bytes": len(data), "media_category": "tweet_gif"}
    media_id = _uploaded(post(INITIALIZE_URL, json=init).json()).media_id
    for segment, start in enumerate(range(0, len(data), CHUNK_BYTES)):
        chunk = data[start : start + CHUNK_BYTES]
        files = {"media": ("media", chunk, "application/octet-stream")}
        post(f"{UPLOAD_URL}/{media_id}/append", files=files, data={"segment_index": segment})
    answer = post(f"{UPLOAD_URL}/{media_id}/finalize").json()
    waited_s = 0.0
    while (info := (answer.get("data") or {}).get("processing_info")) and info.get("state") in (
        "pending",
        "in_progress",
    ):
        delay_s = float(info.get("check_after_secs") or 1)
        if waited_s + delay_s > MAX_PROCESSING_WAIT_S:
            raise TimeoutError(f"X still processing media {media_id} after {waited_s:.0f}s")
        sleep(delay_s)
        waited_s += delay_s
        answer = get(UPLOAD_URL, params={"command": "STATUS", "media_id": media_id}).json()
    if info and info.get("state") == "failed":
        error = info.get("error") or {}
        raise ValueError(f"X could not process media {media_id}: {error.get('message', error)}")
    return _uploaded(answer, media_id)


def _uploaded(answer: Any, media_id: str | None = None) -> UploadedMedia:
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict) or not (data.get("id") or media_id):
        raise ValueError(f"X's media upload answered without a media id: {answer!r}")
    expires = data.get("expires_after_secs")
    return UploadedMedia(
        media_id=str(data.get("id") or media_id),
        expires_after_s=float(expires) if isinstance(expires, int | float) else 86_400.0,
    )


__all__ = [
    "MAX_GIF_BYTES",
    "MAX_IMAGE_BYTES",
    "MediaRef",
    "UploadedMedia",
    "check_media",
    "enqueue_with_media",
    "load_media",
    "media_intact",
    "read_media_files",
    "sniff_type",
    "upload_blocking",
]
