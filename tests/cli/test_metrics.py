"""``qworker metrics`` (once), ``metrics serve`` and ``work --metrics-port``: their output and
bad input (a port in use, an unreachable Redis)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.conftest import Cli, enqueue, one_error_line


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def samples(text: str) -> dict[str, float]:
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_prints_the_queue_once(cli: Cli, settings: object) -> None:
    enqueue(settings, {"job_type": "tweet", "content": "hi"}, priority=2)  # type: ignore[arg-type]
    result = cli("metrics")
    assert result.exit_code == 0, result.stderr
    values = samples(result.stdout)
    assert values["qworker_up[]"] == 1
    assert values["qworker_queue_jobs[('queue', 'priority_2')]"] == 1
    assert values["qworker_processed_total[]"] == 0


def test_metrics_with_redis_down_prints_up_0_and_exits_1(cli: Cli) -> None:
    result = cli.raw("--redis-url", "redis://127.0.0.1:1/0", "metrics")
    assert result.exit_code == 1
    assert samples(result.stdout) == {"qworker_up[]": 0}
    assert "cannot read the queue from Redis" in result.stderr


def test_work_on_a_port_in_use_exits_2_with_one_line(cli: Cli, busy_port: int) -> None:
    result = cli("work", "--burst", "--dry-run", "--metrics-port", str(busy_port))
    one_error_line(result, 2, f"cannot serve metrics on 127.0.0.1:{busy_port}", "in use")


def test_serve_on_a_port_in_use_exits_2_with_one_line(cli: Cli, busy_port: int) -> None:
    result = cli("metrics", "serve", "--port", str(busy_port))
    one_error_line(result, 2, f"cannot serve metrics on 127.0.0.1:{busy_port}", "in use")


def test_metrics_is_listed_in_help(cli: Cli) -> None:
    result = cli.raw("--help")
    assert "metrics" in result.stdout
