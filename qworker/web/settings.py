"""What the web UI is allowed to do and who may use it: read-only unless actions are allowed,
tokens from a file, and which addresses may be bound without a token (loopback only).

Nothing here imports Starlette: the command line checks these before the web extra is loaded.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from qworker.config import Settings
from qworker.errors import ConfigurationError

if TYPE_CHECKING:
    from qworker.service import QueueService

# Who an action is recorded as when no token is needed (a loopback-only server).
LOCAL_USER = "local"
MIN_TOKEN_CHARS = 16
MIN_SECRET_CHARS = 32


@dataclass
class WebSettings:
    """The web UI's settings. ``tokens`` maps each accepted token to its label (who is
    recorded in the audit stream); empty: no login (only for a loopback-only server).
    ``service_factory`` builds the QueueService (default: one from ``queue``), for an
    embedded Redis such as the demo's."""

    queue: Settings = field(default_factory=Settings)
    allow_actions: bool = False
    tokens: dict[str, str] = field(default_factory=dict)
    # Signs the session cookies and CSRF tokens; a new one per start logs everyone out (see
    # session_secret for one that lasts).
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    page_size: int = 50
    live_interval_s: float = 1.0
    # Audit entries kept (approximately: XADD MAXLEN ~).
    audit_max_entries: int = 10_000
    service_factory: Callable[[], QueueService] | None = None
    # True once the server is stopping: live streams end then, instead of being cut off.
    stopping: Callable[[], bool] = lambda: False

    @property
    def login_required(self) -> bool:
        return bool(self.tokens)


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_bind(host: str, tokens: dict[str, str]) -> None:
    """Refuse to serve the UI beyond this machine without a token."""
    if not tokens and not is_loopback(host):
        raise ConfigurationError(
            f"refusing to serve the web UI on {host} without a token: anyone who can reach it "
            "could read the queue; give --token-file FILE, or bind to 127.0.0.1"
        )


def load_tokens(path: Path) -> dict[str, str]:
    """Tokens from a file: one per line, ``LABEL:TOKEN`` (or a bare token, labelled
    ``token-N``); blank lines and ``#`` comments are skipped. Each token must be at least
    MIN_TOKEN_CHARS long, so a guessable one is refused rather than served."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the token file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigurationError(
            f"the token file {path} is not UTF-8 text: write one LABEL:TOKEN a line"
        ) from None
    tokens: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        label, sep, token = line.partition(":")
        if not sep:
            label, token = f"token-{len(tokens) + 1}", line
        label, token = label.strip(), token.strip()
        if len(token) < MIN_TOKEN_CHARS:
            raise ConfigurationError(
                f"{path} line {number}: a token must be at least {MIN_TOKEN_CHARS} characters "
                "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe())')"
            )
        if not label or not label.isprintable():
            raise ConfigurationError(f"{path} line {number}: the label before ':' is empty")
        tokens[token] = label
    if not tokens:
        raise ConfigurationError(f"the token file {path} holds no token")
    return tokens


def load_secret(path: Path) -> bytes:
    """The secret in a file (surrounding whitespace aside), at least MIN_SECRET_CHARS long."""
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the secret file {path}: {exc.strerror}") from None
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigurationError(
            f"the secret in {path} must be at least {MIN_SECRET_CHARS} characters "
            "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return secret


def session_secret(secret: bytes, tokens: dict[str, str]) -> bytes:
    """The key that signs sessions, from a lasting secret and the tokens: every web process
    given the same two files accepts the others' sessions, and across restarts, while a
    change to the tokens (one revoked, a label changed) ends every session, as a restart
    without a lasting secret does."""
    accepted = "\n".join(sorted(f"{label}:{token}" for token, label in tokens.items()))
    return hmac.new(secret, accepted.encode(), hashlib.sha256).digest()
