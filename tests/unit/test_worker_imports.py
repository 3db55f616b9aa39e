"""Importing the worker leaves out the code of features it may never meet: the schedules' (cron,
time zones, the Schedule model) load when a schedule comes due, the tweet job with its first
job, the metrics with ``--metrics-port``.

Checked in a fresh interpreter, since this test session has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LOADED_WHEN_NEEDED = (
    "qworker.schedule_store",
    "qworker.schedules",
    "qworker.cron",
    "cronsim",
    "qworker.jobs.tweet",
    "qworker.metrics",
    "prometheus_client",
)

PROBE = """
import json, sys
import qworker.worker, qworker.cli.work
print(json.dumps(sorted(sys.modules)))
"""


def test_the_worker_imports_no_feature_code_before_it_is_needed() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout))
    assert sorted(loaded & set(LOADED_WHEN_NEEDED)) == []
