"""Every command's ``--help`` names the value an option takes with a word (``SECONDS``, ``N``,
``ID``) and shows none beside a flag: no ``<bool>``, ``<int range>`` or ``{ID}``.

The commands are found by walking the app, so a command added later is checked too.
"""

from __future__ import annotations

import re

import pytest
import typer

from qworker.cli import app
from tests.cli.conftest import Cli

# Command groups not checked (none: every command's help reads as words).
NOT_CHECKED: tuple[str, ...] = ()
# A type where a word should be: Typer's ``<bool>``, ``<int range>``, ``<list[int]>``, braces
# around a required argument (``{ID}``), click's ``INTEGER``/``FLOAT``/``BOOLEAN`` (older Typer).
NOT_A_WORD = re.compile(r"<[^<>\n]+>|\{[A-Z_.]+\}|\b(?:INTEGER|FLOAT|BOOLEAN)(?: RANGE)?\b")


def command_paths(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """``()`` for ``qworker`` itself, then every command and subcommand under it."""
    paths = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths += command_paths(sub, (*path, name))
    return paths


ALL_COMMANDS = command_paths(typer.main.get_command(app))
CHECKED = [path for path in ALL_COMMANDS if not path or path[0] not in NOT_CHECKED]


def test_the_walk_finds_nested_commands() -> None:
    assert {(), ("stats",), ("dlq",), ("dlq", "show"), ("enqueue", "tweet")} <= set(ALL_COMMANDS)


def test_the_pattern_tells_a_type_from_a_word() -> None:
    found = NOT_A_WORD.findall(
        "--json <bool>  -n <int range>  -p <list[int]>  {ID}  --x INTEGER RANGE  --y FLOAT"
    )
    assert found == ["<bool>", "<int range>", "<list[int]>", "{ID}", "INTEGER RANGE", "FLOAT"]
    fine = "--interval SECONDS [x>=0.1]  --log-format [text|json]  [ID...]  ID  HOST:PORT,..."
    assert NOT_A_WORD.findall(fine + "  TEXT  [default: 2.0]  COMMAND [ARGS]...") == []


@pytest.mark.parametrize("command", CHECKED, ids=lambda path: " ".join(path) or "qworker")
def test_help_placeholders_are_words(cli: Cli, command: tuple[str, ...]) -> None:
    result = cli.raw(*command, "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert "Usage: qworker" in result.stdout
    assert NOT_A_WORD.findall(result.stdout) == [], result.stdout
