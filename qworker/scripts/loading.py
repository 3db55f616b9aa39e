"""Loading the Lua scripts and the call every wrapper builds: the machinery under QueueScripts.

A script's source is read once from package data, its ``--#include`` lines expanded, and its SHA1
computed, so every :class:`ScriptCall` is ready for EVALSHA. The reply parsers several families
of wrappers share live here too, so the wrapper modules depend on this one and never on each
other.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Generic, TypeVar

from qworker.keys import LUA_KEY_NAMES, RECENT_FINISHED_MAX, QueueKeys

T = TypeVar("T")

SCRIPT_NAMES = (
    "enqueue",
    "claim",
    "complete",
    "defer",
    "bury",
    "hand_back",
    "recover",
    "promote",
    "release_parked",
    "renew",
    "checkpoint",
    "requeue_dead",
    "trim_dead_letter",
    "clear",
    "rate_reserve",
    "rate_block",
    "unknown_type",
    "cancel",
    "run_now",
    "watch",
    "lift_pauses",
    "maintenance_turn",
    "x_gate",
    "x_settle",
    "schedule_upsert",
    "schedule_fire",
    "schedule_pause",
    "schedule_remove",
    "mark_dry_run",
    "delete_dead",
    "enqueue_flow",
    "dep_timeout",
    "worker_counts",
    "attach_media",
)
# A line ``--#include NAME`` in a script stands for the file ``lua/include/NAME.lua``: helpers
# several scripts share (one copy to review, and every script that uses them is still one step).
# ``--#include keys`` stands for the key names of keys.py, as the Lua table KEY_NAMES, and the
# length of the lists of recently finished jobs, RECENT_MAX.
_INCLUDE = re.compile(r"^--#include (\w+)$", re.MULTILINE)


def key_names_prelude() -> str:
    """The Lua that ``--#include keys`` stands for."""
    entries = ", ".join(f"{name} = '{suffix}'" for name, suffix in LUA_KEY_NAMES.items())
    return f"local KEY_NAMES = {{{entries}}}\nlocal RECENT_MAX = {RECENT_FINISHED_MAX}"


def _include_source(name: str) -> str:
    if name == "keys":
        return key_names_prelude()
    return files("qworker").joinpath("lua", "include", f"{name}.lua").read_text(encoding="utf-8")


def expand_includes(source: str) -> str:
    """``source`` with every ``--#include NAME`` replaced by that file, itself expanded. A file
    already included stays out the second time: includes share helpers (``namespace``), and
    every line of an included file is code each call of the script runs."""
    included: set[str] = set()

    def expand(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            if match[1] in included:
                return f"-- ({match[1]}: included above)"
            included.add(match[1])
            return expand(_include_source(match[1]))

        return _INCLUDE.sub(one, text)

    return expand(source)


@dataclass(frozen=True)
class LuaScript:
    name: str
    source: str
    sha: str


@cache
def load_script(name: str) -> LuaScript:
    source = files("qworker").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")
    source = expand_includes(source)
    return LuaScript(name, source, hashlib.sha1(source.encode()).hexdigest())


@dataclass(frozen=True)
class ScriptCall(Generic[T]):
    script: LuaScript
    keys: Sequence[str]
    args: Sequence[str | bytes | int | float]
    parse: Callable[[Any], T]

    def command(self) -> tuple[Any, ...]:
        return ("EVALSHA", self.script.sha, len(self.keys), *self.keys, *self.args)


def _as_str_pair(reply: Any) -> tuple[str, str]:
    return str(reply[0]), str(reply[1])


def _as_int(reply: Any) -> int:
    return int(reply)


def _as_str_list(reply: Any) -> list[str]:
    return [str(item) for item in reply]


def _as_str_pairs(reply: Any) -> list[tuple[str, str]]:
    return [(str(reply[i]), str(reply[i + 1])) for i in range(0, len(reply), 2)]


def _as_int_pair(reply: Any) -> tuple[int, int]:
    return int(reply[0]), int(reply[1])


def _as_int_triple(reply: Any) -> tuple[int, int, int]:
    return int(reply[0]), int(reply[1]), int(reply[2])


def _time(now_ms: int | str | None) -> int | str:
    """None asks the script to read Redis's own clock (TIME): one clock for every host."""
    return "" if now_ms is None else now_ms


def _pairs(pairs: Sequence[tuple[str, str]]) -> list[str]:
    return [value for pair in pairs for value in pair]


class ScriptsBase:
    """What every family of wrappers shares: the namespace's keys and the one way to build a
    call. QueueScripts combines the families; each is a mixin over this base, so a call costs
    one method lookup, as before the split."""

    def __init__(self, keys: QueueKeys) -> None:
        self.keys = keys

    def _call(
        self,
        name: str,
        keys: Sequence[str],
        args: Sequence[str | bytes | int | float],
        parse: Callable[[Any], T],
    ) -> ScriptCall[T]:
        return ScriptCall(load_script(name), keys, args, parse)
