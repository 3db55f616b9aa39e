"""Sessions, login and CSRF for the web UI.

A session is a signed cookie (HttpOnly, SameSite=Strict) holding a random id and who the user
is: the label of the token they logged in with, or ``local`` on a loopback server without
tokens. Every POST must carry ``csrf``, an HMAC of the session id, so another site can make a
browser send neither a valid cookie (SameSite) nor a valid form (it cannot read the token).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from qworker.web.settings import LOCAL_USER, WebSettings

SESSION_COOKIE = "qworker_session"
SESSION_MAX_AGE_S = 12 * 3600


@dataclass(frozen=True)
class Session:
    session_id: str
    who: str
    # True when the session proves a login (or none is needed): pages may be shown.
    authenticated: bool
    # True when made for this request: its cookie is to be set on the response.
    new: bool = False


def _sign(secret: bytes, text: str) -> str:
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def encode_session(settings: WebSettings, session_id: str, who: str) -> str:
    body = json.dumps({"sid": session_id, "who": who, "exp": int(time.time()) + SESSION_MAX_AGE_S})
    data = base64.urlsafe_b64encode(body.encode()).decode()
    return f"{data}.{_sign(settings.secret, data)}"


def decode_session(settings: WebSettings, cookie: str | None) -> dict[str, Any] | None:
    if not cookie or "." not in cookie:
        return None
    data, _, signature = cookie.rpartition(".")
    if not _same(signature, _sign(settings.secret, data)):
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(data.encode()))
    except ValueError:
        return None
    if not isinstance(body, dict) or int(body.get("exp", 0)) < time.time():
        return None
    return body


def session_of(request: Request) -> Session:
    """The request's session; a new one when its cookie is missing or forged. A session
    without ``who`` (a login form's) only binds that form's CSRF token."""
    settings: WebSettings = request.app.state.web
    body = decode_session(settings, request.cookies.get(SESSION_COOKIE)) or {}
    sid, who = body.get("sid"), body.get("who")
    known = isinstance(sid, str) and bool(sid)
    session_id = str(sid) if known else new_session_id()
    if known and isinstance(who, str) and who:
        return Session(session_id, who, True)
    if not settings.login_required:
        return Session(session_id, LOCAL_USER, True, new=not known)
    return Session(session_id, "", False, new=not known)


def new_session_id() -> str:
    return secrets.token_urlsafe(16)


def bearer_user(request: Request) -> str | None:
    """The label of the token in an ``Authorization: Bearer`` header (scripts reading the
    JSON twins), or None."""
    settings: WebSettings = request.app.state.web
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return check_token(settings, token.strip())


def check_token(settings: WebSettings, given: str) -> str | None:
    """The label of ``given`` if it is one of the tokens (compared in constant time)."""
    found = None
    for token, label in settings.tokens.items():
        if hmac.compare_digest(token.encode(), given.encode()):
            found = label
    return found


def csrf_token(settings: WebSettings, session: Session) -> str:
    return _sign(settings.secret, f"csrf:{session.session_id}")


def csrf_valid(settings: WebSettings, session: Session, given: str | None) -> bool:
    return bool(given) and _same(csrf_token(settings, session), str(given))


def _same(expected: str, given: str) -> bool:
    """Constant-time comparison; as bytes, since compare_digest refuses non-ASCII text (a
    forged value must be a 403, not a 500)."""
    return hmac.compare_digest(expected.encode(), given.encode())


def cookie_options(request: Request) -> dict[str, Any]:
    return {
        "httponly": True,
        "samesite": "strict",
        "secure": request.url.scheme == "https",
        "max_age": SESSION_MAX_AGE_S,
        "path": "/",
    }
