"""The ``qworker`` command line: a thin Typer layer (``commands.py``) over the same core the
Python API uses.

``main`` first offers the arguments to the fast enqueue path (``fast_enqueue.py``): cron lines
run ``qworker enqueue tweet ...`` often, and a plain enqueue then needs neither Typer nor
redis-py. Whatever that path declines, it leaves to the Typer application, which prints the
one canonical message of every error. So importing this package imports nothing heavy; ``app``
is built on first use.
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qworker.cli.commands import COMMAND_ORDER, HELP_OPTION_NAMES, QworkerGroup, app

# What ``from qworker.cli import app`` offered before the application got a module of its own.
_FROM_COMMANDS = frozenset({"COMMAND_ORDER", "HELP_OPTION_NAMES", "QworkerGroup", "app"})

__all__ = ["COMMAND_ORDER", "HELP_OPTION_NAMES", "QworkerGroup", "app", "main"]


def main() -> None:
    """The ``qworker`` console script."""
    # A plain enqueue is over in a fraction of a second: the cyclic collector's passes over
    # what the imports build (pydantic's schemas above all) would cost more than they free, so
    # it stays off until the process ends, and comes back on for every other command.
    collecting = gc.isenabled()
    gc.disable()
    try:
        from qworker.cli.fast_enqueue import enqueue_fast

        outcome = enqueue_fast(sys.argv[1:])
    except BaseException:
        if collecting:
            gc.enable()
        raise
    if isinstance(outcome, int):
        # The process ends here; the interpreter's last full collection would walk every object
        # the imports built for nothing (cycles among them go with the process all the same).
        gc.freeze()
        sys.exit(outcome)
    if collecting:  # ``qworker work`` runs for days
        gc.enable()
    from qworker.cli.commands import app

    app(args=outcome, prog_name="qworker")


def __getattr__(name: str) -> Any:
    if name not in _FROM_COMMANDS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("qworker.cli.commands"), name)
    globals()[name] = value
    return value
