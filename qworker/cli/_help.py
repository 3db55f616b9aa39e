"""Placeholders in ``--help`` that read as words.

Typer names a parameter's type where a value goes: ``<bool>`` beside every flag (``--json``,
``--help``), ``<str>`` beside an argument already named ``ID``, and braces around a required
argument in the usage line (``{ID}``). A flag takes no value and an argument's name is its
placeholder, so :func:`plain_placeholders` drops those, once, for every command of the app
(the commands added later too). Options that take a value name it themselves, with
``metavar=`` (``SECONDS``, ``N``, ``ID``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperArgument, TyperOption


class _WordArgument(TyperArgument):
    """An argument shown by its name only: ``ID`` (required), ``[ID]`` (optional), ``...``
    when it repeats."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if self.nargs != 1 and not name.endswith("..."):
            name += "..."
        return name if self.required else f"[{name}]"


def plain_placeholders(command: Any, help_option_names: Sequence[str]) -> None:
    """Flags without ``<bool>`` and arguments by their name, in ``command`` and every command
    under it. Typer builds the command tree afresh for each run, so this runs on each."""
    ctx = typer.Context(command, help_option_names=list(help_option_names))
    params = [*command.params, command.get_help_option(ctx)]
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
        elif type(param) is TyperArgument:
            param.__class__ = _WordArgument
    for sub in getattr(command, "commands", {}).values():
        plain_placeholders(sub, help_option_names)
