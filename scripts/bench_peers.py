"""``scripts/bench --peers``: qworker's producer and idle figures beside Huey's and RQ's, measured
in the same run on the same redis-server, printed as ratios (this machine's absolute speed
drifts by ±30 %, a ratio taken side by side much less).

The peers live in a venv of their own (``.venv-peers``, made by ``scripts/bench --peers``);
each peer figure is a subprocess there (``bench_peer_probe.py``). qworker's and the peers' runs
alternate, and each ratio is the median of the rounds' ratios.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
PEERS_PYTHON = REPO / ".venv-peers" / "bin" / "python"
PROBE = REPO / "scripts" / "bench_peer_probe.py"
# The no-op job of the other figures (bench_jobs.py), as the peers enqueue a no-op function.
JOB = {"job_type": "bench_noop", "n": 1}
IDLE_FLEETS = (1, 10, 50)


def peer_rate(peer: str, url: str, jobs: int) -> float:
    done = subprocess.run(
        [str(PEERS_PYTHON), str(PROBE), peer, url, str(jobs)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return float(done.stdout.strip())


def sync_rate(url: str, jobs: int) -> float:
    from qworker.config import Settings
    from qworker.sync_service import SyncQueueService

    settings = Settings(redis_url=url, namespace="bench-sync", _env_file=None)  # type: ignore[call-arg]
    with SyncQueueService(settings=settings) as service:
        service.add_job(JOB)  # warm: connection, scripts, the eviction check
        started = time.perf_counter()
        for _ in range(jobs):
            service.add_job(JOB)
        rate = jobs / (time.perf_counter() - started)
        service.clear_queue()
    return rate


def async_rate(url: str, jobs: int) -> float:
    from qworker.config import Settings
    from qworker.service import QueueService

    async def run() -> float:
        settings = Settings(redis_url=url, namespace="bench-async", _env_file=None)  # type: ignore[call-arg]
        async with QueueService(settings=settings) as service:
            await service.add_job(JOB)
            started = time.perf_counter()
            for _ in range(jobs):
                await service.add_job(JOB)
            rate = jobs / (time.perf_counter() - started)
            await service.clear_queue()
            return rate

    return asyncio.run(run())


PING = b"*1\r\n$4\r\nPING\r\n"


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 6379


def blocking_ping_rate(url: str, calls: int) -> float:
    """Bare PING round trips a second over a blocking socket, no client library: the floor under
    any one-at-a-time call from a thread."""
    with socket.create_connection(_host_port(url)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.perf_counter()
        for _ in range(calls):
            sock.sendall(PING)
            sock.recv(64)
        return calls / (time.perf_counter() - started)


def asyncio_ping_rate(url: str, calls: int) -> float:
    """The same over asyncio streams: the floor under any awaited one-at-a-time call."""

    async def run() -> float:
        reader, writer = await asyncio.open_connection(*_host_port(url))
        started = time.perf_counter()
        for _ in range(calls):
            writer.write(PING)
            await reader.read(64)
        rate = calls / (time.perf_counter() - started)
        writer.close()
        return rate

    return asyncio.run(run())


def wall_s(args: list[str], env: dict[str, str], times: int) -> float:
    walls = []
    for _ in range(times):
        started = time.perf_counter()
        subprocess.run(args, env=env, check=True, capture_output=True, cwd="/tmp", timeout=60)
        walls.append(time.perf_counter() - started)
    return statistics.median(walls)


def cold_start_ratio(url: str, rounds: int) -> tuple[float, float, float]:
    """(qworker enqueue tweet ms, rq enqueue ms, the median of the rounds' ratios)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWORKER_")}
    env["QWORKER_REDIS_URL"] = url
    qworker = [str(Path(sys.executable).parent / "qworker"), "enqueue", "tweet", "cold start"]
    rq = [str(PEERS_PYTHON.parent / "rq"), "enqueue", "--url", url, "os.getpid"]
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(wall_s(qworker, env, 5))
        theirs.append(wall_s(rq, env, 5))
    ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
    return statistics.median(ours) * 1000, statistics.median(theirs) * 1000, ratio


def idle_commands(url: str, workers: int, window_s: float) -> float:
    """Commands a second per idle worker, counting those inside scripts."""
    sys.path.insert(0, str(REPO))
    from tests.speed.test_idle_cost import idle_fleet

    per_worker, _calls, _runs = asyncio.run(idle_fleet(url, workers, window_s))
    return per_worker


def rounds_of(measure: Callable[[], float], peer: Callable[[], float], rounds: int) -> list[float]:
    """Ratios of alternating runs: ours / the peer's."""
    ratios = []
    for _ in range(rounds):
        ours = measure()
        theirs = peer()
        ratios.append(ours / theirs)
    return ratios


def run(url: str, *, quick: bool) -> dict[str, Any]:
    import bench_jobs  # noqa: F401  (registers the no-op job type)

    jobs = 2_000 if quick else 10_000
    rounds = 3 if quick else 5
    huey: list[float] = []
    sync: list[float] = []
    asyn: list[float] = []
    floor_blocking: list[float] = []
    floor_asyncio: list[float] = []
    for _ in range(rounds):  # interleaved: huey, sync, async, the floors, huey, ...
        huey.append(peer_rate("huey", url, jobs))
        sync.append(sync_rate(url, jobs))
        asyn.append(async_rate(url, jobs))
        floor_blocking.append(blocking_ping_rate(url, jobs))
        floor_asyncio.append(asyncio_ping_rate(url, jobs))
    rq = peer_rate("rq", url, jobs)
    cold = cold_start_ratio(url, 2 if quick else 3)
    window_s = 12.0 if quick else 24.0
    idle = {n: idle_commands(url, n, window_s) for n in IDLE_FLEETS}
    return {
        "jobs": jobs,
        "rounds": rounds,
        "huey_per_s": statistics.median(huey),
        "rq_per_s": rq,
        "sync_per_s": statistics.median(sync),
        "async_per_s": statistics.median(asyn),
        "sync_vs_huey": statistics.median(s / h for s, h in zip(sync, huey, strict=True)),
        "async_vs_huey": statistics.median(a / h for a, h in zip(asyn, huey, strict=True)),
        "floor_blocking_per_s": statistics.median(floor_blocking),
        "floor_asyncio_per_s": statistics.median(floor_asyncio),
        "floor_blocking_vs_huey": statistics.median(
            f / h for f, h in zip(floor_blocking, huey, strict=True)
        ),
        "floor_asyncio_vs_huey": statistics.median(
            f / h for f, h in zip(floor_asyncio, huey, strict=True)
        ),
        "cold_ms": cold[0],
        "rq_cold_ms": cold[1],
        "cold_vs_rq": cold[2],
        "idle_per_worker_s": idle,
    }


def render(figures: dict[str, Any]) -> str:
    f = figures
    rows = [
        ("figure", "qworker", "peer, same run", "ratio", "target"),
        (
            "async `add_job`, one at a time",
            f"{f['async_per_s']:,.0f} jobs/s",
            f"{f['huey_per_s']:,.0f} jobs/s (Huey); RQ {f['rq_per_s']:,.0f}",
            f"{f['async_vs_huey']:.2f}x Huey",
            "≥ 1.0x Huey",
        ),
        (
            "`SyncQueueService.add_job`, one at a time",
            f"{f['sync_per_s']:,.0f} jobs/s",
            f"{f['huey_per_s']:,.0f} jobs/s (Huey)",
            f"{f['sync_vs_huey']:.2f}x Huey",
            "≥ 1.3x Huey",
        ),
        (
            "floor: a bare `PING` round trip, blocking socket / asyncio streams",
            f"{f['floor_blocking_per_s']:,.0f} / {f['floor_asyncio_per_s']:,.0f} a second",
            f"{f['huey_per_s']:,.0f} jobs/s (Huey)",
            f"{f['floor_blocking_vs_huey']:.2f}x / {f['floor_asyncio_vs_huey']:.2f}x Huey",
            "(no enqueue can pass it)",
        ),
        (
            "`qworker enqueue tweet`, fresh process (median of 5)",
            f"{f['cold_ms']:.0f} ms",
            f"{f['rq_cold_ms']:.0f} ms (`rq enqueue`)",
            f"{f['cold_vs_rq']:.2f}x rq",
            "≤ 1.0x rq",
        ),
    ]
    for workers, rate in f["idle_per_worker_s"].items():
        rows.append(
            (
                f"idle worker, Redis commands/s incl. scripts ({workers} idle)",
                f"{rate:.2f} per worker",
                "",
                f"{rate * workers:.1f} for the fleet",
                "≤ 5 per worker",
            )
        )
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    note = (
        f"\n\n{f['jobs']:,} no-op jobs (or PINGs) per run, {f['rounds']} rounds alternating Huey, "
        "sync, async and the floors; ratios are medians of the rounds' ratios."
    )
    return "\n".join(lines) + note


def main(url: str, *, quick: bool) -> str:
    if not PEERS_PYTHON.exists():
        raise SystemExit("scripts/bench --peers: no .venv-peers (run through scripts/bench)")
    return render(run(url, quick=quick))
