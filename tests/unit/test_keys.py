"""keys.py: every key name, with and without a namespace."""

from __future__ import annotations

import re

import pytest
from redis.crc import key_slot

from qworker.keys import DEFAULT_PRIORITY, PRIORITIES, QueueKeys

# Without a namespace the keys are exactly the seed's names.
SEED_NAMES = {
    "priority(1)": "jobs_priority_1",
    "priority(4)": "jobs_priority_4",
    "retry": "jobs_retry",
    "dead_letter": "jobs_dead_letter",
}


def names(keys: QueueKeys) -> dict[str, str]:
    """Every key of one namespace, by what it is."""
    return {
        "priority(1)": keys.priority(1),
        "priority(4)": keys.priority(4),
        "retry": keys.retry,
        "scheduled": keys.scheduled,
        "parked": keys.parked,
        "dead_letter": keys.dead_letter,
        "inflight": keys.inflight,
        "wakeup": keys.wakeup,
        "stats": keys.stats,
        "seq": keys.seq,
        "fence": keys.fence,
        "workers": keys.workers,
        "rate_keys": keys.rate_keys,
        "pauses": keys.pauses,
        "cancel_requests": keys.cancel_requests,
        "maintenance_turn": keys.maintenance_turn,
        "recent_done": keys.recent("done"),
        "recent_canceled": keys.recent("canceled"),
        "waiting": keys.waiting,
        "dependents": keys.dependents("0123abcd"),
        "job": keys.job("0123abcd"),
        "rate_log": keys.rate_log("tweet"),
        "rate_blocked": keys.rate_blocked("tweet"),
        "worker": keys.worker("w1"),
        "worker_wakeup": keys.worker_wakeup("w1"),
        "held": keys.held("tweet"),
        "unique": keys.unique("k1"),
        "signal": keys.signal("0123abcd"),
        "lanes": keys.lanes,
        "lane": keys.lane("tweet", 2),
        "lane_wakeup": keys.lane_wakeup("tweet"),
    }


EXPECTED_WITHOUT_NAMESPACE = {
    **SEED_NAMES,
    "scheduled": "jobs_scheduled",
    "parked": "jobs_parked",
    "inflight": "jobs_inflight",
    "wakeup": "jobs_wakeup",
    "stats": "jobs_stats",
    "seq": "jobs_seq",
    "fence": "jobs_fence",
    "workers": "jobs_workers",
    "rate_keys": "jobs_rate_keys",
    "pauses": "jobs_pauses",
    "cancel_requests": "jobs_cancel_requests",
    "maintenance_turn": "jobs_maintenance_turn",
    "recent_done": "jobs_recent_done",
    "recent_canceled": "jobs_recent_canceled",
    "job": "jobs_data:0123abcd",
    "rate_log": "jobs_rate:tweet",
    "rate_blocked": "jobs_rate:tweet:blocked_until",
    "worker": "jobs_worker:w1",
    "worker_wakeup": "jobs_worker:w1:wakeup",
    "held": "jobs_held:tweet",
    "unique": "jobs_unique:k1",
    "signal": "jobs_signal:0123abcd",
    "lanes": "jobs_lanes",
    "lane": "jobs_lane:tweet:2",
    "lane_wakeup": "jobs_lane_wakeup:tweet",
    "waiting": "jobs_waiting",
    "dependents": "jobs_dependents:0123abcd",
}


def test_without_namespace_the_keys_are_the_seeds_names() -> None:
    keys = QueueKeys()
    assert keys.prefix == ""
    assert names(keys) == EXPECTED_WITHOUT_NAMESPACE
    assert keys.priorities == (
        "jobs_priority_1",
        "jobs_priority_2",
        "jobs_priority_3",
        "jobs_priority_4",
    )


@pytest.mark.parametrize("namespace", ["app", "{qw}", "a:b", "staging-2"])
def test_a_namespace_prefixes_every_key(namespace: str) -> None:
    keys = QueueKeys(namespace)
    assert keys.prefix == f"{namespace}:"
    expected = {what: f"{namespace}:{name}" for what, name in EXPECTED_WITHOUT_NAMESPACE.items()}
    assert names(keys) == expected
    assert keys.priorities == tuple(f"{namespace}:jobs_priority_{p}" for p in PRIORITIES)


def test_job_and_rate_keys_are_their_prefix_plus_the_name() -> None:
    """The Lua scripts build job keys as prefix .. id: the two must agree."""
    keys = QueueKeys("app")
    assert keys.job("x") == keys.job_prefix + "x"
    assert keys.rate_log("tweet") == keys.rate_prefix + "tweet"
    assert keys.job_prefix == "app:jobs_data:"
    assert keys.rate_prefix == "app:jobs_rate:"


def test_priorities_are_one_to_four_urgent_first() -> None:
    assert PRIORITIES == (1, 2, 3, 4)
    assert DEFAULT_PRIORITY in PRIORITIES


@pytest.mark.parametrize("namespace", ["", "app"])
def test_every_key_is_qworkers_own(namespace: str) -> None:
    """Every name starts with ``jobs_`` after the prefix, so qworker never touches (nor
    clears) a key it did not create, even without a namespace."""
    keys = QueueKeys(namespace)
    every = [*names(keys).values(), *keys.static_keys]
    assert all(key.removeprefix(keys.prefix).startswith("jobs_") for key in every)
    assert len(set(keys.static_keys)) == len(keys.static_keys)


def test_static_keys_hold_every_fixed_key() -> None:
    keys = QueueKeys("app")
    fixed = {
        name
        for what, name in names(keys).items()
        if what
        not in {
            "job",
            "rate_log",
            "rate_blocked",
            "worker",
            "worker_wakeup",
            "held",
            "unique",
            "signal",
            "lane",
            "lane_wakeup",
            "dependents",
        }
    }
    fixed |= set(keys.priorities)
    assert fixed == set(keys.static_keys)


def redis_glob_matches(pattern: str, key: str) -> bool:
    """Redis's glob for SCAN MATCH, reduced to what key patterns use: ``*``, ``?`` and
    backslash escapes (an unescaped ``[`` would open a class: fail loudly instead)."""
    parts, chars = [], iter(pattern)
    for char in chars:
        if char == "\\":
            parts.append(re.escape(next(chars)))
        elif char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char in "[]":
            raise AssertionError(f"unescaped {char!r} in {pattern!r}")
        else:
            parts.append(re.escape(char))
    return re.fullmatch("".join(parts), key, flags=re.DOTALL) is not None


def matched_by_scan(keys: QueueKeys, key: str) -> bool:
    return any(redis_glob_matches(pattern, key) for pattern in keys.scan_patterns)


@pytest.mark.parametrize(
    ("namespace", "look_alike"),
    [("app", "app2"), ("", "x"), ("a*b", "aXb"), ("q?", "qq"), ("[x]", "x"), ("b\\s", "bs")],
)
def test_scan_patterns_match_the_namespaces_dynamic_keys_only(
    namespace: str, look_alike: str
) -> None:
    keys = QueueKeys(namespace)
    dynamic = [keys.job("j1"), keys.rate_log("tweet"), keys.rate_blocked("tweet"), keys.worker("w")]
    others = [QueueKeys(look_alike).job("j1"), QueueKeys(look_alike).worker("w"), keys.retry]
    if namespace:
        others.append(QueueKeys().job("j1"))

    assert all(matched_by_scan(keys, key) for key in dynamic), keys.scan_patterns
    assert not any(matched_by_scan(keys, key) for key in others), keys.scan_patterns


def test_a_hash_tag_namespace_puts_every_key_in_one_cluster_slot() -> None:
    keys = QueueKeys("{qw}")
    every = [*names(keys).values(), *keys.static_keys]
    assert {key_slot(key.encode()) for key in every} == {key_slot(b"{qw}")}


def test_keys_are_immutable_values() -> None:
    assert QueueKeys("app") == QueueKeys("app")
    with pytest.raises(AttributeError):
        QueueKeys("app").namespace = "other"  # type: ignore[misc]
