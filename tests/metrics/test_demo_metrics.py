"""``qworker demo --metrics-port``: a newcomer scrapes the demo's worker and queue metrics with no
Redis of their own, until Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from tests.redis_server import _free_port

DEMO_TIMEOUT_S = 90


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


def value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert match, f"{series} not in the scrape"
    return float(match[1])


def test_the_demo_serves_its_metrics_until_ctrl_c() -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWORKER_")}
    demo = subprocess.Popen(
        [sys.executable, "-m", "qworker", "demo", "--metrics-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "COLUMNS": "100"},
    )
    assert demo.stderr is not None
    stderr_lines: list[str] = []
    reader = threading.Thread(target=lambda: stderr_lines.extend(demo.stderr or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + DEMO_TIMEOUT_S
        text = ""
        # The demo posts 11 tweets, retries one and buries one, then keeps serving.
        while time.monotonic() < deadline:
            try:
                text = scrape(port)
            except OSError:
                text = ""
            if "qworker_dead_total 1.0" in text and "qworker_processed_total 11.0" in text:
                break
            assert demo.poll() is None, stderr_lines
            time.sleep(0.2)
        done = 'qworker_jobs_total{job_type="demo_tweet",outcome="done"}'
        assert value(text, done) == 11
        assert value(text, "qworker_processed_total") == 11
        assert value(text, "qworker_dead_total") == 1
        assert value(text, "qworker_up") == 1
        # Ctrl-C once the demo is over and only the metrics are served (it says so on stderr).
        while not any("Ctrl-C stops" in line for line in stderr_lines):
            assert time.monotonic() < deadline and demo.poll() is None, stderr_lines
            time.sleep(0.1)
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=15)
        reader.join(timeout=5)
        err = "".join(stderr_lines)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        reader.join(timeout=5)
        demo.stderr.close()
    assert demo.returncode == 0, err
    assert "Traceback" not in err
