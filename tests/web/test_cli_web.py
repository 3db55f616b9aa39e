"""``qworker web`` on the command line: what it refuses (exit 2, one line), the missing extra
(one line naming the install), and that the core never imports the web stack."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.redis_server import RedisServer
from tests.web.conftest import REPO_ROOT, base_env, http, start_web, stop_web

WEB_STACK = ("starlette", "jinja2", "uvicorn", "multipart")


def qworker(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "qworker"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=base_env(),
        cwd=REPO_ROOT,
        check=False,
    )


def assert_one_line_exit_2(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.com"])
def test_a_non_loopback_bind_without_a_token_exits_2(host: str) -> None:
    result = qworker("--redis-url", "redis://127.0.0.1:1/0", "web", "--host", host, "--port", "0")
    assert_one_line_exit_2(result, "without a token")


def test_a_short_token_is_refused(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("alice:short\n")
    result = qworker("web", "--host", "0.0.0.0", "--token-file", str(tokens))
    assert_one_line_exit_2(result, "at least 16 characters")


def test_a_missing_token_file_is_refused(tmp_path: Path) -> None:
    result = qworker("web", "--token-file", str(tmp_path / "absent"))
    assert_one_line_exit_2(result, "cannot read the token file")


def test_a_short_or_missing_secret_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x" * 31 + "\n")
    result = qworker("web", "--secret-file", str(secret))
    assert_one_line_exit_2(result, "must be at least 32 characters")
    result = qworker("web", "--secret-file", str(tmp_path / "absent"))
    assert_one_line_exit_2(result, "cannot read the secret file")


def test_a_token_file_that_is_not_text_is_refused(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_bytes(b"\xff\xfe:" + b"z" * 20 + b"\n")
    result = qworker("web", "--token-file", str(tokens))
    assert_one_line_exit_2(result, "is not UTF-8 text")


def test_without_redis_every_page_is_a_503_naming_the_reason(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        down = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
    server = start_web(down, "nowhere", tmp_path)
    try:
        for path in ("/", "/queues", "/dlq", "/schedules", "/workers", "/audit"):
            status, body, _ = http(f"{server.url}{path}?format=json")
            assert status == 503, (path, status, body)
            assert "cannot reach Redis" in json.loads(body)["error"], path
    finally:
        stop_web(server)
    assert "Traceback" not in server.log()


def test_without_the_extra_it_says_how_to_install_it() -> None:
    # The extra is installed here: hide it, as on a machine without it.
    code = (
        "import sys\n"
        "for name in ('starlette', 'jinja2', 'uvicorn', 'multipart'): sys.modules[name] = None\n"
        "from qworker.cli import main\n"
        "sys.argv = ['qworker', 'web']\n"
        "main()\n"
    )
    result = qworker(code=code)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: the web UI needs its extra: pip install 'qworker-redis[web]' "
        "(missing: starlette, jinja2, uvicorn, multipart)"
    )


@pytest.mark.parametrize(
    "module",
    ["qworker", "qworker.worker", "qworker.cli", "qworker.cli.commands", "qworker.cli.work"],
)
def test_the_core_and_the_cli_import_no_web_stack(module: str) -> None:
    code = (
        f"import json, sys, {module}\n"
        f"print(json.dumps(sorted(n for n in sys.modules if n.split('.')[0] in {WEB_STACK!r})))"
    )
    result = qworker(code=code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_the_server_with_exit_0(
    redis_server: RedisServer, namespace: str, tmp_path: Path, stop: signal.Signals
) -> None:
    server = start_web(redis_server.url, namespace, tmp_path)
    # A live page open meanwhile: its stream ends with the server, not cut off with an error.
    with urllib.request.urlopen(server.url + "/events", timeout=30) as stream:
        assert stream.readline().startswith(b"retry:")
        server.process.send_signal(stop)
        assert server.process.wait(timeout=30) == 0, server.log()
    assert "Traceback" not in server.log() and "ERROR" not in server.log()


def test_a_port_in_use_exits_2(redis_server: RedisServer, namespace: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = qworker("--redis-url", redis_server.url, "web", "--port", str(port))
    assert_one_line_exit_2(result, "already in use")


def test_the_help_names_the_schedules_page_and_trigger() -> None:
    result = qworker("web", "--help", code=None)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "rate limits, schedules, audit" in text and "resume and trigger" in text
