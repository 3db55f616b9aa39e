"""One peer's figure for ``scripts/bench --peers``, run in the peers' own venv (.venv-peers):
``python scripts/bench_peer_probe.py huey|rq REDIS_URL JOBS`` prints jobs enqueued a second,
one call at a time, no-op jobs (what qworker's enqueue row measures)."""

from __future__ import annotations

import sys
import time


def noop() -> None:
    """The job: nothing (never run here; only enqueued)."""


def huey_rate(url: str, jobs: int) -> float:
    from huey import RedisHuey

    huey = RedisHuey("bench-peer", url=url)
    task = huey.task()(noop)
    task()  # warm: connection, pickling
    started = time.perf_counter()
    for _ in range(jobs):
        task()
    return jobs / (time.perf_counter() - started)


def rq_rate(url: str, jobs: int) -> float:
    from redis import Redis
    from rq import Queue

    queue = Queue("bench-peer", connection=Redis.from_url(url))
    queue.enqueue("os.getpid")  # RQ refuses functions of __main__: a function by its path
    started = time.perf_counter()
    for _ in range(jobs):
        queue.enqueue("os.getpid")
    return jobs / (time.perf_counter() - started)


def main() -> int:
    peer, url, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rate = {"huey": huey_rate, "rq": rq_rate}[peer](url, jobs)
    print(f"{rate:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
