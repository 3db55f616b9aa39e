"""The dashboard and alert rules in deploy/: promtool accepts them, and every qworker metric
they name is one qworker exports."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

from qworker.metrics.queue import QueueSnapshot, RateLimitSnapshot, _up, families
from qworker.metrics.worker import WorkerMetrics
from tests.metrics.prometheus_server import require

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC_NAME = re.compile(r"\bqworker_[a-z_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported_names() -> set[str]:
    """Every series name the worker and the exporter can produce."""
    snapshot = QueueSnapshot(
        now_ms=0, queues={}, oldest_ms={}, counters={"processed": 0, "failed": 0, "dead": 0,
        "canceled": 0, "dead_dropped": 0}, workers_alive=0,
        rate_limits=[RateLimitSnapshot("k", {"day": 1, "hour": 1}, 0)],
    )  # fmt: skip
    worker: Iterable[Metric] = WorkerMetrics(CollectorRegistry()).registry.collect()
    queue = [*families(snapshot), _up(1)]
    names = {"qworker_scrape_duration_seconds"}
    for family in [*worker, *queue]:
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


def test_promtool_accepts_the_rules_and_the_example_config() -> None:
    promtool = require("promtool")
    for args in (
        ["check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
        ["check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
    ):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_dashboard_names_only_exported_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "qworker.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    named = {name for expr in exprs for name in METRIC_NAME.findall(expr)}
    assert named, "the dashboard queries no qworker metric"
    assert named <= exported_names(), named - exported_names()
    # What the issue asks the dashboard to show.
    for wanted in ("qworker_jobs_total", "qworker_job_wait_seconds_bucket",
                   "qworker_job_duration_seconds_bucket", "qworker_queue_jobs",
                   "qworker_queue_oldest_age_seconds", "qworker_rate_limit_used",
                   "qworker_workers_alive"):  # fmt: skip
        assert wanted in named, wanted


def test_the_alert_rules_name_only_exported_metrics() -> None:
    text = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    exprs = [line.split("expr:", 1)[1] for line in text.splitlines() if "expr:" in line]
    named = {name for expr in exprs for name in METRIC_NAME.findall(expr)}
    assert len(exprs) >= 5
    assert named <= exported_names(), named - exported_names()
