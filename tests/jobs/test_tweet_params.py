"""TweetJobParams validation, the credentials check, and reading X's rate-limit headers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from qworker.errors import ValidationFailed
from qworker.jobs.base import JobFactory
from qworker.jobs.tweet import (
    CREDENTIAL_ENV_VARS,
    DEFAULT_RATE_LIMIT_WAIT_S,
    MIN_RATE_LIMIT_WAIT_S,
    TweetJobParams,
    missing_credentials,
    rate_limit_reset_at,
)
from tests.jobs.support import make_settings, settings_from_environment


def invalid(**data: Any) -> str:
    """The one-line message a user sees for ``data``."""
    with pytest.raises(ValidationFailed) as caught:
        JobFactory.validate_params({"job_type": "tweet", **data})
    return str(caught.value)


# -- content ---------------------------------------------------------------------------------------
def test_content_of_exactly_280_characters_is_accepted() -> None:
    assert TweetJobParams(content="x" * 280).content == "x" * 280


def test_content_of_281_characters_says_by_how_much() -> None:
    message = invalid(content="x" * 281)
    assert message.startswith("invalid tweet job: content has weighted length 281 > 280 (")


def test_content_counts_characters_not_bytes() -> None:
    assert TweetJobParams(content="é" * 280).content == "é" * 280
    # X normalises to NFC first: "e" + a combining accent is one character, not two.
    decomposed = "e\u0301" * 280
    assert TweetJobParams(content=decomposed).content == decomposed


@pytest.mark.parametrize(
    ("content", "expected"),
    [("", "content is empty"), ("  \n\t", "content is only whitespace")],
)
def test_blank_content_is_refused(content: str, expected: str) -> None:
    assert expected in invalid(content=content)


def test_content_is_required_and_must_be_text() -> None:
    assert "content: Field required" in invalid()
    assert "content: Input should be a valid string" in invalid(content=42)


# -- media ids and reply_to ------------------------------------------------------------------------
def test_up_to_four_media_ids() -> None:
    params = TweetJobParams(content="hi", media_ids=["1", "22", "333", "1445880548472328192"])
    assert params.media_ids == ["1", "22", "333", "1445880548472328192"]


def test_five_media_ids_say_the_limit() -> None:
    message = invalid(content="hi", media_ids=["1", "2", "3", "4", "5"])
    assert "media_ids has 5 ids; the limit is 4" in message


@pytest.mark.parametrize("bad", ["abc", "12a", "", " 12", "-5", "١٢", "12345678901234567890"])
def test_media_ids_are_digits_only(bad: str) -> None:
    message = invalid(content="hi", media_ids=["123", bad])
    assert f"media_ids[1] is {bad!r}; media ids are digits only" in message


def test_integer_media_ids_are_stored_as_strings() -> None:
    params = TweetJobParams.model_validate({"content": "hi", "media_ids": [123, "456"]})
    assert params.media_ids == ["123", "456"]


def test_no_media_ids() -> None:
    assert TweetJobParams(content="hi").media_ids is None
    assert TweetJobParams(content="hi", media_ids=[]).media_ids is None


def test_reply_to_is_a_tweet_id() -> None:
    assert TweetJobParams(content="hi", reply_to="1445880548472328192").reply_to is not None
    assert TweetJobParams.model_validate({"content": "hi", "reply_to": 99}).reply_to == "99"
    assert "reply_to is 'abc'; a tweet id is digits only" in invalid(content="hi", reply_to="abc")


def test_unknown_fields_and_other_job_types_are_refused() -> None:
    assert "colour: unknown field" in invalid(content="hi", colour="red")
    with pytest.raises(ValidationError):
        TweetJobParams.model_validate({"job_type": "email", "content": "hi"})


def test_params_round_trip_through_json() -> None:
    params = TweetJobParams(content="héllo 👋", media_ids=["1"], reply_to="2")
    stored = params.model_dump_json()
    assert JobFactory.parse_payload("tweet", stored) == params
    assert JobFactory.parse_json(stored) == params


# -- credentials -----------------------------------------------------------------------------------
def test_missing_credentials_names_the_environment_variables() -> None:
    settings = make_settings(twitter_api_secret=None, twitter_access_token_secret="  ")
    assert missing_credentials(settings) == ["TWITTER_API_SECRET", "TWITTER_ACCESS_TOKEN_SECRET"]


def test_no_credentials_missing() -> None:
    assert missing_credentials(make_settings()) == []


def test_the_names_are_the_ones_settings_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    for index, (_field, env_var) in enumerate(CREDENTIAL_ENV_VARS):
        monkeypatch.setenv(env_var, f"value-{index}")
    settings = settings_from_environment()
    assert missing_credentials(settings) == []
    for index, (field, _env_var) in enumerate(CREDENTIAL_ENV_VARS):
        assert getattr(settings, field).get_secret_value() == f"value-{index}"


def test_all_missing() -> None:
    settings = settings_from_environment()
    assert missing_credentials(settings) == [env_var for _field, env_var in CREDENTIAL_ENV_VARS]


# -- rate-limit headers ----------------------------------------------------------------------------
NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # Only the 15-minute window is exhausted.
        ({"x-rate-limit-remaining": "0", "x-rate-limit-reset": "1700000600"}, 1_700_000_600),
        # The daily user cap is exhausted: its reset wins even though the window's is sooner.
        (
            {
                "x-rate-limit-remaining": "10",
                "x-rate-limit-reset": "1700000600",
                "x-user-limit-24hour-remaining": "0",
                "x-user-limit-24hour-reset": "1700040000",
            },
            1_700_040_000,
        ),
        # Two exhausted limits: wait for the later one.
        (
            {
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": "1700000600",
                "x-app-limit-24hour-remaining": "0",
                "x-app-limit-24hour-reset": "1700030000",
                "x-user-limit-24hour-remaining": "3",
                "x-user-limit-24hour-reset": "1700080000",
            },
            1_700_030_000,
        ),
        # Nothing says "0 remaining": trust the window's reset.
        ({"x-rate-limit-remaining": "5", "x-rate-limit-reset": "1700000700"}, 1_700_000_700),
        # No usable header at all: one window from now.
        ({}, NOW + DEFAULT_RATE_LIMIT_WAIT_S),
        ({"x-rate-limit-reset": "soon"}, NOW + DEFAULT_RATE_LIMIT_WAIT_S),
        # A reset already past (clock skew) still waits a little.
        ({"x-rate-limit-remaining": "0", "x-rate-limit-reset": "1600000000"}, NOW + 15),
    ],
    ids=["window", "user-day", "latest-exhausted", "none-exhausted", "none", "garbage", "past"],
)
def test_rate_limit_reset_at(headers: dict[str, str], expected: float) -> None:
    assert rate_limit_reset_at(headers, NOW) == expected


def test_minimum_wait_is_the_documented_one() -> None:
    assert MIN_RATE_LIMIT_WAIT_S == 15
