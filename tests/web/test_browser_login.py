"""``qworker web --token-file``: every page needs a login; the login form sets an HttpOnly,
SameSite=Strict cookie; actions are recorded as the token's label; scripts may send the token
as a bearer header for the JSON twins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from tests.redis_server import RedisServer
from tests.web.conftest import WebServer, http, screenshot, start_web, stop_web, wait_until

TOKEN = "alice-secret-token-0123456789"


@pytest.fixture(scope="module")
def server(
    redis_server: RedisServer,
    module_namespace: str,
    web_logs: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WebServer]:
    token_file = tmp_path_factory.mktemp("tokens") / "tokens"
    token_file.write_text(f"# who: token\nalice:{TOKEN}\nbob:bob-secret-token-0123456789\n")
    web = start_web(
        redis_server.url,
        module_namespace,
        web_logs,
        "--allow-actions",
        "--token-file",
        str(token_file),
    )
    yield web
    stop_web(web)


def test_pages_need_a_login(server: WebServer) -> None:
    for path in ("/", "/dlq", "/audit", "/jobs/x"):
        status, _, headers = http(server.url + path)
        assert status == 303 and headers["location"].endswith("/login"), path
    status, body, _ = http(server.url + "/?format=json")
    assert status == 401 and "log in" in json.loads(body)["error"]
    status, _, _ = http(server.url + "/dlq/requeue", data={"ids": "x"})
    assert status == 401


def test_a_bearer_token_reads_the_json_twins(server: WebServer) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    status, body, _ = http(server.url + "/?format=json", headers=headers)
    assert status == 200 and "stats" in json.loads(body)
    status, _, _ = http(server.url + "/?format=json", headers={"Authorization": "Bearer nope"})
    assert status == 401


def test_login_sets_a_strict_http_only_cookie_and_actions_name_the_user(
    server: WebServer, browser: WebDriver, artifacts: Path
) -> None:
    browser.get(server.url + "/")
    wait_until(browser, lambda b: b.current_url.endswith("/login"), "the login form")
    browser.find_element(By.ID, "token").send_keys("wrong-token-0123456789")
    browser.find_element(By.ID, "login").click()
    wait_until(browser, lambda b: "not valid" in b.find_element(By.ID, "error").text, "refusal")
    screenshot(browser, artifacts, "login")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "login").click()
    wait_until(browser, lambda b: b.find_elements(By.ID, "live"), "the overview")
    cookie = browser.get_cookie("qworker_session")
    assert cookie is not None
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie") == ""  # not readable by scripts
    browser.get(server.url + "/rate-limits")
    Select(browser.find_element(By.NAME, "priority")).select_by_value("2")
    browser.find_element(By.CSS_SELECTOR, "#pause-form button").click()
    wait_until(browser, lambda b: b.find_elements(By.ID, "pauses"), "the pause listed")
    browser.get(server.url + "/audit")
    entry = browser.find_element(By.CSS_SELECTOR, "tr.entry").text
    assert "alice" in entry and "queue.pause" in entry and "priority 2" in entry
    browser.find_element(By.XPATH, "//button[text()='Log out']").click()
    wait_until(browser, lambda b: b.current_url.endswith("/login"), "logged out")
    browser.get(server.url + "/audit")
    assert browser.current_url.endswith("/login")
