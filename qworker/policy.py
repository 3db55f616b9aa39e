"""Pure decisions about a failed attempt: retry when, or give up. No Redis, no clock of its own."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_RETRIES = 3
DEFAULT_BASE_DELAY_S = 60.0
DEFAULT_MAX_DELAY_S = 3600.0
DEFAULT_JITTER = 0.1


@dataclass(frozen=True)
class RetryPolicy:
    """How a job type retries: ``base_delay_s * 2**(attempt-1)``, capped, plus up to ``jitter``.

    With the defaults a job runs once and is retried 3 times (after 1, 2 and 4 minutes);
    the fourth failure sends it to the dead-letter queue.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    base_delay_s: float = DEFAULT_BASE_DELAY_S
    max_delay_s: float = DEFAULT_MAX_DELAY_S
    jitter: float = DEFAULT_JITTER

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RetryPolicy:
        """Read a job's ``get_retry_config()`` dict (``max_retries``, ``base_delay`` seconds,
        optional ``max_delay`` seconds and ``jitter`` fraction)."""
        return cls(
            max_retries=int(config.get("max_retries", DEFAULT_MAX_RETRIES)),
            base_delay_s=float(config.get("base_delay", DEFAULT_BASE_DELAY_S)),
            max_delay_s=float(config.get("max_delay", DEFAULT_MAX_DELAY_S)),
            jitter=float(config.get("jitter", DEFAULT_JITTER)),
        )


@dataclass(frozen=True)
class Retry:
    delay_s: float


@dataclass(frozen=True)
class GiveUp:
    reason: str


def backoff_delay_s(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Delay before retry number ``attempt`` (1-based): exponential, capped, jittered upwards
    so that jobs failing together do not come back together."""
    exponent = max(attempt - 1, 0)
    delay_s = min(policy.base_delay_s * (2**exponent), policy.max_delay_s)
    return float(delay_s * (1.0 + policy.jitter * rng.random()))


def decide_after_failure(
    attempts: int,
    policy: RetryPolicy,
    rng: random.Random,
    *,
    permanent: bool = False,
    retry_after_s: float | None = None,
) -> Retry | GiveUp:
    """What to do once attempt number ``attempts`` (1-based, this failure included) failed."""
    if permanent:
        return GiveUp("permanent failure")
    if attempts > policy.max_retries:
        return GiveUp(f"failed {attempts} times (max_retries={policy.max_retries})")
    if retry_after_s is not None:
        return Retry(max(retry_after_s, 0.0))
    return Retry(backoff_delay_s(attempts, policy, rng))
