"""The core stays light: importing the worker pulls in no CLI or Twitter library.

Checked in a fresh interpreter, since this test session has long imported everything.
"""

from __future__ import annotations

import json

import pytest

from tests.fresh_python import run_fresh

FORBIDDEN = ("typer", "rich", "tweepy", "click")

PROBE = """
import json, sys
import {module}
forbidden = {forbidden!r}
print(json.dumps(sorted(
    name for name in sys.modules if name.split(".")[0] in forbidden
)))
"""


def imported_forbidden(module: str) -> list[str]:
    code = PROBE.format(module=module, forbidden=FORBIDDEN)
    names: list[str] = json.loads(run_fresh(code))
    return names


@pytest.mark.parametrize(
    "module",
    ["qworker.worker", "qworker.service", "qworker", "qworker.jobs.base", "tests.worker_main"],
)
def test_core_imports_no_cli_or_twitter_library(module: str) -> None:
    assert imported_forbidden(module) == []


WEB_PROBE = """
import importlib, json, pkgutil, sys
import qworker.web
for module in pkgutil.iter_modules(qworker.web.__path__):
    importlib.import_module("qworker.web." + module.name)
forbidden = {forbidden!r}
print(json.dumps(sorted(
    name for name in sys.modules
    if name.split(".")[0] in forbidden or name == "qworker.cli" or name.startswith("qworker.cli.")
)))
"""


def test_the_web_ui_is_a_layer_over_the_core_not_over_the_cli() -> None:
    """The web UI (``qworker web``, or mounted in another ASGI app) shares the core's views of
    jobs and schedules, never the command line's or its libraries."""
    names: list[str] = json.loads(run_fresh(WEB_PROBE.format(forbidden=FORBIDDEN)))
    assert names == []
