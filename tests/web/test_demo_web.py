"""``qworker demo --web``: the demo keeps going on its embedded Redis and the web UI shows it,
with no Redis server of one's own, until Ctrl-C (exit 0)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.redis_server import _free_port
from tests.web.conftest import REPO_ROOT, base_env, eventually, http, screenshot, wait_until

DEMO_TIMEOUT_S = 90


def overview(url: str) -> dict[str, object] | None:
    try:
        status, body, _ = http(url + "/?format=json")
    except OSError:
        return None
    return json.loads(body) if status == 200 else None


def test_the_demo_serves_the_web_ui_until_ctrl_c(
    browser: WebDriver, artifacts: Path, tmp_path: Path
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**base_env(), "QWORKER_REDIS_URL": "redis://127.0.0.1:1/0"}  # never used
    stderr_path = tmp_path / "demo.err"
    with open(stderr_path, "w") as stderr:
        demo = subprocess.Popen(
            [sys.executable, "-m", "qworker", "demo", "--web", "--web-port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
            cwd=REPO_ROOT,
        )
    try:

        def first_round_settled() -> bool:
            assert demo.poll() is None, stderr_path.read_text()
            data = overview(url)
            if data is None:
                return False
            stats = data["stats"]
            assert isinstance(stats, dict)
            return bool(stats["total_processed"] >= 11 and stats["dead_letter"] >= 1)

        eventually(first_round_settled, "the demo's first round", DEMO_TIMEOUT_S)
        browser.get(url + "/")
        wait_until(browser, lambda b: b.find_element(By.ID, "live-status").text == "live", "live")
        assert browser.find_elements(By.CSS_SELECTOR, "#chart rect"), "the chart shows the round"
        screenshot(browser, artifacts, "demo-overview")
        browser.get(url + "/dlq")
        assert "#always-fail" in browser.find_element(By.ID, "jobs").text
        screenshot(browser, artifacts, "demo-dlq")
        # A recurring job, with its actions (the demo allows them).
        browser.get(url + "/schedules")
        row = browser.find_element(By.CSS_SELECTOR, 'tr.schedule[data-name="demo-status"]')
        assert "every 30s" in row.text and row.find_elements(By.CLASS_NAME, "trigger")
        screenshot(browser, artifacts, "demo-schedules")
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=30) == 0, stderr_path.read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    err = stderr_path.read_text()
    assert "web UI on " + url in err and "Traceback" not in err


def test_the_plain_demo_does_not_blame_an_acl_for_its_embedded_redis() -> None:
    """The embedded Redis answers no INFO: the final view leaves the memory table out rather
    than say "this Redis user may not run INFO"."""
    env = {**base_env(), "QWORKER_REDIS_URL": "redis://127.0.0.1:1/0", "COLUMNS": "120"}
    result = subprocess.run(
        [sys.executable, "-m", "qworker", "demo"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Totals" in result.stdout and "Workers" in result.stdout
    assert "INFO" not in result.stdout and "Redis memory" not in result.stdout
