"""``qworker demo`` runs the whole flow with no Redis server and no X account, and tidies up."""

from __future__ import annotations

import logging

from qworker.jobs.base import JobFactory
from tests.cli.conftest import Cli


def test_demo_drains_the_queue_and_ends_with_the_final_tables(cli: Cli) -> None:
    handlers_before = list(logging.getLogger("qworker").handlers)
    # No --redis-url: the demo never needs one, whatever the environment says.
    result = cli.raw("demo", env={"QWORKER_REDIS_URL": "redis://127.0.0.1:1/0", "COLUMNS": "120"})
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for heading in ("Queues", "Totals", "Rate limits", "Dead letter", "Job log"):
        assert heading in out
    assert "11 posted (dry run), 1 retried first, 1 in the dead-letter queue" in out
    assert "attempt 1 retry" in out and "attempt 2 done" in out
    assert "#always-fail" in out
    assert result.stderr == ""
    assert "demo_tweet" not in JobFactory.known_types()
    assert logging.getLogger("qworker").handlers == handlers_before
