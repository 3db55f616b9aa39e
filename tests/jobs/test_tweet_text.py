"""Weighted length against twitter-text's official conformance cases, and a few of our own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from qworker.jobs.tweet_text import V2, V3, TextConfig, parse_tweet, url_spans, weighted_length

DATA = Path(__file__).parent / "data" / "twitter_text_weighted.yml"
SECTIONS = {
    "WeightedTweetsCounterTest": V2,
    "WeightedTweetsWithDiscountedEmojiCounterTest": V3,
    "UnicodeDirectionalMarkerCounterTest": V3,
}


def _cases() -> list[Any]:
    suite = yaml.safe_load(DATA.read_text(encoding="utf-8"))["tests"]
    assert set(suite) == set(SECTIONS)
    return [
        pytest.param(case, SECTIONS[section], id=f"{section}: {case['description']}")
        for section in SECTIONS
        for case in suite[section]
    ]


CASES = _cases()


def test_the_shipped_suite_is_whole() -> None:
    # 20 cases of v2, 21 of v3, 2 of directional markers, as the file was taken.
    assert len(CASES) == 43


@pytest.mark.parametrize(("case", "config"), CASES)
def test_conformance(case: dict[str, Any], config: TextConfig) -> None:
    parsed = parse_tweet(case["text"], config)
    expected = case["expected"]
    assert parsed.weighted_length == expected["weightedLength"]
    assert parsed.valid is expected["valid"]
    assert parsed.permillage == expected["permillage"]


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("の" * 140, 280),  # CJK weighs 2: 140 of them fill a post
        ("の" * 100 + " https://example.com/a/very/long/path/that/is/long", 224),
        ("see example.com.", 28),  # a known TLD without a scheme is a URL; the dot is not
        ("version 1.2", 11),  # not a URL
        ("e\u0301", 1),  # NFC: one character
        ("\u2764\ufe0f", 2),  # an emoji with its presentation selector
        ("\U0001f1ef\U0001f1f5", 2),  # a flag
        ("1\ufe0f\u20e3", 2),  # a keycap
        ("\u00a9 2026", 7),  # twitter-text counts (c) as an emoji too
    ],
)
def test_weighted_length(text: str, length: int) -> None:
    assert weighted_length(text) == length


def test_urls_are_reported() -> None:
    assert parse_tweet("read https://example.com now").has_url
    assert not parse_tweet("no link here").has_url
    assert url_spans("(https://example.com/x)") == [(1, 22)]


def test_a_longer_limit_is_a_configuration() -> None:
    long_text = "x" * 1000
    assert not parse_tweet(long_text).valid
    assert parse_tweet(long_text, TextConfig(max_weighted_length=25_000)).valid
