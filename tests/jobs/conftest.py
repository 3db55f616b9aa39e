"""Fixtures of the tweet job tests: no stray environment, a strict HTTP mock, visible logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import responses

from qworker.clients import ClientContainer
from qworker.jobs.tweet import CREDENTIAL_ENV_VARS
from qworker.jobs.x_account import CLIENT_NAME as X_ACCOUNT_CLIENT
from tests.jobs.support import fake_x_account


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials or a dry-run switch in the developer's environment must not leak in."""
    for _field, env_var in CREDENTIAL_ENV_VARS:
        monkeypatch.delenv(env_var, raising=False)
    monkeypatch.delenv("QWORKER_DRY_RUN", raising=False)


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    """The HTTP layer under tweepy. A request nobody registered fails the test, and every
    registered answer must have been asked for."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def logs(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    """Captured records of every logger, DEBUG included. ``configure_logging`` (run by CLI
    tests in the same session) stops "qworker" propagating; undo that for this test."""
    monkeypatch.setattr(logging.getLogger("qworker"), "propagate", True)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="qworker")
    return caplog


@pytest.fixture(autouse=True)
def _no_real_x_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """A job built without a provided ``x_account`` keeps X's shared state in an in-memory
    Redis: a test never reaches the server of the default URL."""
    monkeypatch.setitem(
        ClientContainer._factories, X_ACCOUNT_CLIENT, lambda _settings: fake_x_account()
    )
