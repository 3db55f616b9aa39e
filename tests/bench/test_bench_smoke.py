"""``scripts/bench`` end to end on tiny numbers: every figure is produced and rendered.

Only that the machinery works (its own redis-server and 3-master Redis Cluster, real ``qworker
work`` processes, MONITOR, JSON and the table); no figure is judged, so nothing here depends on
the machine's speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "scripts" / "bench.py"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--json"],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def _median(figure: dict[str, Any]) -> float:
    assert figure["min"] <= figure["median"] <= figure["max"]
    return float(figure["median"])


def test_every_figure_is_there(report: dict[str, Any]) -> None:
    results = report["results"]
    assert set(results) == {
        "enqueue_single",
        "enqueue_bulk",
        "drain_c1",
        "drain",
        "drain_metrics",
        "scale",
        "scale_cluster",
        "latency",
        "commands_per_job",
        "cold_start",
    }
    for name in ("enqueue_single", "enqueue_bulk", "drain_c1", "drain", "drain_metrics"):
        assert _median(results[name]["jobs_per_s"]) > 0
        assert _median(results[name]["redis_commands_per_job"]) > 0
    assert isinstance(results["drain_metrics"]["cost_pct"], float)
    assert set(results["scale"]) == {"1", "2", "4"}
    assert results["scale"]["4"]["workers"] == 4
    cluster = results["scale_cluster"]
    assert (cluster["masters"], cluster["namespace"]) == (3, "{bench}")
    assert set(cluster["workers"]) == {"1", "2", "4"}
    for workers, figure in cluster["workers"].items():
        assert figure["workers"] == int(workers)
        assert figure["jobs"] == report["sizes"]["drain_jobs"]
        assert _median(figure["jobs_per_s"]) > 0
    assert _median(results["drain"]["peak_rss_mb"]) > 1
    assert 0 < _median(results["latency"]["p50_ms"]) <= _median(results["latency"]["p99_ms"])
    for name in ("python_pass", "python_import_redis", "qworker_enqueue_tweet"):
        assert _median(results["cold_start"][name]) > 0


def test_commands_are_split_into_top_level_and_script_inner(report: dict[str, Any]) -> None:
    commands = report["results"]["commands_per_job"]
    single, bulk, drain = commands["enqueue_single"], commands["enqueue_bulk"], commands["drain"]
    # One EVALSHA per add_job; one per batch for add_jobs; the scripts do the rest.
    assert single["top_level"].get("evalsha") == single["jobs"]
    batches = -(-bulk["jobs"] // report["sizes"]["bulk_batch"])
    assert bulk["top_level"].get("evalsha") == batches
    # Each claimed job is read (HGETALL) and written (HSET) inside claim.lua, however few RPOPs.
    assert drain["in_scripts"].get("hgetall", 0) >= drain["jobs"]
    assert drain["in_scripts"].get("hset", 0) >= drain["jobs"]
    assert drain["in_scripts"].get("rpop", 0) >= 1
    for phase in (single, bulk, drain):
        assert 0 < phase["top_level_per_job"] < phase["total_per_job"]


def test_the_table_shows_every_figure(report: dict[str, Any], tmp_path: Path) -> None:
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(report))
    done = subprocess.run(
        [sys.executable, str(BENCH), "--render", str(saved)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for label in (
        "1. enqueue",
        "2. bulk enqueue",
        "3. drain",
        "4. enqueue-to-start",
        "5. worker peak RSS",
        "5. Redis commands per job",
        "6. CLI cold start",
        "7. scale",
        "7b. scale on a 3-master cluster: 1 / 2 / 4 processes",
    ):
        assert label in done.stdout
