"""Importing the worker leaves out the code of features it may never meet: the schedules' (cron,
time zones, the Schedule model) load when a schedule comes due, the tweet job with its first
job, the metrics with ``--metrics-port``.

Checked in a fresh interpreter, since this test session has long imported everything.
"""

from __future__ import annotations

import json

from tests.fresh_python import run_fresh

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
    loaded = set(json.loads(run_fresh(PROBE)))
    assert sorted(loaded & set(LOADED_WHEN_NEEDED)) == []
