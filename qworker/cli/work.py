"""``qworker work``: run a worker until SIGTERM/SIGINT (exit 0), or until the queue is empty.

Before anything runs it says where it works (Redis URL with the password masked, namespace),
what (job types and their rate limits) and how (concurrency, burst, dry run, grace) in one log
line, and refuses to start (exit 2) when tweets would be posted without X credentials.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from qworker.cli._common import open_service, run, state_of
from qworker.errors import ConfigurationError

if TYPE_CHECKING:
    from qworker.clients import ClientContainer
    from qworker.config import Settings
    from qworker.metrics.http import MetricsServer
    from qworker.metrics.worker import WorkerMetrics
    from qworker.rate_limiter import RateLimit
    from qworker.routing import Served
    from qworker.service import QueueService

EXAMPLE = (
    "Example: qworker work -c 4 --import myapp.jobs --job-types report,mail   "
    "(drain the queue and exit: --burst)"
)

log = logging.getLogger("qworker.worker")
# The built-in job type that JobFactory imports on first use (a plugin may register its own).
BUILTIN_TWEET = "tweet"


class LogFormat(StrEnum):
    text = "text"
    json = "json"


def work(
    ctx: typer.Context,
    concurrency: Annotated[
        int,
        typer.Option("--concurrency", "-c", min=1, metavar="N", help="Jobs run at the same time."),
    ] = 1,
    prefetch: Annotated[
        int | None,
        typer.Option(
            "--prefetch",
            min=0,
            metavar="N",
            help="Jobs claimed ahead of a free slot (leased, so a crash loses none); an urgent "
            "job may wait behind this many. Default: the concurrency.",
            show_default=False,
        ),
    ] = None,
    burst: Annotated[
        bool, typer.Option("--burst", help="Exit once no job is ready instead of waiting.")
    ] = False,
    imports: Annotated[
        list[str] | None,
        typer.Option(
            "--import",
            metavar="MODULE",
            help="Import a module that registers job types (repeatable).",
        ),
    ] = None,
    job_types: Annotated[
        list[str] | None,
        typer.Option(
            "--job-types",
            metavar="T,...",
            help="Serve only these job types (comma-separated or repeated); other types' jobs "
            "wait for a worker that serves them. X credentials are needed only with tweet. "
            "Default: QWORKER_JOB_TYPES, or every type.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Post nothing: log each tweet instead, and mark it done as a dry run (it is "
            "not posted later). For tests, not to skip credentials: see --job-types.",
        ),
    ] = False,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(
            "--log-format",
            metavar="[text|json]",
            help="text, or json lines. Default: QWORKER_LOG_FORMAT or text.",
        ),
    ] = None,
    grace: Annotated[
        float | None,
        typer.Option(
            "--grace",
            min=0,
            metavar="SECONDS",
            help="On SIGTERM, how long running jobs may finish. "
            "Default: QWORKER_SHUTDOWN_GRACE_SECONDS or 30.",
            show_default=False,
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            metavar="PORT",
            help="Serve this worker's Prometheus metrics (jobs by outcome, durations, waits) "
            "on this port. Queue metrics: qworker metrics serve.",
            show_default=False,
        ),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option("--metrics-host", metavar="ADDRESS", help="Address of --metrics-port."),
    ] = "127.0.0.1",
    no_schedules: Annotated[
        bool,
        typer.Option(
            "--no-schedules",
            help="Fire no recurring schedules here (other workers still do; see qworker schedule).",
        ),
    ] = False,
) -> None:
    """Run a worker: take jobs by priority and run them until stopped."""
    from qworker.logs import configure_logging
    from qworker.routing import Served, parse_job_types

    state = state_of(ctx)
    overrides: dict[str, object] = {}
    if dry_run:
        overrides["dry_run"] = True
    if log_format is not None:
        overrides["log_format"] = log_format.value
    if grace is not None:
        overrides["shutdown_grace_seconds"] = grace
    if job_types is not None:
        overrides["job_types"] = parse_job_types(job_types)
        if not overrides["job_types"]:  # "" or ",": a slip that must not mean every type
            raise ConfigurationError(
                "--job-types names no job type; give one or more (--job-types tweet,report), "
                "or leave it out to serve every type"
            )
    settings = state.settings(**overrides)
    modules = [*settings.job_modules, *(imports or [])]
    known = _load_job_types(modules)
    served = Served.checked(settings.job_types, known)
    job_types_run = [name for name in known if served.serves(name)]
    if "tweet" in job_types_run and not settings.dry_run:
        _require_tweet_credentials(settings)
    configure_logging(settings.log_format, logging.DEBUG if state.debug else logging.INFO)

    metrics, server = _start_metrics(metrics_port, metrics_host)

    async def go() -> None:
        from qworker.worker import Worker

        service = open_service(settings)
        async with service:
            await _check_memory_policy(service)
            worker = Worker(
                service,
                settings=settings,
                concurrency=concurrency,
                prefetch=prefetch,
                burst=burst,
                job_modules=modules,
                grace_s=settings.shutdown_grace_seconds,
                metrics=metrics,
                schedules=not no_schedules,
                job_types=settings.job_types,
            )
            log.info(
                _startup_line(settings, served, job_types_run, concurrency, burst, worker.clients),
                extra={
                    "redis_url": settings.masked_redis_url(),
                    "namespace": settings.namespace,
                    "job_types": job_types_run,
                    "serves_all": served.serves_all,
                    "concurrency": concurrency,
                    "dry_run": settings.dry_run,
                },
            )
            worker.install_signal_handlers()
            if server is not None:
                log.info("worker metrics on %s", server.url)
            _freeze_startup_objects()
            await worker.run()

    try:
        run(go())
    finally:
        if server is not None:
            server.close()


def _start_metrics(
    port: int | None, host: str
) -> tuple[WorkerMetrics | None, MetricsServer | None]:
    """The worker's metrics and their endpoint, bound before any job is taken (a port in use
    stops the start with exit 2)."""
    if port is None:
        return None, None
    from qworker.metrics.http import serve
    from qworker.metrics.worker import WorkerMetrics

    metrics = WorkerMetrics()
    return metrics, serve(metrics.registry, port, host)


def _freeze_startup_objects() -> None:
    """Hide what start-up made (modules, pydantic models, clients: it lives as long as the
    process) from the garbage collector. Otherwise the first full collections walk all of it
    while the first jobs wait: 10-30 ms stalls, measured as the worst enqueue-to-start times."""
    gc.collect()
    gc.freeze()


async def _check_memory_policy(service: QueueService) -> None:
    """Refuse (exit 2) a Redis that may evict jobs before any job is taken. An unreachable
    Redis is the worker's to wait for: it checks again once it connects."""
    from qworker.errors import RedisUnavailable

    with contextlib.suppress(RedisUnavailable):
        await service.check_memory_policy()


def _load_job_types(modules: list[str]) -> list[str]:
    """Import plugins (``--import``, QWORKER_JOB_MODULES, entry points); every known type."""
    from qworker.jobs.base import JobFactory, load_entry_points, load_job_modules

    load_job_modules(modules)
    try:
        load_entry_points()
    except Exception as exc:
        raise ConfigurationError(f"cannot load the qworker.jobs entry points: {exc}") from None
    return JobFactory.known_types()


def _require_tweet_credentials(settings: Settings) -> None:
    from qworker.jobs.tweet_client import missing_credentials

    missing = missing_credentials(settings)
    if missing:
        raise ConfigurationError(
            f"X API credentials are not set: {', '.join(missing)}; set them in the environment "
            "or .env (see .env.example), or leave tweet out of this worker's --job-types"
        )


def _startup_line(
    settings: Settings,
    served: Served,
    job_types: list[str],
    concurrency: int,
    burst: bool,
    clients: ClientContainer,
) -> str:
    limits = "; ".join(f"{name} {_describe_limit(name, settings, clients)}" for name in job_types)
    dry = settings.dry_run and "tweet" in job_types
    return (
        f"worker starting: redis {settings.masked_redis_url()}, "
        f"namespace {settings.namespace or '(none)'}, job types {', '.join(job_types)}"
        f"{'' if served.serves_all else ' only'}, "
        f"concurrency {concurrency}{', burst' if burst else ''}"
        f"{', DRY RUN (tweets are marked done as dry runs, never posted)' if dry else ''}, "
        f"grace {settings.shutdown_grace_seconds:g}s, limits: {limits}"
    )


def _describe_limit(name: str, settings: Settings, clients: ClientContainer) -> str:
    """A job type's rate limit as its jobs report it. Limits come from settings, not from a
    job's parameters, so a parameterless instance (never validated, never run) can tell."""
    from qworker.jobs.base import JobFactory

    try:
        if name == BUILTIN_TWEET and not JobFactory.is_loaded(name):
            return _format_limit(_builtin_tweet_limit(settings))
        job_type = JobFactory.get(name)
        params = job_type.params_cls.model_construct(job_type=name)
        limit = job_type.job_cls(params, settings, clients).get_rate_limit()
    except Exception:
        return "(unknown)"
    return _format_limit(limit)


def _builtin_tweet_limit(settings: Settings) -> RateLimit:
    """What ``TweetJob.get_rate_limit`` returns, without importing the tweet job: it is loaded
    when its first job comes, since its models and X client cost a worker about 1 MB that one
    log line should not."""
    from qworker.jobs.x_plan import tweet_rate_limit

    return tweet_rate_limit(settings)


def _format_limit(limit: RateLimit | None) -> str:
    if limit is None or limit.is_unlimited:
        return "unlimited"
    parts = []
    if limit.max_per_hour is not None:
        parts.append(f"{limit.max_per_hour}/hour")
    if limit.max_per_day is not None:
        parts.append(f"{limit.max_per_day}/day")
    if limit.min_interval_ms:
        parts.append(f"min gap {limit.min_interval_minutes:g}m")
    return " ".join(parts)
