"""The machine a ``scripts/bench`` report was taken on: CPUs, versions, load and CPU steal."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def machine() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "redis": next((w.removeprefix("v=") for w in redis_version if w.startswith("v=")), "?"),
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "load_avg_1m_at_start": os.getloadavg()[0],
        "redis_parser": "hiredis" if has_hiredis() else "python",
    }


def cpu_ticks() -> list[int]:
    """user nice system idle iowait irq softirq steal, summed over CPUs (Linux)."""
    try:
        with open("/proc/stat") as stat:
            return [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return []


def steal_pct(before: list[int], after: list[int]) -> float | None:
    """Share of CPU time the hypervisor gave to other guests while the bench ran."""
    if len(before) < 8 or len(after) < 8:
        return None
    deltas = [b - a for a, b in zip(before, after, strict=True)]
    return 100 * deltas[7] / max(sum(deltas), 1)


def has_hiredis() -> bool:
    from redis.utils import HIREDIS_AVAILABLE

    return bool(HIREDIS_AVAILABLE)
