"""Prometheus metrics, each kind from the one place that knows it.

* :mod:`qworker.metrics.worker` -- what one worker process did (``qworker work --metrics-port``):
  jobs by outcome, durations, waits, running jobs. Counted in the process, exported by it.
* :mod:`qworker.metrics.queue` -- what the queue holds (``qworker metrics [serve]``): lengths,
  oldest ages, the counters kept in Redis, rate limits, live workers. Read from Redis at scrape
  time by one exporter per deployment, so N workers never export N copies of a queue gauge.
* :mod:`qworker.metrics.http` -- the HTTP endpoint both serve.

Nothing here is imported by the worker unless metrics are asked for.
"""
