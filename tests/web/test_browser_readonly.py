"""A ``qworker web`` without ``--allow-actions``: it shows everything, offers no action, and
refuses a forged POST (403) before reading the form, so nothing changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

import tests.jobtypes  # noqa: F401 - registers the probe job type
from qworker.models import QueueStats
from qworker.service import QueueService
from tests.jobtypes import probe
from tests.redis_server import RedisServer
from tests.web.conftest import WebServer, http, run_burst_worker, screenshot, start_web, stop_web


@pytest.fixture(scope="module")
def server(redis_server: RedisServer, module_namespace: str, web_logs: Path) -> Iterator[WebServer]:
    web = start_web(redis_server.url, module_namespace, web_logs)
    log_path = str(web_logs / "probe.log")

    async def fill(service: QueueService) -> list[str]:
        dead = [await service.add_job(probe(log_path, outcome="permanent"), 1) for _ in range(2)]
        return dead

    web.extra["dead"] = web.service(fill)
    run_burst_worker(redis_server.url, module_namespace, web_logs)

    async def queue_one(service: QueueService) -> str:
        return await service.add_job(probe(log_path), 3)

    web.extra["queued"] = web.service(queue_one)
    yield web
    stop_web(web)


def stats(server: WebServer) -> QueueStats:
    async def read(service: QueueService) -> QueueStats:
        return await service.get_queue_stats()

    return server.service(read)


def test_a_read_only_server_shows_no_action(
    server: WebServer, browser: WebDriver, artifacts: Path
) -> None:
    dead, queued = server.extra["dead"][0], server.extra["queued"]
    pages = ["/", "/dlq", f"/jobs/{dead}", f"/jobs/{queued}", "/queues", "/rate-limits"]
    for path in pages:
        browser.get(server.url + path)
        assert browser.find_element(By.ID, "read-only").is_displayed()
        assert not browser.find_elements(By.CSS_SELECTOR, 'form[method="post"]'), path
        buttons = [b.text for b in browser.find_elements(By.TAG_NAME, "button")]
        # Only the GET forms' buttons: the search box, and the DLQ's filter.
        assert set(buttons) <= {"Find", "Filter"}, (path, buttons)
    browser.get(server.url + "/dlq")
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.job")
    assert {row.get_attribute("data-job-id") for row in rows} == set(server.extra["dead"])
    screenshot(browser, artifacts, "dlq-read-only")


def test_a_forged_post_is_refused_and_changes_nothing(
    server: WebServer, browser: WebDriver
) -> None:
    browser.get(server.url + "/dlq")
    cookie = browser.get_cookie("qworker_session")
    assert cookie is not None
    headers = {"Cookie": f"qworker_session={cookie['value']}"}
    before = stats(server)
    dead, queued = server.extra["dead"][0], server.extra["queued"]
    forged = {
        "/dlq/requeue": {"ids": dead},
        "/dlq/delete": {"ids": dead},
        f"/jobs/{queued}/cancel": {},
        "/queues/pause": {"priority": "1"},
        "/queues/resume": {"priority": "1"},
    }
    for path, form in forged.items():
        status, body, _ = http(server.url + path, data={**form, "csrf": "x"}, headers=headers)
        assert status == 403 and "read-only" in body, (path, status, body)
    after = stats(server)
    assert (after.dead_letter, after.total_jobs, after.pauses) == (
        before.dead_letter,
        before.total_jobs,
        before.pauses,
    )
    assert after.dead_letter == 2


def test_get_never_changes_state(server: WebServer) -> None:
    """The action URLs answer GET with 405 (or 404), never by acting."""
    dead = server.extra["dead"][0]
    for path in ("/dlq/requeue", "/dlq/delete", "/queues/pause", f"/jobs/{dead}/cancel"):
        status, _, _ = http(f"{server.url}{path}?ids={dead}&priority=1")
        assert status in (404, 405), path
    assert stats(server).dead_letter == 2
