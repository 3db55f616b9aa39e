"""What one worker process did, for Prometheus: jobs by type and outcome, how long ``execute()``
took, how long jobs waited to start, and the jobs running now.

The worker calls :class:`WorkerMetrics` at a few points (a job starts, ends, is handed back; a
lease is lost; Redis fails). A busy worker settles tens of thousands of jobs a second, so those
calls only add to plain counters in this process (a dict lookup, a bisect and an increment,
no lock: they all run on the event loop's thread); the metric families are built from them
when Prometheus scrapes.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from qworker.jobs.base import JobFactory

# How an attempt of a job ended on this worker: the values of the outcome label.
OUTCOMES = ("done", "retried", "dead", "parked", "timeout", "canceled", "handed_back")
# The job_type label of a job whose type no worker registered (its type is free text).
UNKNOWN_TYPE = "unknown"
# Durations of execute() and waits: from a millisecond no-op to a job waiting a day behind a
# rate limit.
DURATION_BUCKETS_S = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
WAIT_BUCKETS_S = (0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400)
# Raw job types kept apart before they are labelled; past this many (free text from payloads),
# new ones are counted as unknown at once.
MAX_TYPES = 1000


@dataclass
class _Histogram:
    """Counts per bucket (not cumulative; the last is +Inf) and the sum, of one job type."""

    bounds: tuple[float, ...]
    counts: list[int] = field(init=False)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


class WorkerMetrics(Collector):
    """The metrics of one worker process, in a registry of their own (plus the standard
    process, platform and GC collectors) so tests and the demo can hold several."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else _process_registry()
        self._jobs: dict[tuple[str | None, str], int] = {}
        self._durations: dict[str | None, _Histogram] = {}
        self._waits: dict[str | None, _Histogram] = {}
        self.concurrency = 0
        self._running: Callable[[], int] = lambda: 0
        self.redis_errors = 0
        self._leases_lost = 0
        self._lost_lock = threading.Lock()  # counted by the heartbeat's thread
        self.registry.register(self)

    def bind_worker(self, concurrency: int, running: Callable[[], int]) -> None:
        """Called by the worker it measures: the running gauge is read at scrape time."""
        self.concurrency = concurrency
        self._running = running

    # -- the worker's calls ----------------------------------------------------------------

    def job_settled(
        self, job_type: str | None, outcome: str, duration_s: float | None, wait_s: float | None
    ) -> None:
        """A job's attempt ended here: its outcome, how long execute() ran (None: it never
        started) and how long it waited to start (None: not measured). One call per job."""
        key = (job_type, outcome)
        count = self._jobs.get(key)
        if count is None and len(self._jobs) >= MAX_TYPES * len(OUTCOMES):
            key, count = (None, outcome), self._jobs.get((None, outcome))
        self._jobs[key] = (count or 0) + 1
        if duration_s is not None:
            durations = self._durations.get(job_type)
            if durations is None:
                durations = _histogram_of(self._durations, job_type, DURATION_BUCKETS_S)
            durations.observe(duration_s)
        if wait_s is not None:
            waits = self._waits.get(job_type)
            if waits is None:
                waits = _histogram_of(self._waits, job_type, WAIT_BUCKETS_S)
            waits.observe(wait_s)

    def job_ended(self, job_type: str | None, outcome: str) -> None:
        """A job left this worker without an attempt of its own ending (handed back)."""
        self.job_settled(job_type, outcome, None, None)

    def lease_lost(self, jobs: int) -> None:
        with self._lost_lock:
            self._leases_lost += jobs

    def redis_error(self) -> None:
        self.redis_errors += 1

    # -- scrape ----------------------------------------------------------------------------

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        jobs = CounterMetricFamily(
            "qworker_jobs",
            "Job attempts this worker ended, by type and outcome.",
            labels=["job_type", "outcome"],
        )
        by_label: dict[tuple[str, str], int] = {}
        for (job_type, outcome), count in list(self._jobs.items()):
            key = (_label(job_type), outcome)
            by_label[key] = by_label.get(key, 0) + count
        for labels, count in sorted(by_label.items()):
            jobs.add_metric(list(labels), count)
        yield jobs
        yield _histogram_family(
            "qworker_job_duration_seconds", "Time spent in execute(), by job type.",
            self._durations,
        )  # fmt: skip
        yield _histogram_family(
            "qworker_job_wait_seconds",
            "Time from a job's enqueue (or due) time to its start on this worker.",
            self._waits,
        )
        yield GaugeMetricFamily(
            "qworker_jobs_running", "Jobs running on this worker.", self._running()
        )
        yield GaugeMetricFamily(
            "qworker_worker_concurrency", "Jobs this worker runs at the same time.",
            self.concurrency,
        )  # fmt: skip
        yield CounterMetricFamily(
            "qworker_redis_errors", "Redis errors the worker's loop waited out.",
            value=self.redis_errors,
        )  # fmt: skip
        yield CounterMetricFamily(
            "qworker_leases_lost",
            "Jobs recovered by another worker while this one held them.",
            value=self._leases_lost,
        )


def _histogram_of(
    histograms: dict[str | None, _Histogram], job_type: str | None, bounds: tuple[float, ...]
) -> _Histogram:
    if len(histograms) >= MAX_TYPES:
        job_type = None
    histogram = histograms.get(job_type)
    if histogram is None:
        histogram = histograms[job_type] = _Histogram(bounds)
    return histogram


def _histogram_family(
    name: str, documentation: str, histograms: dict[str | None, _Histogram]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=["job_type"])
    merged: dict[str, tuple[list[int], float, tuple[float, ...]]] = {}
    for job_type, histogram in list(histograms.items()):
        label = _label(job_type)
        counts, total, bounds = merged.get(label, ([0] * len(histogram.counts), 0.0, ()))
        counts = [a + b for a, b in zip(counts, histogram.counts, strict=True)]
        merged[label] = (counts, total + histogram.total, histogram.bounds)
    for label, (counts, total, bounds) in sorted(merged.items()):
        cumulative, buckets = 0, []
        for bound, count in zip([*bounds, float("inf")], counts, strict=True):
            cumulative += count
            le = floatToGoString(bound)  # type: ignore[no-untyped-call]
            buckets.append((le, float(cumulative)))
        family.add_metric([label], buckets, total)
    return family


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
