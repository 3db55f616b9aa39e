"""``qworker demo``: the whole flow in seconds, with no Redis server and no X account.

An embedded fakeredis, the dry-run tweet client and a tweet job whose retries wait seconds, not
minutes (``qworker/demo.py``); a dozen sample tweets at mixed priorities; a worker running while
a live view shows the queues drain; then the final tables. The worker's log lines are caught
and shown in the view, so nothing scribbles over it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Annotated

import typer

from qworker.cli._common import run
from qworker.cli._errors import CliError

if TYPE_CHECKING:
    from rich.console import RenderableType

    from qworker.cli.stats import Snapshot
    from qworker.demo import DemoEnvironment
    from qworker.metrics.http import MetricsServer
    from qworker.metrics.worker import WorkerMetrics
    from qworker.models import JobRecord

EXAMPLE = "Example: qworker demo   (from a checkout: scripts/demo)"

REFRESH_S = 0.25
RECENT_EVENTS = 8


def demo(
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=1, metavar="SECONDS", help="Give up after this long."),
    ] = 60.0,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            metavar="PORT",
            help="Serve the worker's and the queue's Prometheus metrics on this port, and keep "
            "serving them after the demo until Ctrl-C.",
            show_default=False,
        ),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option("--metrics-host", metavar="ADDRESS", help="Address of --metrics-port."),
    ] = "127.0.0.1",
    web: Annotated[
        bool,
        typer.Option(
            "--web",
            help="Serve the web UI (needs the web extra) and keep the demo going, a new round "
            "of sample tweets every few seconds, until Ctrl-C.",
        ),
    ] = False,
    web_port: Annotated[
        int,
        typer.Option("--web-port", min=0, max=65535, metavar="PORT", help="Port of --web."),
    ] = 8080,
) -> None:
    """Run the whole flow on an embedded Redis with the dry-run tweet client."""
    from qworker import demo as parts

    if web:
        from qworker.cli.demo_web import demo_web

        demo_web(web_port)
        return
    env = parts.DemoEnvironment()
    metrics, server = _serve_metrics(env, metrics_port, metrics_host)  # exit 2 if port in use
    parts.register_demo_job_type()  # until the end: scrapes after the demo name its type
    try:
        _run_demo(env, timeout, metrics)
        if server is not None:
            from qworker.cli.metrics import wait_for_stop_signal

            wait_for_stop_signal(
                f"metrics on {server.url} (the queue as the demo left it); Ctrl-C stops"
            )
    finally:
        if server is not None:
            server.close()
        parts.unregister_demo_job_type()


def _run_demo(env: DemoEnvironment, timeout_s: float, metrics: WorkerMetrics | None) -> None:
    events = EventLog()
    events.install()
    try:
        run(_demo(env, events, timeout_s, metrics))
    finally:
        events.remove()


def _serve_metrics(
    env: DemoEnvironment, port: int | None, host: str
) -> tuple[WorkerMetrics | None, MetricsServer | None]:
    """The worker's metrics and the queue's (read from the embedded Redis at each scrape) on
    one endpoint: what ``work --metrics-port`` and ``metrics serve`` export on a real one."""
    if port is None:
        return None, None
    from qworker.metrics.http import serve
    from qworker.metrics.queue import QueueCollector
    from qworker.metrics.worker import WorkerMetrics

    metrics = WorkerMetrics()
    metrics.registry.register(QueueCollector(env.sync_client(), env.service.keys))
    return metrics, serve(metrics.registry, port, host)


async def _demo(
    env: DemoEnvironment, events: EventLog, timeout_s: float, metrics: WorkerMetrics | None
) -> None:
    from rich.live import Live

    from qworker import demo as parts
    from qworker.cli import _render
    from qworker.cli.stats import collect

    started = time.monotonic()
    worker = env.worker(metrics=metrics)
    task: asyncio.Task[None] | None = None
    try:
        job_ids = await env.enqueue_samples()
        task = asyncio.create_task(worker.run())
        with Live(console=_render.stdout_console(), auto_refresh=False, transient=True) as live:
            while True:
                snapshot = await collect(env.service)
                elapsed_s = time.monotonic() - started
                live.update(_live_view(snapshot, events, elapsed_s), refresh=True)
                if parts.is_drained(snapshot.stats, len(job_ids)) or task.done():
                    break
                if elapsed_s > timeout_s:
                    raise CliError(f"the demo did not finish within {timeout_s:g}s")
                await asyncio.sleep(REFRESH_S)
        worker.request_stop()
        await task  # a worker that crashed raises here
        final = await collect(env.service)
        dead = await env.service.list_dead()
    finally:
        if task is not None and not task.done():
            worker.request_stop(immediate=True)
            await asyncio.gather(task, return_exceptions=True)
        await env.close()
    _render.show(*_final_view(final, dead, events, time.monotonic() - started))


def _banner(elapsed_s: float) -> RenderableType:
    from rich.text import Text

    banner = Text("qworker demo", style="bold")
    banner.append(
        f"  {elapsed_s:4.1f}s  embedded Redis, dry-run X client, retries in seconds",
        style="dim",
    )
    return banner


def _live_view(snapshot: Snapshot, events: EventLog, elapsed_s: float) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from qworker.cli import stats

    side_by_side = Table.grid(padding=(0, 4))
    side_by_side.add_row(
        stats.queues_table(snapshot.stats),
        stats.totals_table(snapshot.stats),
    )
    recent = Group(
        Text("Recent events", style="bold"),
        *(Text(line, no_wrap=True, overflow="ellipsis") for line in events.recent),
    )
    return Group(
        _banner(elapsed_s),
        Text(""),
        side_by_side,
        Text(""),
        stats.rate_limits_table(snapshot.rate_limits, snapshot.now_ms),
        Text(""),
        stats.workers_table(snapshot.workers, snapshot.now_ms),
        Text(""),
        recent,
    )


def _final_view(
    final: Snapshot,
    dead: list[JobRecord],
    events: EventLog,
    elapsed_s: float,
) -> list[RenderableType]:
    from rich.text import Text

    from qworker.cli import stats
    from qworker.cli._render import Col, stack, table

    outcomes = table(
        "Job log",
        [Col("time", no_wrap=True), Col("job", no_wrap=True), Col("outcome", truncate=True)],
        events.outcomes,
    )
    dead_rows = [
        (job.id[:8], job.error.message if job.error else "-", _content(job)) for job in dead
    ]
    dead_table = table(
        "Dead letter",
        [Col("job"), Col("error", truncate=True), Col("content", truncate=True)],
        dead_rows,
    )
    summary = Text(
        f"{final.stats.total_processed} posted (dry run), "
        f"{events.retried} retried first, {final.stats.dead_letter} in the dead-letter queue, "
        f"in {elapsed_s:.1f}s. On a real Redis: qworker work, qworker stats --watch, "
        "qworker dlq list.",
        style="bold",
    )
    # The stats view but its Redis memory table: the embedded Redis answers no INFO, and
    # "this Redis user may not run INFO" would send a newcomer looking for an ACL problem.
    queue_view = stack(
        stats.queues_table(final.stats),
        stats.pauses_table(final.stats.pauses, final.now_ms),
        stats.totals_table(final.stats),
        stats.rate_limits_table(final.rate_limits, final.now_ms),
        stats.workers_table(final.workers, final.now_ms),
    )
    return [
        _banner(elapsed_s),
        queue_view,
        dead_table,
        outcomes,
        summary,
    ]


def _content(job: JobRecord) -> str:
    params = job.params or {}
    return str(params.get("content", job.payload))


class EventLog(logging.Handler):
    """Catches qworker's log records for the view: every record's message for "recent events",
    and the worker's one-line job outcomes for the final job log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.recent: deque[str] = deque(maxlen=RECENT_EVENTS)
        self.outcomes: list[tuple[str, str, str]] = []
        self.retried = 0
        self._logger = logging.getLogger("qworker")
        self._saved: tuple[list[logging.Handler], int, bool] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        outcome = getattr(record, "outcome", None)
        if outcome is None:
            self.recent.append(f"{stamp}  {record.getMessage()}")
            return
        message = record.getMessage()
        detail = message.split("ms: ", 1)[1] if "ms: " in message else ""
        job = f"{str(getattr(record, 'job_id', '?'))[:8]} p{getattr(record, 'priority', '?')}"
        what = f"attempt {getattr(record, 'attempt', '?')} {outcome}"
        what += f": {detail}" if detail else ""
        self.retried += outcome == "retry"
        self.recent.append(f"{stamp}  {job}  {what}")
        self.outcomes.append((stamp, job, what))

    def install(self) -> None:
        """Route qworker's logs here instead of stderr, until :meth:`remove`."""
        logger = self._logger
        self._saved = (list(logger.handlers), logger.level, logger.propagate)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.addHandler(self)
        logger.setLevel(logging.INFO)
        logger.propagate = False

    def remove(self) -> None:
        logger = self._logger
        logger.removeHandler(self)
        if self._saved is not None:
            handlers, level, propagate = self._saved
            for handler in handlers:
                logger.addHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
