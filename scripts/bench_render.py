"""The table of ``scripts/bench``: one Markdown row per figure, beside its target and the peers.

Reads only the report's plain data, so a saved ``--json`` report renders the same
(``scripts/bench --render REPORT_JSON``).
"""

from __future__ import annotations

from typing import Any

TARGETS = {
    "enqueue_single": ("≥ 12,000 jobs/s", "~12,000 (Huey); RQ ~4,000; arq ~2,900"),
    "enqueue_bulk": ("≥ 50,000 jobs/s", "~13,500 (Huey); RQ ~9,000"),
    "drain_c1": ("", ""),
    "drain": ("≥ 10,000 jobs/s, crash-safe", "~4,300 (Huey, not crash-safe); ~2,000 (Dramatiq)"),
    "drain_metrics": ("≤ 5% below row 3", ""),
    "latency": ("≤ 1 / 3 ms", "0.8 / 1.7 ms (Huey); 1.4 / 2.2 ms (SAQ)"),
    "chain": ("≤ 2x row 4's p50", ""),
    "rss": ("≤ 40 MB", "32 MB (arq, SAQ)"),
    "cold_start": ("≤ 150 ms", "195 ms (`rq enqueue`)"),
}


# -- rendering --------------------------------------------------------------------------------


def _fmt(figure: dict[str, Any], unit: str = "", digits: int = 0) -> str:
    value = f"{figure['median']:,.{digits}f}{unit}"
    return f"{value} ±{figure['spread_pct']:.0f}%"


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str]] = []
    target = TARGETS

    def add(key: str, figure: str, value: str, note: str = "") -> None:
        goal, peers = target.get(key, ("", ""))
        rows.append(
            (figure, value, goal, "; ".join(x for x in (note, peers and f"peers: {peers}") if x))
        )

    if "enqueue_single" in results:
        r = results["enqueue_single"]
        add(
            "enqueue_single",
            f"1. enqueue, one `add_job` at a time ({r['jobs']:,} jobs)",
            _fmt(r["jobs_per_s"], " jobs/s"),
            _cpu_note(r, "client"),
        )
        r = results["enqueue_bulk"]
        add(
            "enqueue_bulk",
            f"2. bulk enqueue, `add_jobs` of {r['batch']:,} ({r['jobs']:,} jobs)",
            _fmt(r["jobs_per_s"], " jobs/s"),
            _cpu_note(r, "client"),
        )
    if "drain" in results:
        for key in ("drain_c1", "drain"):
            r = results[key]
            add(
                key,
                f"3. drain, 1 `work --burst` process, -c {r['concurrency']} ({r['jobs']:,} jobs)",
                _fmt(r["jobs_per_s"], " jobs/s"),
                f"{r['jobs_per_s_with_startup']['median']:,.0f} jobs/s with start-up; "
                + _cpu_note(r, "worker"),
            )
        if "drain_metrics" in results:
            r = results["drain_metrics"]
            add(
                "drain_metrics",
                "3b. the same drain with `--metrics-port` (runs taken in turns with row 3)",
                _fmt(r["jobs_per_s"], " jobs/s"),
                f"cost {r['cost_pct']:.1f}% of the drain without metrics; "
                + _cpu_note(r, "worker"),
            )
    if "latency" in results:
        r = results["latency"]
        add(
            "latency",
            f"4. enqueue-to-start, idle worker -c {r['concurrency']} "
            f"({r['jobs']} jobs {r['interval_ms']:.0f} ms apart), p50 / p99",
            f"{r['p50_ms']['median']:.2f} / {r['p99_ms']['median']:.2f} ms "
            f"±{r['p50_ms']['spread_pct']:.0f}% / ±{r['p99_ms']['spread_pct']:.0f}%",
            f"max {r['max_ms']['median']:.1f} ms",
        )
        if "chain_p50_ms" in r:
            ratio = r["chain_p50_ms"]["median"] / max(r["p50_ms"]["median"], 1e-9)
            add(
                "chain",
                f"4b. chain step to step, idle worker -c {r['concurrency']} "
                f"({r['chain_steps']} steps), p50 / p99",
                f"{r['chain_p50_ms']['median']:.2f} / {r['chain_p99_ms']['median']:.2f} ms "
                f"±{r['chain_p50_ms']['spread_pct']:.0f}% "
                f"/ ±{r['chain_p99_ms']['spread_pct']:.0f}%",
                f"{ratio:.2f}x row 4's p50",
            )
    if "drain" in results:
        r = results["drain"]
        add(
            "rss",
            f"5. worker peak RSS, drain at -c {r['concurrency']}",
            _fmt(r["peak_rss_mb"], " MB", 1),
            f"-c 1: {results['drain_c1']['peak_rss_mb']['median']:.1f} MB",
        )
    if "commands_per_job" in results:
        c = results["commands_per_job"]
        for phase, label in (
            ("enqueue_single", "enqueue one at a time"),
            ("enqueue_bulk", "bulk enqueue"),
            ("drain", f"drain at -c {c['concurrency']}"),
        ):
            p = c[phase]
            timed = results.get(phase, {}).get("redis_commands_per_job")
            add(
                "",
                f"5. Redis commands per job, {label}",
                f"{p['top_level_per_job']:.3g} top-level, {p['total_per_job']:.3g} in all",
                "MONITOR pass of "
                f"{p['jobs']:,} jobs; in all = with those the Lua scripts call"
                + (
                    f"; INFO commandstats of the timed runs: {timed['median']:.3g}" if timed else ""
                ),
            )
    if "cold_start" in results:
        r = results["cold_start"]
        add(
            "cold_start",
            f"6. CLI cold start, `qworker enqueue tweet` (median of {r['runs']})",
            _fmt(r["qworker_enqueue_tweet"], " ms"),
            f"CPU {r['qworker_enqueue_tweet_cpu']['median']:.0f} ms; "
            f"`python -c pass` {r['python_pass']['median']:.0f} ms; "
            f'`python -c "import redis"` {r["python_import_redis"]["median"]:.0f} ms',
        )
    if "scale" in results:
        s = results["scale"]
        value = " / ".join(f"{s[w]['jobs_per_s']['median']:,.0f}" for w in s)
        spread = " / ".join(f"±{s[w]['jobs_per_s']['spread_pct']:.0f}%" for w in s)
        add(
            "",
            f"7. scale: drain with {' / '.join(s)} processes at -c {s['1']['concurrency']}",
            f"{value} jobs/s {spread}",
            "one Redis; 1 process = the drain row above",
        )
    if "scale_cluster" in results:
        c = results["scale_cluster"]
        s = c["workers"]
        value = " / ".join(f"{s[w]['jobs_per_s']['median']:,.0f}" for w in s)
        spread = " / ".join(f"±{s[w]['jobs_per_s']['spread_pct']:.0f}%" for w in s)
        add(
            "",
            f"7b. scale on a {c['masters']}-master cluster: {' / '.join(s)} processes "
            f"at -c {s['1']['concurrency']}",
            f"{value} jobs/s {spread}",
            "one namespace = one slot = one master",
        )
    lines = [
        "| figure | qworker (median of runs ±half range) | target | notes |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def render_report(report: dict[str, Any]) -> str:
    info = report["machine"]
    return (
        table(report["results"])
        + f"\n\n`{report['command']}` on {info['cpus']} CPUs, Python {info['python']}, "
        f"Redis {info['redis']} ({info['redis_parser']} parser), qworker {info['commit']}"
        f"{' (modified)' if info['dirty'] else ''}, {info['date']}, load average "
        f"{info['load_avg_1m_at_start']:.2f} at start and {info['load_avg_1m_at_end']:.2f} at end, "
        f"CPU steal {info['cpu_steal_pct'] or 0:.0f}%; took {report['seconds']:.0f} s."
    )


def _cpu_note(r: dict[str, Any], side: str) -> str:
    return (
        f"CPU/job: {side} {r[f'{side}_cpu_us_per_job']['median']:.0f} µs, "
        f"Redis {r['redis_cpu_us_per_job']['median']:.0f} µs"
    )
