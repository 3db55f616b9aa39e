"""Pure decisions about a failed attempt: retry when, or give up. No Redis, no clock of its own."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_RETRIES = 3
DEFAULT_BASE_DELAY_S = 60.0
DEFAULT_MAX_DELAY_S = 3600.0
DEFAULT_JITTER = 0.1
# 2**62 seconds already outlasts any cap: a larger exponent would only overflow the float.
MAX_BACKOFF_EXPONENT = 62

# A remote rate-limit reset already past (clock skew) must not make a job hammer the API ...
MIN_RATE_LIMIT_WAIT_S = 15.0
# ... and one absurdly far must not park it for ever: no remote window is longer than a day.
MAX_RATE_LIMIT_WAIT_S = 86_400.0
# A "reset" this many times the current epoch second is milliseconds passed as seconds.
MILLISECONDS_FACTOR = 100


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
    """Delay before retry number ``attempt`` (1-based): exponential, jittered upwards so that
    jobs failing together do not come back together, then capped (the cap is a promise: no
    retry waits longer than ``max_delay_s``)."""
    exponent = min(max(attempt - 1, 0), MAX_BACKOFF_EXPONENT)
    jittered_s = policy.base_delay_s * (2**exponent) * (1.0 + policy.jitter * rng.random())
    return float(min(jittered_s, policy.max_delay_s))


def clamp_rate_limit_reset_s(reset_at_s: float, now_s: float) -> float:
    """When a rate-limited job may run again (epoch seconds), from the reset a job reported:
    at least ``MIN_RATE_LIMIT_WAIT_S`` and at most ``MAX_RATE_LIMIT_WAIT_S`` from now, and a
    reset given in milliseconds read as such. ``reset_at_s`` must be a finite number."""
    if reset_at_s > now_s * MILLISECONDS_FACTOR:
        reset_at_s /= 1000
    return min(max(reset_at_s, now_s + MIN_RATE_LIMIT_WAIT_S), now_s + MAX_RATE_LIMIT_WAIT_S)


def finite_number(value: object) -> float | None:
    """``value`` as a float if it is a finite real number (not a bool), else None: what a job
    reports (a reset time, a retry delay) is checked before qworker computes with it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


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
