"""What one worker process did, for Prometheus: jobs by type and outcome, how long ``execute()``
took, how long jobs waited to start, and the jobs running now.

The worker calls :class:`WorkerMetrics` at a few points (a job starts, ends, is handed back; a
lease is lost; Redis fails). Each call is a dictionary lookup and an increment: the labelled
children are cached, so no ``labels()`` call is paid per job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.metrics import MetricWrapperBase

from qworker.jobs.base import JobFactory

# How an attempt of a job ended on this worker: the values of the outcome label.
OUTCOMES = ("done", "retried", "dead", "parked", "timeout", "canceled", "handed_back")
# The job_type label of a job whose type no worker registered (its type is free text).
UNKNOWN_TYPE = "unknown"
# Durations of execute() and waits: from a millisecond no-op to a job waiting a day behind a
# rate limit.
DURATION_BUCKETS_S = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
WAIT_BUCKETS_S = (0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400)
# Unknown job types all share one label; their raw names are not cached past this many.
MAX_CACHED_CHILDREN = 1000


class WorkerMetrics:
    """The metrics of one worker process, in a registry of their own (plus the standard
    process, platform and GC collectors) so tests and the demo can hold several."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # No ``*_created`` series: they double what is scraped and no dashboard uses them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry if registry is not None else _process_registry()
        r = self.registry
        self.jobs = Counter(
            "qworker_jobs", "Job attempts this worker ended, by type and outcome.",
            ["job_type", "outcome"], registry=r,
        )  # fmt: skip
        self.duration = Histogram(
            "qworker_job_duration_seconds", "Time spent in execute(), by job type.",
            ["job_type"], buckets=DURATION_BUCKETS_S, registry=r,
        )  # fmt: skip
        self.wait = Histogram(
            "qworker_job_wait_seconds",
            "Time from a job's enqueue (or due) time to its start on this worker.",
            ["job_type"], buckets=WAIT_BUCKETS_S, registry=r,
        )  # fmt: skip
        self.running = Gauge("qworker_jobs_running", "Jobs running on this worker.", registry=r)
        self.concurrency = Gauge(
            "qworker_worker_concurrency", "Jobs this worker runs at the same time.", registry=r
        )
        self.redis_errors = Counter(
            "qworker_redis_errors", "Redis errors the worker's loop waited out.", registry=r
        )
        self.leases_lost = Counter(
            "qworker_leases_lost",
            "Jobs recovered by another worker while this one held them.",
            registry=r,
        )
        self._children: dict[tuple[object, ...], MetricWrapperBase] = {}

    def bind_worker(self, concurrency: int, running: Callable[[], int]) -> None:
        """Called by the worker it measures: the running gauge is read at scrape time."""
        self.concurrency.set(concurrency)
        self.running.set_function(lambda: float(running()))

    # -- the worker's calls ----------------------------------------------------------------

    def job_started(self, job_type: str | None, ready_at_ms: int, now_ms: int) -> None:
        wait = cast(Histogram, self._child(self.wait, job_type))
        wait.observe(max(now_ms - ready_at_ms, 0) / 1000)

    def job_executed(self, job_type: str | None, duration_s: float) -> None:
        cast(Histogram, self._child(self.duration, job_type)).observe(duration_s)

    def job_ended(self, job_type: str | None, outcome: str) -> None:
        cast(Counter, self._child(self.jobs, job_type, outcome)).inc()

    def lease_lost(self, jobs: int) -> None:
        self.leases_lost.inc(jobs)

    def redis_error(self) -> None:
        self.redis_errors.inc()

    def _child(
        self, metric: MetricWrapperBase, job_type: str | None, *labels: str
    ) -> MetricWrapperBase:
        key = (id(metric), job_type, *labels)
        child = self._children.get(key)
        if child is None:
            child = metric.labels(_label(job_type), *labels)
            if len(self._children) < MAX_CACHED_CHILDREN:
                self._children[key] = child
        return child


def _label(job_type: str | None) -> str:
    """A registered type names itself; anything else (free text from a payload) does not
    become a label value of its own."""
    if job_type and job_type in JobFactory.known_types():
        return job_type
    return UNKNOWN_TYPE


def _process_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry
