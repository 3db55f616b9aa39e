"""A throwaway real Prometheus server for the metrics tests (Debian's ``prometheus``; scripts/test
installs it). A missing binary fails the test: the metrics are only checked by a real one."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest

from tests.redis_server import _free_port

SCRAPE_INTERVAL_S = 1


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(
            f"{binary} not found on PATH: install Debian's prometheus package (scripts/test)"
        )
    return path


class PrometheusServer:
    """Scrapes ``targets`` (job name -> host:port list) every second."""

    def __init__(self, directory: Path, targets: dict[str, list[str]]) -> None:
        self.directory = directory
        self.port = _free_port()
        self.targets = targets
        self.config_path = directory / "prometheus.yml"
        scrape_configs = [
            {"job_name": job, "static_configs": [{"targets": hosts}]}
            for job, hosts in targets.items()
        ]
        config = {
            "global": {
                "scrape_interval": f"{SCRAPE_INTERVAL_S}s",
                "evaluation_interval": f"{SCRAPE_INTERVAL_S}s",
            },
            "scrape_configs": scrape_configs,
        }
        self.config_path.write_text(json.dumps(config))  # JSON is YAML
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        binary = require("prometheus")
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"prometheus not ready in {timeout_s}s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def query(self, expr: str) -> dict[str, float]:
        """An instant query: each series' labels (as ``k=v,...``, without the metric name) to
        its value."""
        params = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=5) as reply:
            body: dict[str, Any] = json.load(reply)
        assert body["status"] == "success", body
        return {
            ",".join(
                f"{k}={v}" for k, v in sorted(row["metric"].items()) if k != "__name__"
            ): float(row["value"][1])
            for row in body["data"]["result"]
        }

    def wait_for(self, expr: str, expected: dict[str, float], timeout_s: float = 30.0) -> None:
        """Until ``expr`` gives ``expected`` (Prometheus scrapes once a second)."""
        deadline = time.monotonic() + timeout_s
        got: dict[str, float] = {}
        while time.monotonic() < deadline:
            got = self.query(expr)
            if got == expected:
                return
            time.sleep(0.25)
        raise AssertionError(f"{expr}: expected {expected}, Prometheus has {got}")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
