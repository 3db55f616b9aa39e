"""The web UI's tests: a real ``qworker web`` process on a real redis-server, driven by a real
headless Chromium (Debian's ``chromium`` and ``chromium-driver``) through Selenium.

One server and one browser per module keep them quick. A missing browser fails the run: a UI
test that skips proves nothing. Screenshots go to ``QWORKER_TEST_ARTIFACTS`` (default: a
temporary directory, named at the end of the run).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from qworker.config import Settings
from qworker.service import QueueService
from tests.redis_server import _free_port

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]
# Generous: two shared cores run this beside other suites.
START_TIMEOUT_S = 60.0
WAIT_S = 30.0


def queue_settings(redis_url: str, namespace: str) -> Settings:
    return Settings(redis_url=redis_url, namespace=namespace, _env_file=None)  # type: ignore[call-arg]


def with_service(
    redis_url: str, namespace: str, action: Callable[[QueueService], Awaitable[T]]
) -> T:
    """Run ``action`` with a fresh service (the tests are synchronous: Selenium blocks)."""

    async def go() -> T:
        async with QueueService(settings=queue_settings(redis_url, namespace)) as service:
            return await action(service)

    return asyncio.run(go())


@dataclass
class WebServer:
    """A running ``qworker web`` and the queue it shows."""

    url: str
    redis_url: str
    namespace: str
    process: subprocess.Popen[str]
    log_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def service(self, action: Callable[[QueueService], Awaitable[T]]) -> T:
        return with_service(self.redis_url, self.namespace, action)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWORKER_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def start_web(redis_url: str, namespace: str, log_dir: Path, *args: str) -> WebServer:
    port = _free_port()
    log_path = log_dir / f"web-{port}.log"
    command = [sys.executable, "-m", "qworker", "--redis-url", redis_url]
    command += ["--namespace", namespace, "web", "--port", str(port), *args]
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, text=True, env=base_env(), cwd=REPO_ROOT
        )
    server = WebServer(f"http://127.0.0.1:{port}", redis_url, namespace, process, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        assert process.poll() is None, f"qworker web exited: {server.log()}"
        try:
            # The login form answers with or without tokens: the server is up.
            if http(server.url + "/login")[0] == 200:
                return server
        except OSError:
            pass
        assert time.monotonic() < deadline, f"qworker web did not answer: {server.log()}"
        time.sleep(0.2)


def stop_web(server: WebServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def http(
    url: str,
    *,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, dict[str, str]]:
    """(status, body, headers) of a GET, or of a form POST when ``data`` is given; no
    redirects are followed."""
    from urllib.parse import urlencode

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    body = urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers or {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=15) as answer:
            return answer.status, answer.read().decode(), dict(answer.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


@pytest.fixture(scope="module")
def module_namespace() -> str:
    return f"w{uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go; kept after the run."""
    given = os.environ.get("QWORKER_TEST_ARTIFACTS")
    path = Path(given) if given else tmp_path_factory.mktemp("web-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def chromium_paths() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    assert browser and driver, (
        "the web UI tests need Chromium and its driver: apt-get install chromium chromium-driver "
        "(scripts/test installs them)"
    )
    return browser, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    binary, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    # A live region is swapped whole when an update arrives: an element found a moment ago may
    # be gone when read, which means "look again", not a failure.
    return WebDriverWait(
        driver, WAIT_S, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException]
    ).until(condition, message=what)


def eventually(condition: Callable[[], T], what: str, timeout_s: float = WAIT_S) -> T:
    """Poll ``condition`` until it returns something truthy (for state in Redis)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def screenshot(driver: WebDriver, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot saved for {name}"
    return path


def start_worker(
    redis_url: str, namespace: str, log_dir: Path, *args: str
) -> subprocess.Popen[str]:
    """A worker process that knows the probe job (``tests.jobtypes``)."""
    command = [sys.executable, "-m", "tests.worker_main", "--redis-url", redis_url]
    command += ["--namespace", namespace, "--import", "tests.jobtypes", *args]
    with open(log_dir / f"worker-{uuid4().hex[:6]}.log", "w") as log:  # the child keeps its copy
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, text=True, env=base_env(), cwd=REPO_ROOT
        )


def stop_worker(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_burst_worker(redis_url: str, namespace: str, log_dir: Path) -> None:
    process = start_worker(redis_url, namespace, log_dir, "--burst")
    assert process.wait(timeout=120) == 0


@pytest.fixture(scope="module")
def web_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web-logs")
