"""The schedules page in a real browser: it lists what ``ScheduleStore`` holds, a trigger
enqueues a job, pause and resume change the schedule, every action is audited; a read-only
server shows no button and refuses a forged POST; the JSON twin pages by cursor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

import tests.jobtypes  # noqa: F401 - registers the probe job type the schedules run
from qworker.cron import local_text, utc_text
from qworker.models import JobRecord
from qworker.schedule_store import ScheduleStore, build_schedule
from qworker.schedules import Schedule
from qworker.service import QueueService
from tests.jobtypes import probe
from tests.redis_server import RedisServer
from tests.web.conftest import WebServer, http, screenshot, start_web, stop_web, wait_until


@pytest.fixture(scope="module")
def server(redis_server: RedisServer, module_namespace: str, web_logs: Path) -> Iterator[WebServer]:
    web = start_web(redis_server.url, module_namespace, web_logs, "--allow-actions")
    yield web
    stop_web(web)


@pytest.fixture(scope="module")
def read_only(
    redis_server: RedisServer, module_namespace: str, web_logs: Path
) -> Iterator[WebServer]:
    web = start_web(redis_server.url, module_namespace, web_logs)
    yield web
    stop_web(web)


XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


def add_schedule(server: WebServer, name: str, **spec: Any) -> None:
    async def add(service: QueueService) -> None:
        data = probe("/nonexistent/probe.log", tag=name)
        schedule = build_schedule(service.settings, name, data, **(spec or {"every": "1h"}))
        await ScheduleStore(service).upsert(schedule)

    server.service(add)


def stored(server: WebServer, name: str) -> Schedule:
    async def read(service: QueueService) -> Schedule:
        return await ScheduleStore(service).get(name)

    return server.service(read)


def job(server: WebServer, job_id: str) -> JobRecord | None:
    async def read(service: QueueService) -> JobRecord | None:
        return await service.get_job(job_id)

    return server.service(read)


def row(browser: WebDriver, name: str) -> Any:
    return browser.find_element(By.CSS_SELECTOR, f'tr.schedule[data-name="{name}"]')


def flash(browser: WebDriver) -> str:
    """The page's message; empty while the next page loads (the old one's is then stale)."""
    try:
        found = browser.find_elements(By.ID, "flash")
        return str(found[0].text) if found else ""
    except StaleElementReferenceException:
        return ""


def audit_actions(browser: WebDriver, server: WebServer) -> list[str]:
    browser.get(server.url + "/audit")
    return [str(r.text) for r in browser.find_elements(By.CSS_SELECTOR, "tr.entry")]


def test_the_page_lists_a_schedule_with_its_zone_and_next_fire(
    server: WebServer, browser: WebDriver, artifacts: Path
) -> None:
    add_schedule(server, "digest.weekly", cron="0 9 * * MON", tz="Europe/Berlin")
    browser.get(server.url + "/schedules")
    shown = row(browser, "digest.weekly")
    cells = [c.text for c in shown.find_elements(By.TAG_NAME, "td")]
    assert cells[:3] == ["digest.weekly", "0 9 * * MON (Europe/Berlin)", "probe"]
    expected = stored(server, "digest.weekly")
    assert expected.next_due_ms is not None
    assert cells[3] == local_text(expected.next_due_ms, "Europe/Berlin")
    assert cells[3].endswith(("CET", "CEST")) and " 09:00 " in cells[3]
    assert cells[4] == utc_text(expected.next_due_ms)
    assert cells[5] == cells[6] == "-" and cells[7] == "no"
    screenshot(browser, artifacts, "schedules")


def test_what_a_schedule_holds_is_shown_as_text(server: WebServer, browser: WebDriver) -> None:
    """Names and specs are validated, but the hash is Redis's: a job type written there by
    hand is still text on the page."""
    add_schedule(server, "escaped")

    async def tamper(service: QueueService) -> None:
        await service.redis.hset(service.keys.schedule("escaped"), "job_type", XSS)

    server.service(tamper)
    browser.get(server.url + "/schedules")
    cells = row(browser, "escaped").find_elements(By.TAG_NAME, "td")
    assert cells[2].text == XSS
    assert browser.execute_script("return window.__xss") is None
    assert not browser.find_elements(By.CSS_SELECTOR, "main img")

    async def remove(service: QueueService) -> None:
        await ScheduleStore(service).remove("escaped")

    server.service(remove)


def test_trigger_enqueues_a_job_and_is_audited(server: WebServer, browser: WebDriver) -> None:
    add_schedule(server, "nightly")
    browser.get(server.url + "/schedules")
    row(browser, "nightly").find_element(By.CLASS_NAME, "trigger").click()
    browser.switch_to.alert.dismiss()  # asked first: a job (a tweet, say) is real
    assert stored(server, "nightly").fired == 0
    row(browser, "nightly").find_element(By.CLASS_NAME, "trigger").click()
    browser.switch_to.alert.accept()
    wait_until(browser, lambda b: "triggered nightly" in flash(b), "the trigger to be done")
    job_id = flash(browser).rsplit("job ", 1)[1].rstrip(".")
    record = job(server, job_id)
    assert record is not None and record.state == "queued" and record.job_type == "probe"
    schedule = stored(server, "nightly")
    assert schedule.last_job_id == job_id and schedule.fired == 1
    # The row now names the job it made, linked to its page.
    link = row(browser, "nightly").find_element(By.CSS_SELECTOR, "td.last-job a")
    assert job_id.startswith(link.text) and str(link.get_attribute("href")).endswith(job_id)
    latest = audit_actions(browser, server)[0]
    assert "schedule.trigger" in latest and "nightly" in latest and job_id in latest


def test_pause_and_resume_change_the_schedule(server: WebServer, browser: WebDriver) -> None:
    add_schedule(server, "hourly:report")
    browser.get(server.url + "/schedules")
    row(browser, "hourly:report").find_element(By.CLASS_NAME, "pause").click()
    wait_until(browser, lambda b: "paused hourly:report" in flash(b), "the pause")
    assert stored(server, "hourly:report").paused
    shown = row(browser, "hourly:report")
    assert shown.find_element(By.CLASS_NAME, "paused").text == "yes"
    assert shown.find_element(By.CLASS_NAME, "next").text == "paused"
    shown.find_element(By.CLASS_NAME, "resume").click()
    wait_until(browser, lambda b: "resumed hourly:report" in flash(b), "the resume")
    schedule = stored(server, "hourly:report")
    assert not schedule.paused and schedule.next_due_ms is not None
    assert row(browser, "hourly:report").find_element(By.CLASS_NAME, "paused").text == "no"
    actions = audit_actions(browser, server)
    assert "schedule.resume" in actions[0] and "schedule.pause" in actions[1]
    assert "hourly:report" in actions[0]


def test_the_json_twin_pages_by_cursor(server: WebServer) -> None:
    names = {f"paged-{i}" for i in range(5)}
    for name in names:
        add_schedule(server, name)
    seen: list[str] = []
    cursor = ""
    while True:
        status, body, _ = http(f"{server.url}/schedules?format=json&limit=2&cursor={cursor}")
        assert status == 200, body
        page = json.loads(body)
        assert len(page["schedules"]) <= 2
        seen += [s["name"] for s in page["schedules"]]
        cursor = page["next_cursor"] or ""
        if not cursor:
            break
    assert names <= set(seen) and len(seen) == len(set(seen)) == page["total"]
    assert seen == sorted(seen)
    first = next(s for s in json.loads(http(f"{server.url}/schedules?format=json")[1])["schedules"])
    assert {"spec", "tz", "next_fire", "next_fire_local", "last_fire", "paused"} <= set(first)


def test_next_page_appends_the_rows_in_place(server: WebServer, browser: WebDriver) -> None:
    for i in range(5):
        add_schedule(server, f"rows-{i}")
    total = json.loads(http(f"{server.url}/schedules?format=json")[1])["total"]
    browser.get(server.url + "/schedules?limit=2")
    browser.execute_script("window.__not_reloaded = true")

    def rows(b: WebDriver) -> list[str]:
        found = b.find_elements(By.CSS_SELECTOR, "tr.schedule")
        return [str(r.get_attribute("data-name")) for r in found]

    assert len(rows(browser)) == 2
    while browser.find_elements(By.ID, "next"):
        before = len(rows(browser))
        browser.find_element(By.ID, "next").click()
        wait_until(browser, lambda b, n=before: len(rows(b)) > n, "the next page's rows")
    assert browser.execute_script("return window.__not_reloaded") is True
    shown = rows(browser)
    assert len(shown) == len(set(shown)) == total and shown == sorted(shown)


def test_bad_input_is_a_short_answer_that_changes_nothing(server: WebServer) -> None:
    status, body, _ = http(f"{server.url}/schedules?format=json&cursor=%3Cb%3E")
    assert status == 400 and "cursor" in json.loads(body)["error"]
    status, body, _ = http(f"{server.url}/schedules?format=json&limit=0")
    assert status == 400 and "limit" in json.loads(body)["error"]
    bearerless = {"Accept": "application/json"}
    status, body, _ = http(
        f"{server.url}/schedules/no-such/trigger?format=json", data={}, headers=bearerless
    )
    assert status == 403  # no CSRF token: refused before the name is looked at


def session_of(server: WebServer, browser: WebDriver) -> tuple[dict[str, str], str]:
    """The browser's session cookie and a CSRF token of its page, for posts by hand."""
    browser.get(server.url + "/schedules")
    csrf = browser.find_element(By.CSS_SELECTOR, 'input[name="csrf"]').get_attribute("value")
    cookie = browser.get_cookie("qworker_session")
    assert cookie is not None and csrf
    return {"Cookie": f"qworker_session={cookie['value']}", "Accept": "application/json"}, csrf


def test_a_pause_that_changes_nothing_says_so(server: WebServer, browser: WebDriver) -> None:
    add_schedule(server, "twice")
    headers, csrf = session_of(server, browser)
    url = f"{server.url}/schedules/twice/pause"
    answers = [json.loads(http(url, data={"csrf": csrf}, headers=headers)[1]) for _ in range(2)]
    assert [a["changed"] for a in answers] == [True, False]
    assert answers[1]["paused"] is True and answers[1]["next_fire"] is None
    status, body, _ = http(f"{server.url}/audit?format=json")
    assert status == 200, body
    details = [e["detail"] for e in json.loads(body)["page"]["entries"][:2]]
    assert details == ["twice (already paused)", "twice"]


def test_an_unknown_schedule_is_a_404(server: WebServer, browser: WebDriver) -> None:
    headers, csrf = session_of(server, browser)
    for verb in ("trigger", "pause", "resume"):
        url = f"{server.url}/schedules/no-such/{verb}"
        status, body, _ = http(url, data={"csrf": str(csrf)}, headers=headers)
        assert status == 404 and "no-such" in json.loads(body)["error"], (verb, body)
    status, body, _ = http(
        f"{server.url}/schedules/%3Cb%3E/pause", data={"csrf": str(csrf)}, headers=headers
    )
    assert status == 400 and "not valid" in json.loads(body)["error"]


def test_a_read_only_server_shows_no_button_and_refuses_a_forged_post(
    read_only: WebServer, browser: WebDriver, artifacts: Path
) -> None:
    add_schedule(read_only, "kept")
    browser.get(read_only.url + "/schedules")
    banner = browser.find_element(By.ID, "read-only")
    assert banner.is_displayed() and "trigger" in banner.text
    assert row(browser, "kept")
    assert not browser.find_elements(By.CSS_SELECTOR, 'form[method="post"]')
    assert {b.text for b in browser.find_elements(By.TAG_NAME, "button")} <= {"Find"}
    screenshot(browser, artifacts, "schedules-read-only")
    cookie = browser.get_cookie("qworker_session")
    assert cookie is not None
    headers = {"Cookie": f"qworker_session={cookie['value']}"}
    before = stored(read_only, "kept")
    for verb in ("trigger", "pause", "resume"):
        url = f"{read_only.url}/schedules/kept/{verb}"
        status, body, _ = http(url, data={"csrf": "x"}, headers=headers)
        assert status == 403 and "read-only" in body, (verb, status, body)
        status, _, _ = http(url)  # a GET never acts either
        assert status in (404, 405), verb
    after = stored(read_only, "kept")
    assert (after.fired, after.paused, after.last_job_id) == (0, False, None)
    assert after.version == before.version
