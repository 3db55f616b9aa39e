"""A ``qworker web --allow-actions`` in a real browser: the overview goes live, the DLQ requeues,
a running job is canceled, a POST without its CSRF token is refused, and user data stays text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

import tests.jobtypes  # noqa: F401 - registers the probe job type the tests enqueue
from qworker.service import QueueService
from tests.jobtypes import probe
from tests.redis_server import RedisServer
from tests.web.conftest import (
    WebServer,
    eventually,
    http,
    run_burst_worker,
    screenshot,
    start_web,
    start_worker,
    stop_web,
    stop_worker,
    wait_until,
)

XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


@pytest.fixture(scope="module")
def server(redis_server: RedisServer, module_namespace: str, web_logs: Path) -> Iterator[WebServer]:
    web = start_web(redis_server.url, module_namespace, web_logs, "--allow-actions")
    web.extra["logs"] = web_logs
    yield web
    stop_web(web)


def enqueue(server: WebServer, tmp_path: Path, priority: int = 4, **params: object) -> str:
    data = probe(tmp_path / "probe.log", **params)

    async def add(service: QueueService) -> str:
        return await service.add_job(data, priority)

    return server.service(add)


def state_of(server: WebServer, job_id: str) -> str | None:
    async def read(service: QueueService) -> str | None:
        record = await service.get_job(job_id)
        return None if record is None else record.state

    return server.service(read)


def make_dead(server: WebServer, tmp_path: Path, count: int, tag: str = "") -> list[str]:
    ids = [enqueue(server, tmp_path, 1, outcome="permanent", tag=tag) for _ in range(count)]
    run_burst_worker(server.redis_url, server.namespace, server.extra["logs"])
    for job_id in ids:
        assert state_of(server, job_id) == "dead"
    return ids


def text_of(browser: WebDriver, element_id: str) -> str:
    return str(browser.find_element(By.ID, element_id).text)


def test_the_overview_updates_by_itself_when_jobs_are_enqueued(
    server: WebServer, browser: WebDriver, tmp_path: Path, artifacts: Path
) -> None:
    browser.get(server.url + "/")
    wait_until(browser, lambda b: text_of(b, "live-status") == "live", "the live stream")
    shown = wait_until(browser, lambda b: text_of(b, "stat-queued"), "the queued count")
    before = int(shown.replace(",", ""))
    browser.execute_script("window.__not_reloaded = true")
    for _ in range(3):
        enqueue(server, tmp_path)
    wait_until(
        browser,
        lambda b: int(text_of(b, "stat-queued").replace(",", "")) == before + 3,
        "the queued count to rise by 3 without a reload",
    )
    assert browser.execute_script("return window.__not_reloaded") is True
    screenshot(browser, artifacts, "overview")


def test_user_data_is_shown_as_text(
    server: WebServer, browser: WebDriver, tmp_path: Path, artifacts: Path
) -> None:
    job_id = enqueue(server, tmp_path, tag=XSS)
    browser.get(f"{server.url}/jobs/{job_id}")
    params = text_of(browser, "params")
    assert XSS in json.loads(params)["tag"]
    assert browser.execute_script("return window.__xss") is None
    assert not browser.find_elements(By.CSS_SELECTOR, "main img")
    screenshot(browser, artifacts, "job")


def test_requeue_from_the_dlq_moves_the_job(
    server: WebServer, browser: WebDriver, tmp_path: Path, artifacts: Path
) -> None:
    chosen, other = make_dead(server, tmp_path, 2, tag=XSS)
    browser.get(server.url + "/dlq")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-job-id="{chosen}"]')
    # The parameters are shown cut short, and whole in their title (an attribute: escaped too).
    assert (
        XSS in json.loads(row.find_element(By.CLASS_NAME, "params").get_attribute("title"))["tag"]
    )
    assert not browser.find_elements(By.CSS_SELECTOR, "main img")
    assert browser.execute_script("return window.__xss") is None
    screenshot(browser, artifacts, "dlq")
    row.find_element(By.CLASS_NAME, "requeue-one").click()
    wait_until(browser, lambda b: "requeued 1" in text_of(b, "flash"), "the requeue to be done")
    assert state_of(server, chosen) == "queued"
    assert state_of(server, other) == "dead"
    browser.get(server.url + "/audit")
    entry = browser.find_element(By.CSS_SELECTOR, "tr.entry")
    assert "dlq.requeue" in entry.text and chosen in entry.text and "local" in entry.text
    screenshot(browser, artifacts, "audit")


def test_requeue_selected_and_delete_selected(
    server: WebServer, browser: WebDriver, tmp_path: Path
) -> None:
    first, second, third = make_dead(server, tmp_path, 3)
    browser.get(server.url + "/dlq")
    for job_id in (first, second):
        browser.find_element(By.CSS_SELECTOR, f'input[name="ids"][value="{job_id}"]').click()
    browser.find_element(By.ID, "requeue-selected").click()
    wait_until(browser, lambda b: "requeued 2" in text_of(b, "flash"), "two requeued")
    assert state_of(server, first) == state_of(server, second) == "queued"
    browser.find_element(By.CSS_SELECTOR, f'input[name="ids"][value="{third}"]').click()
    browser.find_element(By.ID, "delete-selected").click()
    browser.switch_to.alert.accept()
    wait_until(browser, lambda b: "deleted 1" in text_of(b, "flash"), "one deleted")
    assert state_of(server, third) is None


def test_cancel_of_a_running_job(
    server: WebServer, browser: WebDriver, tmp_path: Path, artifacts: Path
) -> None:
    worker = start_worker(server.redis_url, server.namespace, server.extra["logs"])
    try:
        job_id = enqueue(server, tmp_path, 1, sleep_s=300)
        eventually(lambda: state_of(server, job_id) == "running", "the job to run")
        browser.get(server.url + "/queues?state=running")
        row = wait_until(
            browser,
            lambda b: b.find_element(By.CSS_SELECTOR, f'tr[data-job-id="{job_id}"]'),
            "the running job's row",
        )
        screenshot(browser, artifacts, "queues-running")
        row.find_element(By.CSS_SELECTOR, "button.cancel").click()
        wait_until(browser, lambda b: text_of(b, "job-id") == job_id, "the job page")
        eventually(lambda: state_of(server, job_id) == "canceled", "the worker to cancel it")
        browser.refresh()
        assert text_of(browser, "state") == "canceled"
    finally:
        stop_worker(worker)


def test_a_post_without_its_csrf_token_is_refused(
    server: WebServer, browser: WebDriver, tmp_path: Path
) -> None:
    (job_id,) = make_dead(server, tmp_path, 1)
    browser.get(server.url + "/dlq")
    cookie = browser.get_cookie("qworker_session")
    assert cookie is not None
    headers = {"Cookie": f"qworker_session={cookie['value']}"}
    for form in ({"ids": job_id}, {"ids": job_id, "csrf": "forged"}, {"csrf": "é" * 64}):
        status, body, _ = http(server.url + "/dlq/requeue", data=form, headers=headers)
        assert status == 403 and "CSRF" in body
    status, _, _ = http(server.url + "/dlq/requeue", data={"ids": job_id})
    assert status == 403
    assert state_of(server, job_id) == "dead"


def test_pause_and_resume_a_priority(server: WebServer, browser: WebDriver) -> None:
    browser.get(server.url + "/rate-limits")
    Select(browser.find_element(By.NAME, "priority")).select_by_value("3")
    browser.find_element(By.CSS_SELECTOR, "#pause-form button").click()
    table = wait_until(browser, lambda b: b.find_element(By.ID, "pauses"), "the pause listed")
    assert "priority 3" in table.text
    table.find_element(By.TAG_NAME, "button").click()
    wait_until(browser, lambda b: b.find_elements(By.ID, "no-pauses"), "the pause to end")
    browser.get(server.url + "/audit")
    actions = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "tr.entry")]
    assert "queue.resume" in actions[0] and "queue.pause" in actions[1]


def test_every_page_renders_and_is_screenshotted(
    server: WebServer, browser: WebDriver, artifacts: Path
) -> None:
    pages = {
        "queues": "/queues",
        "rate-limits": "/rate-limits",
        "workers": "/workers",
        "schedules": "/schedules",
    }
    for name, path in pages.items():
        browser.get(server.url + path)
        assert browser.find_element(By.TAG_NAME, "h1").text
        assert "Error" not in browser.title
        assert screenshot(browser, artifacts, name).stat().st_size > 0


def test_every_page_has_a_json_twin_paged_with_cursors(server: WebServer, tmp_path: Path) -> None:
    ids = {enqueue(server, tmp_path, 2) for _ in range(5)}
    seen: list[str] = []
    cursor = ""
    while True:
        url = f"{server.url}/queues?state=queued&priority=2&limit=2&format=json&cursor={cursor}"
        status, body, _ = http(url)
        assert status == 200
        page = json.loads(body)["page"]
        assert len(page["jobs"]) <= 2
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"] or ""
        if not cursor:
            break
    assert ids <= set(seen) and len(seen) == len(set(seen))
    status, body, _ = http(server.url + "/?format=json")
    assert status == 200 and json.loads(body)["stats"]["total_jobs"] >= 5
    for path in ("/dlq", "/rate-limits", "/workers", "/audit", "/schedules", f"/jobs/{min(ids)}"):
        status, body, _ = http(f"{server.url}{path}?format=json")
        assert status == 200, (path, body)
        assert isinstance(json.loads(body), dict)
    status, body, _ = http(server.url + "/jobs/no-such-job?format=json")
    assert status == 404 and "no-such-job" in json.loads(body)["error"]


def test_the_dlq_filters_by_job_type_and_error_text(server: WebServer, tmp_path: Path) -> None:
    made = set(make_dead(server, tmp_path, 3))

    def dead_ids(query: str) -> tuple[list[str], str | None]:
        status, body, _ = http(f"{server.url}/dlq?format=json&{query}")
        assert status == 200, body
        data = json.loads(body)
        return [job["id"] for job in data["jobs"]], data["next_cursor"]

    assert made <= set(dead_ids("q=NEVER+works&limit=1000")[0])
    assert dead_ids("q=no+such+error")[0] == []
    assert dead_ids("job_type=other")[0] == []
    assert made <= set(dead_ids("job_type=probe&limit=1000")[0])
    # Filtered by text, a page at a time: every match once, in the order of the list.
    seen: list[str] = []
    cursor: str | None = ""
    while cursor is not None:
        ids, cursor = dead_ids(f"q=never&limit=1&cursor={cursor}")
        assert len(ids) <= 1
        seen += ids
    assert made <= set(seen) and len(seen) == len(set(seen))
    assert seen == dead_ids("limit=1000")[0]


def test_the_search_box_finds_a_job_by_a_prefix_of_its_id(
    server: WebServer, browser: WebDriver, tmp_path: Path
) -> None:
    job_id = enqueue(server, tmp_path)
    browser.get(server.url + "/queues")
    box = browser.find_element(By.NAME, "id")
    box.send_keys(job_id[:10])
    box.submit()
    wait_until(browser, lambda b: text_of(b, "job-id") == job_id, "the job's page")
    assert text_of(browser, "state") == "queued"
    browser.get(server.url + "/jobs?id=" + "z" * 10)
    assert "no job" in text_of(browser, "error")


def test_next_page_appends_the_rows_in_place(
    server: WebServer, browser: WebDriver, tmp_path: Path
) -> None:
    """htmx (shipped in the package) fetches the next page and appends its rows: the page is
    not reloaded, and paging on reaches every job once."""
    ids = [enqueue(server, tmp_path, 1) for _ in range(5)]
    total = json.loads(http(server.url + "/?format=json")[1])["stats"]["queues"]["jobs_priority_1"]
    browser.get(server.url + "/queues?state=queued&priority=1&limit=2")
    browser.execute_script("window.__not_reloaded = true")

    def rows(b: WebDriver) -> list[str]:
        return [r.get_attribute("data-job-id") for r in b.find_elements(By.CSS_SELECTOR, "tr.job")]

    assert len(rows(browser)) == 2
    while browser.find_elements(By.ID, "next"):
        before = len(rows(browser))
        browser.find_element(By.ID, "next").click()
        wait_until(browser, lambda b, n=before: len(rows(b)) > n, "the next page's rows")
    assert browser.execute_script("return window.__not_reloaded") is True
    shown = rows(browser)
    assert len(shown) == total and len(set(shown)) == total and set(ids) <= set(shown)
