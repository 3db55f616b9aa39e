"""What ``qworker enqueue`` and its fast path (``fast_enqueue.py``) share: reading the text or
JSON argument, a tweet's unique key, and the line a duplicate prints. No Typer here, so the fast
path can use it without building the command line.
"""

from __future__ import annotations

import hashlib
import sys
import unicodedata

from qworker.cli._errors import UsageError


def read_argument(text: str) -> str:
    """The argument itself, or stdin for ``-`` (without its final newline); UTF-8 text only."""
    where = "stdin" if text == "-" else "the text argument"
    try:
        data = _stdin_bytes() if text == "-" else _argument_bytes(text)
        return data.decode("utf-8").rstrip("\r\n")
    except (UnicodeDecodeError, UnicodeEncodeError) as exc:
        raise UsageError(
            f"{where} is not UTF-8 text ({exc.reason} at offset {exc.start})"
        ) from None


def _stdin_bytes() -> bytes:
    buffer = getattr(sys.stdin, "buffer", None)
    return buffer.read() if buffer is not None else _argument_bytes(sys.stdin.read())


def _argument_bytes(text: str) -> bytes:
    # Python keeps bytes of the command line that are not UTF-8 as lone surrogates.
    return text.encode("utf-8", "surrogateescape")


def tweet_unique_key(content: str) -> str:
    """``tweet:`` and a hash of the text as X compares it: NFC, runs of whitespace as one space,
    none at the ends (X refuses an identical post anyway; this stops it before the queue)."""
    normal = " ".join(unicodedata.normalize("NFC", content).split())
    return "tweet:" + hashlib.sha256(normal.encode("utf-8")).hexdigest()[:32]


def duplicate_line(holder_id: str, unique_key: str | None) -> str:
    """What stderr says when a unique enqueue found the job holding its key (exit 3)."""
    return f"duplicate of job {holder_id}: it holds unique key {unique_key}\n"
