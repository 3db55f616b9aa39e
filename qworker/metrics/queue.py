"""What the queue holds, for Prometheus, read from Redis when Prometheus scrapes.

One exporter per deployment (``qworker metrics serve``), never one per worker: N workers would
export N copies of every queue gauge. A scrape costs two round trips whatever the queue
lengths (pipelines of O(1) and O(log n) reads; rate-limit windows are read by rank, not
listed). A failed scrape answers ``qworker_up 0`` and logs the error once; the next scrape
tries again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from qworker.config import Settings
from qworker.connection import sync_client
from qworker.keys import (
    PRIORITIES,
    STAT_CANCELED,
    STAT_DEAD,
    STAT_DEAD_DROPPED,
    STAT_FAILED,
    STAT_PROCESSED,
    QueueKeys,
)
from qworker.rate_limiter import DAY_MS, HOUR_MS

log = logging.getLogger("qworker.metrics")

# The counters qworker keeps in its stats hash, as Prometheus counters.
REDIS_COUNTERS = (
    ("qworker_processed", STAT_PROCESSED, "Jobs done, counted in Redis by every worker."),
    ("qworker_failed", STAT_FAILED, "Failed attempts, counted in Redis by every worker."),
    ("qworker_dead", STAT_DEAD, "Jobs moved to the dead-letter queue."),
    ("qworker_canceled", STAT_CANCELED, "Jobs canceled by an operator (qworker job cancel)."),
    (
        "qworker_dead_letter_dropped",
        STAT_DEAD_DROPPED,
        "Dead-letter entries dropped by the retention caps.",
    ),
)
# The longest a job id can be; a longer list entry is a payload another program pushed.
MAX_ID_LENGTH = 64
WINDOWS = (("day", DAY_MS), ("hour", HOUR_MS))


@dataclass
class RateLimitSnapshot:
    rate_key: str
    limits: dict[str, int | None]  # window -> cap
    min_interval_ms: int
    used: dict[str, int] = field(default_factory=dict)
    next_slot_ms: int = 0


@dataclass
class QueueSnapshot:
    """Everything one scrape read, at ``now_ms``."""

    now_ms: int
    queues: dict[str, int]
    oldest_ms: dict[int, int | None]
    counters: dict[str, int]
    workers_alive: int
    rate_limits: list[RateLimitSnapshot]


def sets_of(keys: QueueKeys) -> list[tuple[str, str]]:
    """The ``queue`` label and the sorted set of each queue counted by its size (ZCARD)."""
    return [
        ("scheduled", keys.scheduled),
        ("retry", keys.retry),
        ("parked", keys.parked),
        # Jobs of a workflow waiting for their dependencies: a stuck flow shows here.
        ("waiting", keys.waiting),
        ("running", keys.inflight),
        ("dead", keys.dead_letter),
    ]


def read_snapshot(client: redis.Redis, keys: QueueKeys, now_ms: int) -> QueueSnapshot:
    """Two pipelined round trips: the lengths, counters and the oldest entry of each list;
    then the enqueue times of those entries, live workers and rate-limit windows."""
    pipe = client.pipeline(transaction=False)
    for key in keys.priorities:
        pipe.llen(key)
        pipe.lindex(key, -1)  # workers take from the right: the oldest job
    for _name, key in sets_of(keys):
        pipe.zcard(key)
    pipe.hgetall(keys.stats)
    pipe.zrange(keys.workers, 0, -1)
    pipe.hgetall(keys.rate_keys)
    pipe.hkeys(keys.lanes)
    first: list[Any] = pipe.execute()
    set_count = len(sets_of(keys))
    lists, sets, rest = first[:8], first[8 : 8 + set_count], first[8 + set_count :]
    counters_raw, worker_ids, rate_keys, laned = rest
    queues = {f"priority_{p}": int(lists[2 * i]) for i, p in enumerate(PRIORITIES)}
    queues.update(zip((name for name, _key in sets_of(keys)), sets, strict=True))
    oldest_ids = {p: lists[2 * i + 1] for i, p in enumerate(PRIORITIES)}
    limits = [_parse_limit(name, encoded) for name, encoded in sorted(rate_keys.items())]

    pipe = client.pipeline(transaction=False)
    asked = [p for p, job_id in oldest_ids.items() if job_id and len(job_id) <= MAX_ID_LENGTH]
    for priority in asked:
        pipe.hget(keys.job(oldest_ids[priority]), "enqueued_at_ms")
    if worker_ids:
        pipe.exists(*[keys.worker(worker_id) for worker_id in worker_ids])
    for limit in limits:
        _queue_rate_reads(pipe, keys, limit, now_ms)
    # A priority's ready jobs include those in the lanes (routing.py).
    lane_keys = [(p, keys.lane(t, p)) for t in sorted(laned) for p in PRIORITIES]
    for _priority, key in lane_keys:
        pipe.llen(key)
    second: list[Any] = pipe.execute() if len(pipe) else []
    if lane_keys:
        second, lane_lengths = second[: -len(lane_keys)], second[-len(lane_keys) :]
        for (priority, _key), length in zip(lane_keys, lane_lengths, strict=True):
            queues[f"priority_{priority}"] += int(length)
    enqueued, second = second[: len(asked)], second[len(asked) :]
    alive = 0
    if worker_ids:
        alive, second = int(second[0]), second[1:]
    for limit in limits:
        second = _take_rate_reads(limit, second, now_ms)
    oldest_ms: dict[int, int | None] = {p: None for p in PRIORITIES}
    for priority, value in zip(asked, enqueued, strict=True):
        oldest_ms[priority] = int(value) if value and value.isdigit() else None
    counters = {name: _int(counters_raw.get(name)) for _, name, _ in REDIS_COUNTERS}
    return QueueSnapshot(now_ms, queues, oldest_ms, counters, alive, limits)


def _parse_limit(rate_key: str, encoded: str) -> RateLimitSnapshot:
    day, hour, interval_ms = [*encoded.split("|"), "", "", ""][:3]
    caps = {
        "day": int(day) if day.isdigit() else None,
        "hour": int(hour) if hour.isdigit() else None,
    }
    return RateLimitSnapshot(rate_key, caps, _int(interval_ms))


def _queue_rate_reads(pipe: Any, keys: QueueKeys, limit: RateLimitSnapshot, now_ms: int) -> None:
    """Per window: the use, and the cap-th newest execution (the one whose expiry frees the
    next slot, as in rate_reserve.lua); then the last execution and any remote block."""
    log_key = keys.rate_log(limit.rate_key)
    for window, window_ms in WINDOWS:
        since = f"({now_ms - window_ms}"
        pipe.zcount(log_key, since, "+inf")
        cap = limit.limits[window]
        if cap:
            pipe.zrevrangebyscore(log_key, "+inf", since, start=cap - 1, num=1, withscores=True)
    pipe.zrange(log_key, -1, -1, withscores=True)
    pipe.get(keys.rate_blocked(limit.rate_key))


def _take_rate_reads(limit: RateLimitSnapshot, replies: list[Any], now_ms: int) -> list[Any]:
    next_ms = now_ms
    for window, window_ms in WINDOWS:
        limit.used[window], replies = int(replies[0]), replies[1:]
        cap = limit.limits[window]
        if cap == 0:
            next_ms = max(next_ms, now_ms + window_ms)
        elif cap:
            freeing, replies = replies[0], replies[1:]
            if freeing:
                next_ms = max(next_ms, int(freeing[0][1]) + window_ms)
    last, blocked, replies = replies[0], replies[1], replies[2:]
    if limit.min_interval_ms and last:
        next_ms = max(next_ms, int(last[0][1]) + limit.min_interval_ms)
    if blocked and str(blocked).isdigit():
        next_ms = max(next_ms, int(blocked))
    limit.next_slot_ms = next_ms
    return replies


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def families(snapshot: QueueSnapshot) -> Iterator[Metric]:
    """The snapshot as Prometheus metric families (base units: seconds, counts)."""
    now_ms = snapshot.now_ms
    queue = GaugeMetricFamily("qworker_queue_jobs", "Jobs in each queue.", labels=["queue"])
    for name, length in snapshot.queues.items():
        queue.add_metric([name], length)
    yield queue
    oldest = GaugeMetricFamily(
        "qworker_queue_oldest_age_seconds",
        "Age of the oldest ready job of each priority (0 when none is waiting).",
        labels=["priority"],
    )
    for priority, enqueued_ms in snapshot.oldest_ms.items():
        age_s = max(now_ms - enqueued_ms, 0) / 1000 if enqueued_ms is not None else 0.0
        oldest.add_metric([str(priority)], age_s)
    yield oldest
    for metric, stat, text in REDIS_COUNTERS:
        yield CounterMetricFamily(metric, text, value=snapshot.counters[stat])
    yield GaugeMetricFamily(
        "qworker_workers_alive", "Workers whose heartbeat is current.", snapshot.workers_alive
    )
    yield from _rate_limit_families(snapshot)


def _rate_limit_families(snapshot: QueueSnapshot) -> Iterator[Metric]:
    used = GaugeMetricFamily(
        "qworker_rate_limit_used",
        "Executions in the rolling window of each rate-limit key.",
        labels=["key", "window"],
    )
    cap = GaugeMetricFamily(
        "qworker_rate_limit_limit",
        "Executions each rate-limit key allows per rolling window.",
        labels=["key", "window"],
    )
    next_slot = GaugeMetricFamily(
        "qworker_rate_limit_next_slot_seconds",
        "Seconds until each rate-limit key allows its next execution (0: now).",
        labels=["key"],
    )
    for limit in snapshot.rate_limits:
        for window, _ in WINDOWS:
            used.add_metric([limit.rate_key, window], limit.used.get(window, 0))
            window_cap = limit.limits[window]
            if window_cap is not None:
                cap.add_metric([limit.rate_key, window], window_cap)
        seconds = max(limit.next_slot_ms - snapshot.now_ms, 0) / 1000
        next_slot.add_metric([limit.rate_key], seconds)
    yield from (used, cap, next_slot)


class QueueCollector(Collector):
    """Reads the queue at every scrape. ``qworker_up`` says whether the read worked; a failure
    is logged once per distinct error, and the recovery once."""

    def __init__(
        self,
        client: redis.Redis,
        keys: QueueKeys,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self.last_error: str | None = None

    def describe(self) -> Iterator[Metric]:
        return iter(())  # unchecked: families depend on what Redis holds

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        try:
            snapshot = read_snapshot(self.client, self.keys, self.now_ms())
        except (redis.RedisError, OSError, ValueError) as exc:
            self._failed(exc)
            yield _up(0)
            return
        if self.last_error is not None:
            log.warning("metrics: Redis answers again")
            self.last_error = None
        yield from families(snapshot)
        yield _up(1)
        yield GaugeMetricFamily(
            "qworker_scrape_duration_seconds",
            "How long reading the queue from Redis took.",
            time.perf_counter() - started,
        )

    def _failed(self, exc: BaseException) -> None:
        text = " ".join(str(exc).split()) or type(exc).__name__
        if text != self.last_error:
            log.error("metrics: cannot read the queue from Redis: %s", text)
        self.last_error = text


def _up(value: int) -> GaugeMetricFamily:
    return GaugeMetricFamily("qworker_up", "1 when the last read of the queue worked.", value)


def queue_registry(collector: QueueCollector) -> CollectorRegistry:
    """A registry holding only the queue's metrics (an exporter's own process metrics would
    say nothing about the queue)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def open_collector(settings: Settings) -> QueueCollector:
    """A collector on its own synchronous client (the HTTP server's thread scrapes with it),
    made from the settings, so Sentinel, Cluster and TLS apply."""
    keys = QueueKeys(settings.namespace)
    return QueueCollector(sync_client(settings, namespace=keys.namespace), keys)
