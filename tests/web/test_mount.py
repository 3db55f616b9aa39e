"""``create_app`` mounted inside another ASGI app: its links and redirects stay under the mount
point, and its settings (read-only, tokens) hold there too."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount

from qworker.config import Settings
from qworker.web import WebSettings, create_app


async def call(
    app: Any, method: str, path: str, body: bytes = b""
) -> tuple[int, str, dict[str, str]]:
    """One request straight through the ASGI interface (no network, no client library)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"accept", b"text/html"),
            (b"content-type", b"application/x-www-form-urlencoded"),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            return {"type": "http.disconnect"}
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    text = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], text.decode(), headers


def web_settings(redis_url: str, namespace: str, **extra: Any) -> WebSettings:
    queue = Settings(redis_url=redis_url, namespace=namespace, _env_file=None)  # type: ignore[call-arg]
    return WebSettings(queue=queue, **extra)


async def test_mounted_pages_link_under_the_mount_point(redis_url: str, namespace: str) -> None:
    inner = create_app(web_settings(redis_url, namespace))
    outer = Starlette(routes=[Mount("/admin/queue", app=inner)])
    status, html, _ = await call(outer, "GET", "/admin/queue/dlq")
    assert status == 200
    assert 'href="/admin/queue/static/style.css"' in html
    assert 'action="/admin/queue/jobs"' in html
    assert "https://" not in html and "http://" not in html  # nothing from the internet
    status, _, _ = await call(outer, "GET", "/admin/queue/static/htmx.min.js")
    assert status == 200
    status, _, _ = await call(outer, "POST", "/admin/queue/dlq/requeue", b"ids=x&csrf=y")
    assert status == 403  # read-only by default, mounted or not
    await inner.state.service.close()


async def test_mounted_with_tokens_the_login_is_under_the_mount_point(
    redis_url: str, namespace: str
) -> None:
    settings = web_settings(redis_url, namespace, tokens={"t" * 20: "alice"})
    inner = create_app(settings)
    outer = Starlette(routes=[Mount("/ops", app=inner)])
    status, _, headers = await call(outer, "GET", "/ops/queues")
    assert status == 303 and headers["location"] == "/ops/login"
    status, html, _ = await call(outer, "GET", "/ops/login")
    assert status == 200 and 'action="/ops/login"' in html
    await inner.state.service.close()
