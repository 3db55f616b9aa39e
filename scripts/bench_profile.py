"""``scripts/bench --profile``: where a worker's time goes per job, by py-spy.

A real ``qworker work --burst`` process drains the no-op jobs under ``py-spy record --format
speedscope`` (py-spy is not a qworker dependency: ``.venv/bin/pip install py-spy``). The summary
keeps only the samples taken inside the event loop, so interpreter start-up and imports are left
out, and splits them by what the leaf frame belongs to (logging, asyncio, redis-py, pydantic,
qworker) and by the qworker functions that include the most time.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import bench_measure as m

LOOP_FRAME = "BaseEventLoop.run_forever"
GROUPS = (
    ("logging", re.compile(r"/logging/|qworker/logs\.py")),
    ("redis-py and hiredis", re.compile(r"site-packages/(redis|hiredis)")),
    ("pydantic", re.compile(r"site-packages/pydantic")),
    ("asyncio and selectors", re.compile(r"/asyncio/|/selectors\.py|/socket\.py")),
    ("qworker", re.compile(r"/qworker/")),
    ("bench job", re.compile(r"bench_jobs\.py")),
)
# Functions whose inclusive time answers "where does the time go per job".
WATCH = (
    "Worker._log_outcome",
    "ScriptRunner.run_each",
    "ScriptRunner._pipeline",
    "Pipeline.execute",
    "Pipeline._execute_pipeline",
    "AbstractConnection.pack_commands",
    "Pipeline.parse_response",
    "Worker._start",
    "Worker._run_job",
    "Worker._decode",
    "BaseModel.model_validate_json",
    "JobFactory.create_job",
    "Worker._gate_and_execute",
    "timeout",
    "Timeout.__aenter__",
    "Timeout.__aexit__",
    "NoopJob.execute",
    "Worker._complete",
    "QueueScripts.complete",
    "QueueScripts.claim",
    "_parse_claimed",
    "Worker._wait_for_a_free_slot",
    "Maintainer.maintain_if_due",
    "_ensure_future",
    "BaseEventLoop.create_task",
)


def profile(env: m.Env, jobs: int, concurrency: int, out: Path, rate_hz: int) -> dict[str, Any]:
    """Drain ``jobs`` no-op jobs with one worker under py-spy; returns the summary."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise m.BenchError("py-spy is not installed: .venv/bin/pip install py-spy")
    m.fill(env, jobs)
    args = [
        py_spy, "record", "--format", "speedscope", "--rate", str(rate_hz), "--output", str(out),
        "--", *env.qworker, "work", "--burst", "-c", str(concurrency), "--import", "bench_jobs",
    ]  # fmt: skip
    t0 = time.perf_counter()
    with open(env.workdir / "worker-profile.log", "wb") as log:
        done = subprocess.run(args, cwd=env.workdir, env=env.child_env(), stdout=log, stderr=log)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise m.BenchError(f"py-spy exited {done.returncode}; see {env.workdir}/worker-profile.log")
    with env.sync_client() as client:
        m.check_drained(client, env.keys, jobs)
    return {"jobs": jobs, "concurrency": concurrency, "wall_s": seconds, **summarize(out)}


def summarize(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    names = [frame["name"] for frame in frames]
    groups = [_group(frame.get("file") or "") for frame in frames]
    by_group: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    loop_samples = 0
    for thread in data["profiles"]:
        for stack in thread["samples"]:
            if not stack or not any(names[i] == LOOP_FRAME for i in stack):
                continue
            loop_samples += 1
            by_group[groups[stack[-1]]] += 1
            leaf[f"{names[stack[-1]]} [{groups[stack[-1]]}]"] += 1
            for name in {names[i] for i in stack}:
                inclusive[name] += 1

    def pct(counter: Counter[str], limit: int | None = None) -> dict[str, float]:
        total = max(loop_samples, 1)
        return {k: round(100 * v / total, 1) for k, v in counter.most_common(limit)}

    return {
        "speedscope": str(path),
        "loop_samples": loop_samples,
        "self_pct_by_group": pct(by_group),
        "self_pct_top_functions": pct(leaf, 25),
        "inclusive_pct": {k: v for k, v in pct(inclusive).items() if k in WATCH},
    }


def _group(file: str) -> str:
    for name, pattern in GROUPS:
        if pattern.search(file):
            return name
    return "other"


def render(summary: dict[str, Any], cpu_us_per_job: float | None) -> str:
    def us(pct: float) -> str:
        return f" ≈ {pct * cpu_us_per_job / 100:.0f} µs/job" if cpu_us_per_job else ""

    lines = [
        f"py-spy: {summary['jobs']:,} no-op jobs at -c {summary['concurrency']}, "
        f"{summary['loop_samples']:,} samples in the event loop; {summary['speedscope']}",
        "",
        "self time by what the leaf frame belongs to:",
    ]
    lines += [f"  {v:5.1f}%{us(v)}  {k}" for k, v in summary["self_pct_by_group"].items()]
    lines += ["", "top functions by self time:"]
    lines += [f"  {v:5.1f}%  {k}" for k, v in summary["self_pct_top_functions"].items()]
    lines += ["", "inclusive time of the steps of a job:"]
    lines += [f"  {v:5.1f}%{us(v)}  {k}" for k, v in summary["inclusive_pct"].items()]
    return "\n".join(lines)
