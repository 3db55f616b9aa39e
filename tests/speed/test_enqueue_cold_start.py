"""``qworker enqueue tweet`` in a fresh process stays light: the fast path imports no Typer,
click, Rich, redis-py, tweepy, HTTP client, metrics or web library.

Cron lines start the command often; each of these costs more than the enqueue itself, so one
creeping back (an import at the top of a module the path uses) fails here, naming the module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fresh_python import REPO_ROOT, run_fresh

HEAVY = (
    "typer",
    "click",
    "rich",
    "redis",
    "tweepy",
    "requests",
    "oauthlib",
    "prometheus_client",
    "starlette",
)

# The console script's own entry point, then what it left imported.
PROBE = """
import json, sys
from qworker.cli import main
sys.argv = ["qworker", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exit:
    code = exit.code
heavy = {heavy!r}
sys.stdout.write(json.dumps({{
    "exit_code": code,
    "heavy": sorted(name for name in sys.modules if name.split(".")[0] in heavy),
}}) + "\\n")
"""


def run_probe(args: list[str], tmp_path: Path) -> tuple[str, dict[str, object]]:
    stdout = run_fresh(
        PROBE.format(heavy=HEAVY),
        json.dumps(args),
        cwd=tmp_path,  # no stray .env
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)},
    )
    printed, report = stdout.rstrip("\n").rsplit("\n", 1)
    return printed, json.loads(report)


@pytest.mark.parametrize(
    "args",
    [
        ["enqueue", "tweet", "hi"],
        ["enqueue", "tweet", "hi", "-p", "1", "--unique"],
        ["enqueue", "json", '{"job_type": "tweet", "content": "hi"}', "--id", "cold-1"],
    ],
)
def test_a_plain_enqueue_imports_nothing_heavy(
    redis_url: str, namespace: str, tmp_path: Path, args: list[str]
) -> None:
    given = ["--redis-url", redis_url, "--namespace", namespace, *args]
    printed, report = run_probe(given, tmp_path)
    assert report == {"exit_code": 0, "heavy": []}
    assert printed.strip()  # the job id


def test_the_probe_sees_what_the_typer_application_imports(
    redis_url: str, namespace: str, tmp_path: Path
) -> None:
    """The same probe on a command the fast path leaves alone: it must see Typer and redis-py,
    or the test above proves nothing."""
    given = ["--redis-url", redis_url, "--namespace", namespace, "enqueue", "tweet", "hi", "--json"]
    _printed, report = run_probe(given, tmp_path)
    assert report["exit_code"] == 0
    heavy = report["heavy"]
    assert isinstance(heavy, list)
    assert {"typer", "redis"} <= {name.split(".")[0] for name in heavy}
