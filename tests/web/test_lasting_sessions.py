"""``qworker web --secret-file``: a login outlasts a restart and holds on another web process
given the same files, while another secret, or a change to the tokens, ends it. Real
``qworker web`` processes, logged into over HTTP as a browser would."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qworker.web.settings import session_secret
from tests.redis_server import RedisServer
from tests.web.conftest import WebServer, http, start_web, stop_web

TOKEN = "alice-token-0123456789"


def cookie_of(headers: dict[str, str]) -> str:
    """The ``name=value`` of the Set-Cookie header."""
    return headers["set-cookie"].split(";", 1)[0]


def log_in(server: WebServer) -> str:
    """Log in with TOKEN through the login form; the session cookie it sets."""
    status, html, headers = http(server.url + "/login")
    assert status == 200
    form_cookie = cookie_of(headers)
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    status, _, headers = http(
        server.url + "/login",
        data={"token": TOKEN, "csrf": match[1]},
        headers={"Cookie": form_cookie},
    )
    assert status == 303, server.log()
    return cookie_of(headers)


def signed_in(server: WebServer, cookie: str) -> bool:
    """The overview answers (200), or sends to the login form (303)."""
    status, _, _ = http(server.url + "/", headers={"Cookie": cookie})
    assert status in (200, 303), (status, server.log())
    return status == 200


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("tokens", "secret", "other-secret")}
    paths["tokens"].write_text(f"alice:{TOKEN}\n")
    paths["secret"].write_text("s" * 40 + "\n")
    paths["other-secret"].write_text("o" * 40)
    return paths


def web(
    redis_server: RedisServer, namespace: str, tmp_path: Path, tokens: Path, secret: Path | None
) -> WebServer:
    args = ["--token-file", str(tokens)]
    if secret is not None:
        args += ["--secret-file", str(secret)]
    return start_web(redis_server.url, namespace, tmp_path, *args)


def cookie_from_a_first_server(
    redis_server: RedisServer, namespace: str, tmp_path: Path, files: dict[str, Path]
) -> str:
    """Log in on a server given the tokens and the secret, which then stops."""
    first = web(redis_server, namespace, tmp_path, files["tokens"], files["secret"])
    try:
        cookie = log_in(first)
        assert signed_in(first, cookie)
        assert not signed_in(first, "qworker_session=forged.0000")
        return cookie
    finally:
        stop_web(first)


def test_a_login_outlasts_a_restart_and_holds_on_a_second_process(
    redis_server: RedisServer, namespace: str, tmp_path: Path, files: dict[str, Path]
) -> None:
    cookie = cookie_from_a_first_server(redis_server, namespace, tmp_path, files)
    again = web(redis_server, namespace, tmp_path, files["tokens"], files["secret"])
    beside = web(redis_server, namespace, tmp_path, files["tokens"], files["secret"])
    try:
        assert signed_in(again, cookie)
        assert signed_in(beside, cookie)
    finally:
        stop_web(again)
        stop_web(beside)


def test_another_secret_no_secret_or_other_tokens_end_the_login(
    redis_server: RedisServer, namespace: str, tmp_path: Path, files: dict[str, Path]
) -> None:
    cookie = cookie_from_a_first_server(redis_server, namespace, tmp_path, files)
    revoked = tmp_path / "revoked"  # alice's token replaced by bob's
    revoked.write_text("bob:bob-token-0123456789\n")
    for tokens, secret in (
        (files["tokens"], files["other-secret"]),
        (files["tokens"], None),  # a new secret per start, as without the option
        (revoked, files["secret"]),
    ):
        server = web(redis_server, namespace, tmp_path, tokens, secret)
        try:
            assert not signed_in(server, cookie), (tokens, secret)
        finally:
            stop_web(server)


def test_the_key_depends_on_the_secret_the_tokens_and_their_labels() -> None:
    tokens = {TOKEN: "alice"}
    key = session_secret(b"s" * 40, tokens)
    assert key == session_secret(b"s" * 40, dict(tokens))
    assert key != session_secret(b"o" * 40, tokens)
    assert key != session_secret(b"s" * 40, {TOKEN: "mallory"})
    assert key != session_secret(b"s" * 40, {**tokens, "bob-token-0123456789": "bob"})
