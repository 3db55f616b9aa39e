"""The command line as a whole: help with an example everywhere, version, error lines, exit
codes, ``python -m qworker``, and a ``.env.example`` that lists every setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values

from qworker import __version__
from qworker.config import Settings
from tests.cli.conftest import REPO_ROOT, Cli, one_error_line

COMMANDS = [
    [],
    ["enqueue"],
    ["enqueue", "tweet"],
    ["enqueue", "json"],
    ["work"],
    ["stats"],
    ["job"],
    ["job", "show"],
    ["job", "wait"],
    ["job", "cancel"],
    ["job", "run"],
    ["jobs"],
    ["jobs", "list"],
    ["pause"],
    ["resume"],
    ["retry-drain"],
    ["dlq"],
    ["dlq", "list"],
    ["dlq", "show"],
    ["dlq", "requeue"],
    ["clear"],
    ["demo"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "qworker")
def test_every_command_has_help_with_an_example(cli: Cli, command: list[str]) -> None:
    result = cli.raw(*command, "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert "Example: qworker" in result.stdout
    assert result.stderr == ""


def test_version(cli: Cli) -> None:
    result = cli.raw("--version")
    assert (result.exit_code, result.stdout) == (0, f"qworker {__version__}\n")


def test_no_command_shows_help(cli: Cli) -> None:
    result = cli.raw()
    assert result.exit_code == 2
    assert "enqueue" in result.stdout + result.stderr


def test_an_unknown_command_is_one_line_exit_2(cli: Cli) -> None:
    one_error_line(cli.raw("frobnicate"), 2, "No such command 'frobnicate'", "qworker --help")


def test_debug_adds_the_traceback(cli: Cli) -> None:
    result = cli.raw("--debug", "--redis-url", "redis://127.0.0.1:1/0", "stats")
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: cannot reach Redis")


def test_invalid_settings_are_one_line_exit_2(cli: Cli) -> None:
    result = cli("stats", env={"QWORKER_LEASE_SECONDS": "soon"})
    one_error_line(result, 2, "QWORKER_LEASE_SECONDS", "'soon'")


def test_the_namespace_option_selects_the_keys(cli: Cli) -> None:
    cli.ok("enqueue", "tweet", "in my namespace")
    other = Cli(cli.runner, cli.redis_url, cli.namespace + "-other")
    assert other.json("stats")["total_jobs"] == 0
    assert cli.json("stats")["total_jobs"] == 1


def test_redis_url_and_namespace_come_from_settings_too(cli: Cli) -> None:
    env = {"QWORKER_REDIS_URL": cli.redis_url, "QWORKER_NAMESPACE": cli.namespace}
    assert cli.raw("enqueue", "tweet", "from env", env=env).exit_code == 0
    assert cli.json("stats")["total_jobs"] == 1


def test_python_dash_m_runs_the_same_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qworker", "--version"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, f"qworker {__version__}\n")


def test_env_example_names_every_setting_and_parses() -> None:
    example = REPO_ROOT / ".env.example"
    values = dotenv_values(example)
    expected = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        expected.add(str(choices[0]) if choices else str(alias or f"QWORKER_{name.upper()}"))
    assert expected <= set(values)
    lines = example.read_text().splitlines()
    for index, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            assert lines[index - 1].startswith("# "), f"no comment above {line!r}"
    settings = Settings(_env_file=example)  # type: ignore[call-arg]
    assert settings.redis_url == "redis://localhost:6379/0"
    assert (
        settings.twitter_api_key is not None and settings.twitter_api_key.get_secret_value() == ""
    )


def test_operator_files_exist() -> None:
    scripts = REPO_ROOT / "scripts"
    unit = (scripts / "qworker.service").read_text()
    for directive in ("Restart=on-failure", "EnvironmentFile=", "User=", "KillSignal=SIGTERM"):
        assert directive in unit
    grace = int(unit.split("--grace ", 1)[1].split()[0])
    assert int(unit.split("TimeoutStopSec=", 1)[1].split()[0]) > grace
    assert "qworker enqueue" in (scripts / "crontab.example").read_text().replace("$QW", "qworker")
    assert Path(scripts / "demo").stat().st_mode & 0o111
