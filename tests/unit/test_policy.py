"""policy.py: backoff and retry-or-give-up, as tables of cases over a seeded generator."""

from __future__ import annotations

import random

import pytest

from qworker.policy import (
    DEFAULT_BASE_DELAY_S,
    DEFAULT_JITTER,
    DEFAULT_MAX_DELAY_S,
    DEFAULT_MAX_RETRIES,
    MAX_RATE_LIMIT_WAIT_S,
    MIN_RATE_LIMIT_WAIT_S,
    GiveUp,
    Retry,
    RetryPolicy,
    backoff_delay_s,
    clamp_rate_limit_reset_s,
    decide_after_failure,
    finite_number,
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
    ("attempt", "policy", "uncapped_s"),
    [
        (1, NO_JITTER, 60.0),
        (2, NO_JITTER, 120.0),
        (3, NO_JITTER, 240.0),
        (4, NO_JITTER, 480.0),
        (0, NO_JITTER, 60.0),  # nonsense attempt numbers do not go below the base delay
        (-3, NO_JITTER, 60.0),
        (7, NO_JITTER, 3840.0),  # capped at max_delay_s
        (40, NO_JITTER, 60.0 * 2**39),  # no overflow for absurd attempts
        (10_000, DEFAULT, 60.0 * 2**62),
        (1, DEFAULT, 60.0),
        (3, DEFAULT, 240.0),
        (6, DEFAULT, 1920.0),  # 1920 s plus jitter stays under the cap
        (7, DEFAULT, 3840.0),  # the cap applies after the jitter: exactly one hour
        (6, RetryPolicy(jitter=1.0), 1920.0),  # jitter pushes past the cap: capped
        (1, RetryPolicy(base_delay_s=5.0, jitter=0.5), 5.0),
        (3, RetryPolicy(base_delay_s=5.0, max_delay_s=12.0, jitter=0.0), 20.0),
        (3, RetryPolicy(base_delay_s=5.0, max_delay_s=21.0, jitter=0.5), 20.0),
        (2, RetryPolicy(base_delay_s=0.0), 0.0),
    ],
)
def test_backoff_delay_table(attempt: int, policy: RetryPolicy, uncapped_s: float) -> None:
    delay_s = backoff_delay_s(attempt, policy, random.Random(SEED))

    jittered_s = uncapped_s * (1 + policy.jitter * first_draw())
    assert delay_s == pytest.approx(min(jittered_s, policy.max_delay_s))
    # Jitter only ever adds, and by at most the jitter fraction; the cap is never exceeded.
    assert min(uncapped_s, policy.max_delay_s) <= delay_s <= policy.max_delay_s


@pytest.mark.parametrize("jitter", [0.0, 0.1, 0.5, 1.0])
def test_no_delay_ever_exceeds_the_cap(jitter: float) -> None:
    policy = RetryPolicy(jitter=jitter)
    rng = random.Random(SEED)
    delays = [backoff_delay_s(attempt, policy, rng) for attempt in range(1, 30) for _ in range(50)]
    assert max(delays) == DEFAULT_MAX_DELAY_S


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


NOW_S = 1_700_000_000.0


@pytest.mark.parametrize(
    ("reset_at_s", "expected_s"),
    [
        (NOW_S + 600, NOW_S + 600),  # a sensible reset is kept
        (NOW_S + 80_000, NOW_S + 80_000),
        (NOW_S + 5, NOW_S + MIN_RATE_LIMIT_WAIT_S),  # too soon: wait a little anyway
        (NOW_S - 3600, NOW_S + MIN_RATE_LIMIT_WAIT_S),  # already past (clock skew)
        (0.0, NOW_S + MIN_RATE_LIMIT_WAIT_S),
        (-1e300, NOW_S + MIN_RATE_LIMIT_WAIT_S),
        ((NOW_S + 600) * 1000, NOW_S + 600),  # milliseconds passed as seconds
        ((NOW_S - 600) * 1000, NOW_S + MIN_RATE_LIMIT_WAIT_S),
        (NOW_S + 10 * 86_400, NOW_S + MAX_RATE_LIMIT_WAIT_S),  # absurdly far: one day at most
        (1e300, NOW_S + MAX_RATE_LIMIT_WAIT_S),
    ],
)
def test_rate_limit_reset_is_clamped(reset_at_s: float, expected_s: float) -> None:
    assert clamp_rate_limit_reset_s(reset_at_s, NOW_S) == expected_s


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1.0),
        (2.5, 2.5),
        (-3, -3.0),
        (True, None),
        ("60", None),
        (None, None),
        (float("nan"), None),
        (float("inf"), None),
        (float("-inf"), None),
        ([1], None),
    ],
)
def test_finite_number(value: object, expected: float | None) -> None:
    assert finite_number(value) == expected
