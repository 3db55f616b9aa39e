"""``scripts/bench --peers`` renders every target row from its figures (no figure is judged:
the figures themselves come from real runs, which the smoke test of scripts/bench covers)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import bench_peers

FIGURES = {
    "jobs": 100,
    "rounds": 1,
    "huey_per_s": 10_000.0,
    "rq_per_s": 3_000.0,
    "sync_per_s": 9_000.0,
    "async_per_s": 5_000.0,
    "sync_vs_huey": 0.9,
    "async_vs_huey": 0.5,
    "floor_blocking_per_s": 20_000.0,
    "floor_asyncio_per_s": 12_000.0,
    "floor_blocking_vs_huey": 2.0,
    "floor_asyncio_vs_huey": 1.2,
    "cold_ms": 300.0,
    "rq_cold_ms": 200.0,
    "cold_vs_rq": 1.5,
    "idle_per_worker_s": {1: 4.0, 10: 2.0, 50: 2.0},
}


def test_the_table_has_a_row_per_target_and_a_note_after_a_blank_line() -> None:
    table = bench_peers.render(FIGURES)
    lines = table.splitlines()
    rows = [line for line in lines if line.startswith("| ")]
    assert len(rows) == 1 + 4 + 3  # header, three producer rows and the floor, three idle fleets
    assert "0.50x Huey" in table and "0.90x Huey" in table and "1.50x rq" in table
    assert "2.00x / 1.20x Huey" in table and "20,000 / 12,000 a second" in table
    assert "2.00 per worker" in table and "100.0 for the fleet" in table
    assert lines[-2] == "" and lines[-1].startswith("100 no-op jobs")


def test_the_floors_are_real_round_trips(redis_url: str) -> None:
    """The floor rows measure bare PINGs on a real redis-server (no rate is judged)."""
    assert bench_peers.blocking_ping_rate(redis_url, 50) > 0
    assert bench_peers.asyncio_ping_rate(redis_url, 50) > 0
