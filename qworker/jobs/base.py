"""BaseJobParams, BaseJob and JobFactory: the contract between qworker and a job type.

A job type is two classes: a pydantic ``BaseJobParams`` subclass with a ``job_type`` literal, and a
``BaseJob`` subclass that executes it. Register them with ``JobFactory.register_job_type`` in the
job's own module; the worker imports that module (``--import``, ``QWORKER_JOB_MODULES`` or the
``qworker.jobs`` entry-point group), so a new job type never changes qworker itself.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, overload

from pydantic import BaseModel, ConfigDict, ValidationError

from qworker.errors import UnknownJobType, ValidationFailed
from qworker.policy import DEFAULT_BASE_DELAY_S, DEFAULT_MAX_RETRIES

if TYPE_CHECKING:
    from qworker.clients import ClientContainer
    from qworker.config import Settings
    from qworker.rate_limiter import RateLimit
    from qworker.service import QueueService
    from qworker.sync_service import SyncQueueService

ENTRY_POINT_GROUP = "qworker.jobs"

# Built-in job types, imported only when first needed (the tweet job pulls in tweepy).
_BUILTIN_MODULES: dict[str, str] = {"tweet": "qworker.jobs.tweet"}


class BaseJobParams(BaseModel):
    """Parameters of one job. Subclasses narrow ``job_type`` to a ``Literal``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_type: str


P = TypeVar("P", bound=BaseJobParams)


class JobContext:
    """What a running job may know about itself and persist across attempts.

    ``checkpoints`` survive a crash: a job that records e.g. the id of the tweet it posted
    finds it again when it is run a second time, and can finish without posting twice.
    The worker provides a context that writes to Redis; this default keeps them in memory.
    """

    def __init__(
        self,
        job_id: str = "",
        attempt: int = 1,
        checkpoints: dict[str, str] | None = None,
        *,
        schedule: str | None = None,
        scheduled_for: datetime | None = None,
        dependency_results: dict[str, Any] | None = None,
    ) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.checkpoints: dict[str, str] = dict(checkpoints or {})
        # The recurring schedule that enqueued this job (None for any other job), and the due
        # time (UTC) it was enqueued for: a digest job knows which Monday it covers.
        self.schedule = schedule
        self.scheduled_for = scheduled_for
        # The results of the jobs this one waited for (enqueue --after, flows.py): job id ->
        # result, None for one that failed (a job with on_dep_fail="run" runs anyway).
        self.dependency_results: dict[str, Any] = dict(dependency_results or {})
        self.dry_run = False

    async def checkpoint(self, name: str, value: str) -> None:
        """Record ``name=value`` on the job before going on (raises LeaseLost if not owned)."""
        self.checkpoints[name] = value

    async def record_dry_run(self) -> None:
        """Record on the job that a dry run did not do its work (``job show``, ``stats``)."""
        self.dry_run = True

    @contextlib.contextmanager
    def cancel_shield(self) -> Iterator[None]:
        """A block an operator's cancel does not interrupt: a cancel that arrives inside it
        reaches the job (as ``asyncio.CancelledError``) only after the block, if the job is
        still running then. Wrap a side effect and the checkpoint recording it, e.g. a post
        that must not be reported canceled once made. A stop or a timeout still interrupts."""
        yield


class BaseJob(ABC, Generic[P]):
    """One executable job. Subclasses implement ``execute`` and usually nothing else."""

    params_cls: ClassVar[type[BaseJobParams]]
    # Seconds one attempt may run before it is cancelled and counted as failed.
    timeout_s: ClassVar[float | None] = 300.0

    def __init__(self, params: P, config: Settings, clients: ClientContainer) -> None:
        self.params = params
        self.config = config
        self.clients = clients
        self.context = JobContext()

    @abstractmethod
    async def execute(self) -> Any:
        """Do the work. Return False or raise to fail the attempt (see ``qworker.errors``).

        True or None succeed; any other JSON-serialisable value succeeds and is kept as the
        job's result (``job show``, ``QueueService.get_job``), up to QWORKER_MAX_RESULT_BYTES.
        An operator's cancel arrives as ``asyncio.CancelledError``: catch it to clean up, and
        let it go on (the job then ends canceled, never retried)."""

    def get_rate_limit_key(self) -> str:
        """Jobs sharing a key share one rate limiter across every worker."""
        return self.params.job_type

    def get_rate_limit(self) -> RateLimit | None:
        """The limits of this job's key, or None for no limit."""
        return None

    def get_retry_config(self) -> dict[str, Any]:
        return {"max_retries": DEFAULT_MAX_RETRIES, "base_delay": DEFAULT_BASE_DELAY_S}

    def describe(self) -> str:
        """A short human summary for logs; never include secrets."""
        return self.params.job_type

    @classmethod
    @overload
    def add_to_queue(
        cls,
        queue_service: QueueService,
        *,
        priority: int = 3,
        delay_s: float | None = None,
        run_at_ms: int | None = None,
        **params: Any,
    ) -> Coroutine[Any, Any, str]: ...

    @classmethod
    @overload
    def add_to_queue(
        cls,
        queue_service: SyncQueueService,
        *,
        priority: int = 3,
        delay_s: float | None = None,
        run_at_ms: int | None = None,
        **params: Any,
    ) -> str: ...

    @classmethod
    def add_to_queue(
        cls,
        queue_service: QueueService | SyncQueueService,
        *,
        priority: int = 3,
        delay_s: float | None = None,
        run_at_ms: int | None = None,
        **params: Any,
    ) -> Coroutine[Any, Any, str] | str:
        """Validate ``params`` and enqueue a job of this type; returns the job id (with a
        QueueService, to be awaited: ``await TweetJob.add_to_queue(service, ...)``; with a
        SyncQueueService, at once)."""
        job_type = cls.params_cls.model_fields["job_type"].default
        validated = JobFactory.validate_params({"job_type": job_type, **params})
        return queue_service.add_job(
            validated, priority=priority, delay_s=delay_s, run_at_ms=run_at_ms
        )


@dataclass(frozen=True)
class JobType:
    name: str
    job_cls: type[BaseJob[Any]]
    params_cls: type[BaseJobParams]


@dataclass
class _Registry:
    types: dict[str, JobType] = field(default_factory=dict)
    entry_points_loaded: bool = False


class JobFactory:
    """Registry of job types and the one place that turns job data into a validated job."""

    _registry: ClassVar[_Registry] = _Registry()

    @classmethod
    def register_job_type(
        cls, name: str, job_cls: type[BaseJob[Any]], params_cls: type[BaseJobParams]
    ) -> None:
        job_cls.params_cls = params_cls
        cls._registry.types[name] = JobType(name, job_cls, params_cls)

    @classmethod
    def unregister_job_type(cls, name: str) -> None:
        cls._registry.types.pop(name, None)

    @classmethod
    def get(cls, name: str) -> JobType:
        job_type = cls._registry.types.get(name)
        if job_type is None:
            job_type = cls._load_lazily(name)
        if job_type is None:
            raise UnknownJobType(name, cls.known_types())
        return job_type

    @classmethod
    def is_loaded(cls, name: str) -> bool:
        """Whether a job type of that name is registered now (without loading anything)."""
        return name in cls._registry.types

    @classmethod
    def known_types(cls) -> list[str]:
        return sorted(set(cls._registry.types) | set(_BUILTIN_MODULES))

    @classmethod
    def _load_lazily(cls, name: str) -> JobType | None:
        module = _BUILTIN_MODULES.get(name)
        if module is not None:
            importlib.import_module(module)
        elif not cls._registry.entry_points_loaded:
            load_entry_points()
        return cls._registry.types.get(name)

    @classmethod
    def validate_params(cls, job_data: dict[str, Any] | BaseJobParams) -> BaseJobParams:
        """Validate raw job data into its params model; the error names every bad field."""
        if isinstance(job_data, BaseJobParams):
            return job_data
        if not isinstance(job_data, dict):
            raise ValidationFailed(f"job data must be a JSON object, not {type(job_data).__name__}")
        name = job_data.get("job_type")
        if not isinstance(name, str) or not name:
            raise ValidationFailed('job data has no "job_type" (e.g. {"job_type": "tweet", ...})')
        job_type = cls.get(name)
        try:
            return job_type.params_cls.model_validate(job_data)
        except ValidationError as exc:
            raise ValidationFailed(
                f"invalid {name} job: {describe_validation_error(exc)}"
            ) from None

    @classmethod
    def parse_payload(cls, job_type: str | None, payload: str) -> BaseJobParams:
        """Validate a stored payload. Jobs enqueued by qworker carry their type beside the
        payload, so pydantic parses the JSON directly; hand-pushed ones are decoded first."""
        if not job_type:
            return cls.parse_json(payload)
        try:
            return cls.get(job_type).params_cls.model_validate_json(payload)
        except ValidationError as exc:
            raise ValidationFailed(
                f"invalid {job_type} job: {describe_validation_error(exc)}"
            ) from None

    @classmethod
    def parse_json(cls, payload: str | bytes) -> BaseJobParams:
        try:
            job_data = json.loads(payload)
        except ValueError as exc:
            raise ValidationFailed(f"payload is not valid JSON: {exc}") from None
        except RecursionError:
            raise ValidationFailed("payload is not valid JSON: nested too deeply") from None
        return cls.validate_params(job_data)

    @classmethod
    def create_job(
        cls,
        job_data: dict[str, Any] | BaseJobParams,
        config: Settings,
        clients: ClientContainer,
    ) -> BaseJob[Any]:
        params = cls.validate_params(job_data)
        return cls.get(params.job_type).job_cls(params, config, clients)


def describe_validation_error(exc: ValidationError) -> str:
    """One line: ``field: reason; field: reason`` with pydantic's prefixes removed."""
    parts = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        # A message that already names its field ("content is 301 characters; ...") stands alone.
        named = not location or message.startswith(f"{location} ")
        parts.append(message if named else f"{location}: {message}")
    return "; ".join(parts)


def load_job_modules(names: list[str]) -> None:
    """Import plugin modules; each registers its job types when imported. The working
    directory is searched first, as ``python -m`` would (and rq, arq, Dramatiq and Celery do):
    ``qworker work --import myjobs`` next to ``myjobs.py`` finds it."""
    if names:
        here = os.getcwd()
        if here not in sys.path and "" not in sys.path:
            sys.path.insert(0, here)
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ValidationFailed(f"cannot import job module {name!r}: {exc}") from None


def load_entry_points() -> None:
    """Load the ``qworker.jobs`` entry points: each names a module or a BaseJob subclass."""
    from importlib.metadata import entry_points

    JobFactory._registry.entry_points_loaded = True
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        loaded = entry_point.load()
        if isinstance(loaded, type) and issubclass(loaded, BaseJob):
            params_cls = loaded.params_cls
            name = params_cls.model_fields["job_type"].default
            JobFactory.register_job_type(name, loaded, params_cls)
