"""qworker: a crash-safe, rate-limited, type-safe job queue on Redis.

Importing the package is cheap: the worker, the service and the tweet job (which needs tweepy)
load on first use, because cron lines run the CLI often.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from qworker.errors import PermanentJobError, RateLimitedJobError, RetryableJobError
    from qworker.jobs.base import BaseJob, BaseJobParams, JobFactory
    from qworker.jobs.tweet import TweetJob, TweetJobParams
    from qworker.rate_limiter import RateLimiter
    from qworker.service import QueueService
    from qworker.sync_service import SyncQueueService
    from qworker.worker import Worker

_LAZY = {
    "BaseJob": "qworker.jobs.base",
    "BaseJobParams": "qworker.jobs.base",
    "JobFactory": "qworker.jobs.base",
    "QueueService": "qworker.service",
    "SyncQueueService": "qworker.sync_service",
    "Worker": "qworker.worker",
    "RateLimiter": "qworker.rate_limiter",
    "TweetJob": "qworker.jobs.tweet",
    "TweetJobParams": "qworker.jobs.tweet",
    "PermanentJobError": "qworker.errors",
    "RetryableJobError": "qworker.errors",
    "RateLimitedJobError": "qworker.errors",
}

__all__ = [
    "BaseJob",
    "BaseJobParams",
    "JobFactory",
    "PermanentJobError",
    "QueueService",
    "RateLimitedJobError",
    "RateLimiter",
    "RetryableJobError",
    "SyncQueueService",
    "TweetJob",
    "TweetJobParams",
    "Worker",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qworker' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
