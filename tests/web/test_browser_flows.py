"""Workflows and schedules in the web UI, in a real browser: a job's page links the jobs it
waits for and those waiting for it (states, and a dead one's reason); a job a schedule fired
names the schedule and its due time (UTC); the overview and the queues page count the waiting
jobs, and the queues page lists them a page at a time with what each waits for. Each page's
``?format=json`` twin carries the same."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

import tests.jobtypes  # noqa: F401 - registers the probe job type
from qworker.flows import chain
from qworker.models import JobRecord
from qworker.schedule_store import ScheduleStore, build_schedule
from qworker.service import QueueService
from qworker.web.formatting import clock_time
from tests.jobtypes import probe
from tests.redis_server import RedisServer
from tests.web.conftest import (
    WebServer,
    http,
    run_burst_worker,
    screenshot,
    start_web,
    stop_web,
    wait_until,
)


@pytest.fixture(scope="module")
def server(redis_server: RedisServer, module_namespace: str, web_logs: Path) -> Iterator[WebServer]:
    web = start_web(redis_server.url, module_namespace, web_logs)
    log_path = str(web_logs / "flows-probe.log")

    async def failing_chain(service: QueueService) -> list[str]:
        return await service.add_flow(
            chain(probe(log_path, outcome="permanent"), probe(log_path, tag="after-dead"))
        )

    # Run first, alone: its first job dies, taking the second with it.
    web.extra["dead_chain"] = web.service(failing_chain)
    run_burst_worker(redis_server.url, module_namespace, web_logs)

    async def fill(service: QueueService) -> None:
        web.extra["chain"] = await service.add_flow(
            chain(probe(log_path, tag="first"), probe(log_path, tag="second"))
        )
        web.extra["long_chain"] = await service.add_flow(
            chain(*(probe(log_path, tag=f"step {n}") for n in range(3)))
        )
        store = ScheduleStore(service)
        await store.upsert(
            build_schedule(service.settings, "hourly-report", probe(log_path), every="1h")
        )
        web.extra["fired"] = await store.trigger("hourly-report")

    web.service(fill)
    yield web
    stop_web(web)


def record(server: WebServer, job_id: str) -> JobRecord:
    async def read(service: QueueService) -> JobRecord | None:
        return await service.get_job(job_id)

    found = server.service(read)
    assert found is not None, job_id
    return found


def row(browser: WebDriver, kind: str, job_id: str) -> WebElement:
    return browser.find_element(By.CSS_SELECTOR, f'#flow tr.{kind}[data-job-id="{job_id}"]')


def page_json(server: WebServer, path: str) -> Any:
    sep = "&" if "?" in path else "?"
    status, body, _ = http(f"{server.url}{path}{sep}format=json")
    assert status == 200, body
    return json.loads(body)


def test_a_chain_of_two_links_each_job_to_the_other(
    server: WebServer, browser: WebDriver, artifacts: Path
) -> None:
    first, second = server.extra["chain"]
    browser.get(f"{server.url}/jobs/{first}")
    dependent = row(browser, "dependent", second)
    assert dependent.find_element(By.CLASS_NAME, "state").text == "waiting"
    assert not browser.find_elements(By.CSS_SELECTOR, "#flow tr.dependency")
    screenshot(browser, artifacts, "job-flow-first")

    dependent.find_element(By.TAG_NAME, "a").click()
    wait_until(browser, lambda b: b.find_element(By.ID, "job-id").text == second, "second's page")
    assert browser.find_element(By.ID, "state").text == "waiting"
    dependency = row(browser, "dependency", first)
    assert dependency.find_element(By.CLASS_NAME, "state").text == "queued"
    assert not browser.find_elements(By.CSS_SELECTOR, "#flow tr.dependent")

    dependency.find_element(By.TAG_NAME, "a").click()
    wait_until(browser, lambda b: b.find_element(By.ID, "job-id").text == first, "first's page")

    twin = page_json(server, f"/jobs/{second}")
    assert [(m["id"], m["state"]) for m in twin["dependencies"]] == [(first, "queued")]
    assert twin["dependents"] == []
    assert set(twin["dependencies"][0]) == {"id", "state", "job_type", "reason"}
    assert [m["id"] for m in page_json(server, f"/jobs/{first}")["dependents"]] == [second]


def test_a_dead_dependency_shows_its_reason(server: WebServer, browser: WebDriver) -> None:
    dead, after = server.extra["dead_chain"]
    browser.get(f"{server.url}/jobs/{after}")
    dependency = row(browser, "dependency", dead)
    assert dependency.find_element(By.CLASS_NAME, "state").text == "dead"
    assert "never works" in dependency.find_element(By.CLASS_NAME, "reason").text
    browser.get(f"{server.url}/jobs/{dead}")
    dependent = row(browser, "dependent", after)
    assert dependent.find_element(By.CLASS_NAME, "state").text == "dead"
    assert dependent.find_element(By.CLASS_NAME, "reason").text == f"dependency {dead} dead"


def test_a_job_fired_by_a_schedule_shows_its_schedule(
    server: WebServer, browser: WebDriver, artifacts: Path
) -> None:
    fired = record(server, server.extra["fired"])
    assert fired.schedule == "hourly-report" and fired.scheduled_for_ms
    browser.get(f"{server.url}/jobs/{fired.id}")
    assert browser.find_element(By.ID, "schedule").text == "hourly-report"
    shown = browser.find_element(By.ID, "scheduled-for").text
    assert shown == clock_time(fired.scheduled_for_ms) and shown.endswith(" UTC")
    assert not browser.find_elements(By.ID, "flow")
    screenshot(browser, artifacts, "job-from-schedule")

    job = page_json(server, f"/jobs/{fired.id}")["job"]
    assert (job["schedule"], job["scheduled_for_ms"]) == ("hourly-report", fired.scheduled_for_ms)
    # A job no schedule fired says nothing of one.
    first = server.extra["chain"][0]
    browser.get(f"{server.url}/jobs/{first}")
    assert not browser.find_elements(By.ID, "schedule")


def test_the_overview_and_the_queues_page_count_the_waiting_jobs(
    server: WebServer, browser: WebDriver
) -> None:
    # The chain's second job and the long chain's last two wait; the dead chain's does not.
    browser.get(server.url + "/")
    wait_until(browser, lambda b: b.find_element(By.ID, "stat-waiting").text == "3", "count")
    assert page_json(server, "/")["stats"]["waiting"] == 3
    browser.get(server.url + "/queues?state=waiting")
    assert browser.find_element(By.ID, "tab-waiting").text == "waiting (3)"
    assert page_json(server, "/queues")["stats"]["waiting"] == 3


def test_the_waiting_list_pages_by_cursor_with_what_each_waits_for(
    server: WebServer, browser: WebDriver, artifacts: Path
) -> None:
    first, second = server.extra["chain"]
    steps = server.extra["long_chain"]
    expected = {second: first, steps[1]: steps[0], steps[2]: steps[1]}
    browser.get(server.url + "/queues?state=waiting&limit=2")
    # htmx appends the next page in place; then there is no next page.
    wait_until(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "tr.job")) == 2, "page 1")
    browser.find_element(By.ID, "next").click()
    wait_until(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "tr.job")) == 3, "page 2")
    assert not browser.find_elements(By.ID, "next")
    for job_row in browser.find_elements(By.CSS_SELECTOR, "tr.job"):
        job_id = job_row.get_attribute("data-job-id")
        assert job_id in expected
        link = job_row.find_element(By.CSS_SELECTOR, "td.waits-for a.dependency")
        assert link.get_attribute("data-job-id") == expected[job_id]
        state = job_row.find_element(By.CSS_SELECTOR, "td.waits-for .dep-state").text
        assert state == ("queued" if expected[job_id] in (first, steps[0]) else "waiting")
    screenshot(browser, artifacts, "queues-waiting")

    seen: dict[str, list[str]] = {}
    cursor = ""
    for _ in range(3):
        twin = page_json(server, f"/queues?state=waiting&limit=2&cursor={cursor}")
        assert len(twin["page"]["jobs"]) <= 2
        for job in twin["page"]["jobs"]:
            waits = twin["waits_for"][job["id"]]
            seen[job["id"]] = [dep["id"] for dep in waits["dependencies"]]
            assert waits["total"] == 1
        cursor = twin["page"]["next_cursor"]
        if cursor is None:
            break
    assert cursor is None
    assert seen == {job_id: [dep] for job_id, dep in expected.items()}
