"""policy.py: backoff and retry-or-give-up, as tables of cases over a seeded generator."""

from __future__ import annotations

import random

import pytest

from qworker.policy import (
    DEFAULT_BASE_DELAY_S,
    DEFAULT_JITTER,
    DEFAULT_MAX_DELAY_S,
    DEFAULT_MAX_RETRIES,
    GiveUp,
    Retry,
    RetryPolicy,
    backoff_delay_s,
    decide_after_failure,
)

SEED = 20240601
DEFAULT = RetryPolicy()
NO_JITTER = RetryPolicy(jitter=0.0)


def first_draw(seed: int = SEED) -> float:
    return random.Random(seed).random()


def test_defaults_are_the_seeds_1_2_4_minutes_and_3_retries() -> None:
    assert (DEFAULT.max_retries, DEFAULT.base_delay_s) == (3, 60.0)
    assert (DEFAULT_MAX_RETRIES, DEFAULT_BASE_DELAY_S) == (3, 60.0)
    assert (DEFAULT.max_delay_s, DEFAULT.jitter) == (DEFAULT_MAX_DELAY_S, DEFAULT_JITTER)
    delays = [backoff_delay_s(attempt, NO_JITTER, random.Random(SEED)) for attempt in (1, 2, 3)]
    assert delays == [60.0, 120.0, 240.0]


@pytest.mark.parametrize(
    ("attempt", "policy", "undelayed_s"),
    [
        (1, NO_JITTER, 60.0),
        (2, NO_JITTER, 120.0),
        (3, NO_JITTER, 240.0),
        (4, NO_JITTER, 480.0),
        (0, NO_JITTER, 60.0),  # nonsense attempt numbers do not go below the base delay
        (-3, NO_JITTER, 60.0),
        (7, NO_JITTER, 3600.0),  # 3840 s capped at max_delay_s
        (40, NO_JITTER, 3600.0),  # no overflow for absurd attempts
        (1, DEFAULT, 60.0),
        (3, DEFAULT, 240.0),
        (7, DEFAULT, 3600.0),  # the cap applies before the jitter
        (1, RetryPolicy(base_delay_s=5.0, jitter=0.5), 5.0),
        (3, RetryPolicy(base_delay_s=5.0, max_delay_s=12.0, jitter=0.0), 12.0),
        (2, RetryPolicy(base_delay_s=0.0), 0.0),
    ],
)
def test_backoff_delay_table(attempt: int, policy: RetryPolicy, undelayed_s: float) -> None:
    delay_s = backoff_delay_s(attempt, policy, random.Random(SEED))

    assert delay_s == pytest.approx(undelayed_s * (1 + policy.jitter * first_draw()))
    # Jitter only ever adds, and by at most the jitter fraction.
    assert undelayed_s <= delay_s <= undelayed_s * (1 + policy.jitter)


def test_jitter_spreads_delays_within_bounds() -> None:
    rng = random.Random(SEED)
    delays = [backoff_delay_s(1, DEFAULT, rng) for _ in range(1000)]

    assert all(60.0 <= d < 66.0 for d in delays)
    assert max(delays) - min(delays) > 5.0  # spread, not one value repeated
    assert len(set(delays)) > 990


def test_same_seed_same_delays() -> None:
    first = [backoff_delay_s(a, DEFAULT, random.Random(SEED)) for a in range(1, 6)]
    again = [backoff_delay_s(a, DEFAULT, random.Random(SEED)) for a in range(1, 6)]
    assert first == again


@pytest.mark.parametrize(
    ("attempts", "policy", "options", "expected"),
    [
        # The seed's policy: attempts 1-3 fail and are retried, the 4th failure gives up.
        (1, NO_JITTER, {}, Retry(60.0)),
        (2, NO_JITTER, {}, Retry(120.0)),
        (3, NO_JITTER, {}, Retry(240.0)),
        (4, NO_JITTER, {}, GiveUp("failed 4 times (max_retries=3)")),
        (9, NO_JITTER, {}, GiveUp("failed 9 times (max_retries=3)")),
        # A permanent failure gives up at once, whatever else is said.
        (1, NO_JITTER, {"permanent": True}, GiveUp("permanent failure")),
        (1, NO_JITTER, {"permanent": True, "retry_after_s": 5}, GiveUp("permanent failure")),
        # retry_after replaces the backoff (no jitter), but not the retry budget.
        (1, NO_JITTER, {"retry_after_s": 5.0}, Retry(5.0)),
        (1, DEFAULT, {"retry_after_s": 5.0}, Retry(5.0)),
        (3, NO_JITTER, {"retry_after_s": 900.0}, Retry(900.0)),
        (1, NO_JITTER, {"retry_after_s": 0.0}, Retry(0.0)),
        (1, NO_JITTER, {"retry_after_s": -10.0}, Retry(0.0)),  # a reset in the past: now
        (4, NO_JITTER, {"retry_after_s": 5.0}, GiveUp("failed 4 times (max_retries=3)")),
        # Other budgets.
        (1, RetryPolicy(max_retries=0), {}, GiveUp("failed 1 times (max_retries=0)")),
        (5, RetryPolicy(max_retries=5, jitter=0.0), {}, Retry(960.0)),
        (6, RetryPolicy(max_retries=5, jitter=0.0), {}, GiveUp("failed 6 times (max_retries=5)")),
    ],
)
def test_decide_after_failure_table(
    attempts: int, policy: RetryPolicy, options: dict[str, object], expected: Retry | GiveUp
) -> None:
    decision = decide_after_failure(attempts, policy, random.Random(SEED), **options)  # type: ignore[arg-type]
    assert decision == expected


def test_decide_after_failure_jitters_the_backoff() -> None:
    decision = decide_after_failure(2, DEFAULT, random.Random(SEED))
    assert decision == Retry(120.0 * (1 + DEFAULT_JITTER * first_draw()))


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, RetryPolicy()),
        ({"max_retries": 3, "base_delay": 60}, RetryPolicy()),
        ({"max_retries": "5", "base_delay": "2.5"}, RetryPolicy(max_retries=5, base_delay_s=2.5)),
        ({"max_delay": 30, "jitter": 0}, RetryPolicy(max_delay_s=30.0, jitter=0.0)),
        ({"unknown": 1}, RetryPolicy()),
    ],
)
def test_retry_policy_from_a_jobs_retry_config(
    config: dict[str, object], expected: RetryPolicy
) -> None:
    assert RetryPolicy.from_config(config) == expected
