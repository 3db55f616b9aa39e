"""qworker's benchmark: enqueue, drain, latency, memory, Redis commands, CLI start-up, scale.

Run it as ``scripts/bench`` (``--quick`` for a run of under a minute, ``--json`` for tooling). It
starts its own redis-server (no persistence) on a free port (and, for figure 7b, a 3-master Redis
Cluster), runs every figure three times (the cold start ten) and prints one Markdown table of
medians with their spread to stdout; progress goes to stderr. Worker figures come from real
``qworker work`` processes loading the no-op job types of ``scripts/bench_jobs.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

SCRIPTS_DIR = Path(__file__).resolve().parent
REPO = SCRIPTS_DIR.parent
sys.path[:0] = [str(SCRIPTS_DIR), str(REPO)]

import bench_cluster  # noqa: E402
import bench_measure as m  # noqa: E402
import bench_probes as probes  # noqa: E402
import bench_profile  # noqa: E402
from bench_machine import cpu_ticks, machine, steal_pct  # noqa: E402
from bench_render import render_report  # noqa: E402

# The concurrency `qworker work -c N` is benchmarked at besides 1: where the drain of no-op jobs
# stops gaining on this 2-core machine (see `scripts/bench --sweep`).
RECOMMENDED_CONCURRENCY = 64
NAMESPACE = "bench"
T = TypeVar("T")
SCALE_WORKERS = (1, 2, 4)
SWEEP_CONCURRENCY = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class Sizes:
    runs: int
    enqueue_jobs: int
    bulk_jobs: int
    bulk_batch: int
    drain_jobs: int
    latency_jobs: int
    latency_interval_s: float
    cold_runs: int
    monitor_jobs: int


FULL = Sizes(3, 20_000, 100_000, 1_000, 20_000, 300, 0.010, 10, 2_000)
QUICK = Sizes(3, 2_000, 10_000, 1_000, 2_000, 100, 0.010, 5, 300)
SMOKE = Sizes(1, 50, 200, 50, 100, 10, 0.005, 1, 20)  # for tests/bench: does it all run?
BUSY_LOAD = 0.5  # a 1-minute load average above this makes every figure suspect


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- running the figures --------------------------------------------------------------------


def run_all(env: m.Env, sizes: Sizes, concurrency: int, only: set[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}

    def wanted(name: str) -> bool:
        return not only or name in only

    if wanted("enqueue"):
        with timer("1-2. enqueue"):
            results |= enqueue_figures(env, sizes)
    if wanted("drain") or wanted("scale"):
        with timer("3, 5, 7. drain and scale"):
            results |= drain_figures(env, sizes, concurrency, scale=wanted("scale"))
    if wanted("cluster"):
        with timer("7b. scale on a Redis Cluster"):
            results["scale_cluster"] = cluster_figures(env, sizes, concurrency)
    if wanted("latency"):
        with timer("4. latency"):
            results["latency"] = latency_figures(env, sizes, concurrency)
    if wanted("commands"):
        with timer("5. commands per job (MONITOR pass)"):
            results["commands_per_job"] = command_figures(env, sizes, concurrency)
    if wanted("cold"):
        with timer("6. CLI cold start"):
            results["cold_start"] = cold_start_figures(env, sizes)
    return results


def _per_job(calls: dict[str, int], jobs: int) -> float:
    return sum(calls.values()) / jobs


def enqueue_figures(env: m.Env, sizes: Sizes) -> dict[str, Any]:
    single = repeat(
        sizes.runs, lambda: m.enqueue(env, sizes.enqueue_jobs, None), "enqueue one at a time"
    )
    bulk = repeat(
        sizes.runs, lambda: m.enqueue(env, sizes.bulk_jobs, sizes.bulk_batch), "bulk enqueue"
    )

    def summary(runs: list[m.EnqueueRun], **extra: Any) -> dict[str, Any]:
        return {
            "jobs": runs[0].jobs,
            **extra,
            "jobs_per_s": _spread(r.jobs_per_s for r in runs),
            "client_cpu_us_per_job": _spread(r.client_cpu_s / r.jobs * 1e6 for r in runs),
            "redis_cpu_us_per_job": _spread(r.redis_cpu_s / r.jobs * 1e6 for r in runs),
            "redis_commands_per_job": _spread(_per_job(r.calls, r.jobs) for r in runs),
            "redis_calls_last_run": runs[-1].calls,
        }

    return {
        "enqueue_single": summary(single),
        "enqueue_bulk": summary(bulk, batch=sizes.bulk_batch),
    }


def drain_figures(env: m.Env, sizes: Sizes, concurrency: int, *, scale: bool) -> dict[str, Any]:
    jobs = sizes.drain_jobs

    def runs(workers: int, c: int) -> list[m.DrainRun]:
        label = f"drain, {workers} process(es) at -c {c}"
        return repeat(sizes.runs, lambda: m.drain(env, jobs, workers, c), label)

    # The drain at -c N runs without and with --metrics-port in turns, so both see the same
    # machine: the cost of the worker metrics is the difference.
    label = f"drain, 1 process at -c {concurrency}, without and with --metrics-port"
    pairs = repeat(
        sizes.runs,
        lambda: (
            m.drain(env, jobs, 1, concurrency),
            m.drain(env, jobs, 1, concurrency, metrics=True),
        ),
        label,
    )
    results = {
        "drain_c1": drain_summary(runs(1, 1)),
        "drain": drain_summary([plain for plain, _ in pairs]),
        "drain_metrics": drain_summary([metered for _, metered in pairs]),
    }
    results["drain_metrics"]["cost_pct"] = metrics_cost_pct(pairs)
    if scale:
        results["scale"] = {"1": results["drain"]}
        for workers in SCALE_WORKERS[1:]:
            results["scale"][str(workers)] = drain_summary(runs(workers, concurrency))
    return results


def metrics_cost_pct(pairs: list[tuple[m.DrainRun, m.DrainRun]]) -> float:
    """How much slower the drain is with --metrics-port, in % of the drain without it
    (medians of the runs; negative: within the noise, faster)."""
    plain = statistics.median(p.jobs_per_s for p, _ in pairs)
    metered = statistics.median(w.jobs_per_s for _, w in pairs)
    return (1 - metered / plain) * 100


def drain_summary(runs: list[m.DrainRun]) -> dict[str, Any]:
    first = runs[0]
    return {
        "jobs": first.jobs,
        "workers": first.workers,
        "concurrency": first.concurrency,
        "jobs_per_s": _spread(r.jobs_per_s for r in runs),
        "jobs_per_s_with_startup": _spread(r.jobs / r.wall_s for r in runs),
        "peak_rss_mb": _spread(r.peak_rss_mb for r in runs),
        "worker_cpu_us_per_job": _spread(r.worker_cpu_s / r.jobs * 1e6 for r in runs),
        "redis_cpu_us_per_job": _spread(r.redis_cpu_s / r.jobs * 1e6 for r in runs),
        "redis_commands_per_job": _spread(_per_job(r.calls, r.jobs) for r in runs),
        "redis_calls_last_run": runs[-1].calls,
    }


def cluster_figures(env: m.Env, sizes: Sizes, concurrency: int) -> dict[str, Any]:
    """Figure 7's drains on a cluster the bench starts for them: 1, 2 and 4 processes."""
    with bench_cluster.running_cluster(env) as cluster:
        log(f"  {cluster.masters}-master cluster from {cluster.env.redis_url}")

        def runs(workers: int) -> list[bench_cluster.ClusterDrainRun]:
            label = f"cluster drain, {workers} process(es) at -c {concurrency}"
            drain = bench_cluster.drain
            return repeat(
                sizes.runs, lambda: drain(cluster, sizes.drain_jobs, workers, concurrency), label
            )

        by_workers = {str(workers): runs(workers) for workers in SCALE_WORKERS}
        masters, namespace = cluster.masters, cluster.env.namespace
    return {
        "masters": masters,
        "namespace": namespace,
        "workers": {
            count: {
                "jobs": runs_[0].jobs,
                "workers": runs_[0].workers,
                "concurrency": runs_[0].concurrency,
                "jobs_per_s": _spread(r.jobs_per_s for r in runs_),
                "jobs_per_s_with_startup": _spread(r.jobs / r.wall_s for r in runs_),
                "peak_rss_mb": _spread(r.peak_rss_mb for r in runs_),
            }
            for count, runs_ in by_workers.items()
        },
    }


def latency_figures(env: m.Env, sizes: Sizes, concurrency: int) -> dict[str, Any]:
    runs = repeat(
        sizes.runs,
        lambda: probes.latency(env, sizes.latency_jobs, sizes.latency_interval_s, concurrency),
        "latency",
    )
    steps = max(sizes.latency_jobs // 3, 10)
    chains = repeat(sizes.runs, lambda: probes.chain_latency(env, steps, concurrency), "chain")
    return {
        "jobs": sizes.latency_jobs,
        "interval_ms": sizes.latency_interval_s * 1000,
        "concurrency": concurrency,
        "p50_ms": _spread(r.percentile(50) for r in runs),
        "p99_ms": _spread(r.percentile(99) for r in runs),
        "max_ms": _spread(max(r.latencies_ms) for r in runs),
        # A chain's step-to-step latency (flows.py): each step released by the previous one's
        # completing script, then woken and claimed.
        "chain_steps": steps,
        "chain_p50_ms": _spread(r.percentile(50) for r in chains),
        "chain_p99_ms": _spread(r.percentile(99) for r in chains),
    }


def command_figures(env: m.Env, sizes: Sizes, concurrency: int) -> dict[str, Any]:
    jobs = sizes.monitor_jobs
    phases = probes.monitor_pass(env, jobs, sizes.bulk_batch, concurrency)
    figures: dict[str, Any] = {"jobs": jobs, "concurrency": concurrency}
    for phase, phase_jobs in (
        ("enqueue_single", jobs),
        ("enqueue_bulk", jobs),
        ("drain", 2 * jobs),
    ):
        counts = phases.get(phase, probes.CommandCounts())
        top, lua = sum(counts.top.values()), sum(counts.lua.values())
        figures[phase] = {
            "jobs": phase_jobs,
            "top_level_per_job": top / phase_jobs,
            "total_per_job": (top + lua) / phase_jobs,
            "top_level": dict(counts.top.most_common()),
            "in_scripts": dict(counts.lua.most_common()),
        }
    return figures


def cold_start_figures(env: m.Env, sizes: Sizes) -> dict[str, Any]:
    m.flush(env)
    child_env = env.child_env()
    commands = {
        "python_pass": [env.python, "-c", "pass"],
        "python_import_redis": [env.python, "-c", "import redis"],
        "qworker_enqueue_tweet": [
            *env.qworker,
            "enqueue",
            "tweet",
            "cold start from scripts/bench",
        ],
    }
    figures: dict[str, Any] = {"runs": sizes.cold_runs}
    for name, args in commands.items():
        runs = probes.cold_start(args, child_env, env.workdir, sizes.cold_runs)
        figures[name] = _spread(runs.wall_ms)
        figures[f"{name}_cpu"] = _spread(runs.cpu_ms)
        cpu = figures[f"{name}_cpu"]["median"]
        log(f"  {name}: {figures[name]['median']:.0f} ms (CPU {cpu:.0f} ms)")
    return figures


def sweep(env: m.Env, sizes: Sizes) -> dict[str, Any]:
    """One drain per concurrency, to choose the recommended one."""
    results: dict[str, Any] = {}
    for concurrency in SWEEP_CONCURRENCY:
        run = m.drain(env, sizes.drain_jobs, 1, concurrency)
        results[str(concurrency)] = {
            "jobs_per_s": run.jobs_per_s,
            "peak_rss_mb": run.peak_rss_mb,
            "worker_cpu_us_per_job": run.worker_cpu_s / run.jobs * 1e6,
            "redis_cpu_us_per_job": run.redis_cpu_s / run.jobs * 1e6,
        }
        log(
            f"  -c {concurrency:>3}: {run.jobs_per_s:8,.0f} jobs/s, {run.peak_rss_mb:.1f} MB, "
            f"worker {run.worker_cpu_s / run.jobs * 1e6:.0f} us/job, "
            f"redis {run.redis_cpu_s / run.jobs * 1e6:.0f} us/job"
        )
    return results


def profile(env: m.Env, sizes: Sizes, concurrency: int, out: Path) -> dict[str, Any]:
    """A plain drain for the CPU per job, then the same drain under py-spy."""
    plain = m.drain(env, sizes.drain_jobs, 1, concurrency)
    log(f"  plain drain: {plain.jobs_per_s:,.0f} jobs/s")
    summary = bench_profile.profile(env, sizes.drain_jobs, concurrency, out.resolve(), 500)
    return {
        "jobs_per_s": plain.jobs_per_s,
        "worker_cpu_us_per_job": plain.worker_cpu_s / plain.jobs * 1e6,
        "redis_cpu_us_per_job": plain.redis_cpu_s / plain.jobs * 1e6,
        "redis_evalsha_us_per_job": plain.usec.get("evalsha", 0) / plain.jobs,
        "redis_evalsha_per_job": plain.calls.get("evalsha", 0) / plain.jobs,
        **summary,
    }


def _spread(values: Iterable[float]) -> dict[str, Any]:
    """The median of some runs, the lowest and highest, and half their range in %."""
    runs = list(values)
    median = statistics.median(runs)
    return {
        "median": median,
        "min": min(runs),
        "max": max(runs),
        "spread_pct": (max(runs) - min(runs)) / 2 / median * 100 if median else 0.0,
        "runs": runs,
    }


def repeat(runs: int, measure: Callable[[], T], label: str) -> list[T]:
    results = []
    for i in range(runs):
        results.append(measure())
        log(f"  {label}: run {i + 1}/{runs} done")
    return results


@contextlib.contextmanager
def timer(label: str) -> Iterator[None]:
    t0 = time.perf_counter()
    log(f"{label} ...")
    yield
    log(f"{label}: {time.perf_counter() - t0:.1f}s")


# -- set-up -------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: under a minute")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead")
    parser.add_argument("--runs", type=int, help="runs per figure (default 3)")
    parser.add_argument(
        "-c",
        "--concurrency",
        type=int,
        default=RECOMMENDED_CONCURRENCY,
        help=f"the worker concurrency besides 1 (default {RECOMMENDED_CONCURRENCY})",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated subset: enqueue, drain, latency, commands, cold, scale, cluster",
    )
    parser.add_argument("--sweep", action="store_true", help="only a drain per concurrency")
    parser.add_argument(
        "--profile",
        metavar="SPEEDSCOPE_JSON",
        type=Path,
        help="only profile a drain with py-spy, writing a speedscope file, and summarize it",
    )
    parser.add_argument(
        "--qworker",
        default=str(Path(sys.executable).parent / "qworker"),
        help="the qworker command, e.g. 'python -m qworker' (default: the one beside this Python)",
    )
    parser.add_argument(
        "--render",
        metavar="REPORT_JSON",
        type=Path,
        help="only print the table of a report saved from --json",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="only the producer and idle figures beside Huey and RQ (installed in .venv-peers), "
        "as ratios measured in the same run",
    )
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.render:
        print(render_report(json.loads(args.render.read_text())))
        return 0
    sizes = SMOKE if args.smoke else QUICK if args.quick else FULL
    if args.runs:
        sizes = Sizes(args.runs, *list(vars(sizes).values())[1:])
    for name in [k for k in os.environ if k.startswith("QWORKER_")]:
        del os.environ[name]  # the bench chooses its own settings
    from tests.redis_server import RedisServer

    info = machine()
    if info["load_avg_1m_at_start"] > BUSY_LOAD:
        log(
            f"warning: load average {info['load_avg_1m_at_start']:.1f}: other work on this machine "
            "will lower the figures"
        )
    workdir = Path(tempfile.mkdtemp(prefix="qworker-bench-"))
    started, ticks = time.perf_counter(), cpu_ticks()
    try:
        with RedisServer(workdir / "redis") as server:
            env = m.Env(
                redis_url=server.url,
                namespace=NAMESPACE,
                qworker=tuple(shlex.split(args.qworker)),
                python=sys.executable,
                scripts_dir=SCRIPTS_DIR,
                workdir=workdir,
            )
            log(f"redis-server on {server.url}; scratch {workdir}")
            if args.peers:
                import bench_peers

                print(bench_peers.main(server.url, quick=args.quick))
                return 0
            if args.sweep:
                results = {"sweep": sweep(env, sizes)}
            elif args.profile:
                results = {"profile": profile(env, sizes, args.concurrency, args.profile)}
            else:
                only = {part.strip() for part in args.only.split(",") if part.strip()}
                results = run_all(env, sizes, args.concurrency, only)
    except m.BenchError as exc:
        log(f"scripts/bench: {exc}")
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    info["cpu_steal_pct"] = steal_pct(ticks, cpu_ticks())
    info["load_avg_1m_at_end"] = os.getloadavg()[0]
    report = {
        "command": shlex.join(["scripts/bench", *argv]),
        "machine": info,
        "sizes": vars(sizes),
        "seconds": round(time.perf_counter() - started, 1),
        "results": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    elif args.profile:
        figures = results["profile"]
        print(bench_profile.render(figures, figures["worker_cpu_us_per_job"]))
        print(
            f"\nper job, without py-spy: {figures['jobs_per_s']:,.0f} jobs/s; worker CPU "
            f"{figures['worker_cpu_us_per_job']:.0f} µs; Redis CPU "
            f"{figures['redis_cpu_us_per_job']:.0f} µs (INFO cpu); "
            f"{figures['redis_evalsha_per_job']:.2f} EVALSHA taking "
            f"{figures['redis_evalsha_us_per_job']:.0f} µs (INFO commandstats: the Lua scripts "
            "with the commands they call)"
        )
    elif not args.sweep:
        print(render_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
