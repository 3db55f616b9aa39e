"""Each Lua script and its Python twin in scripts/ agree: the header names every KEYS/ARGV
slot and the return, and the wrapper passes that many keys and arguments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import pytest

from qworker.keys import QueueKeys
from qworker.scripts import (
    SCRIPT_NAMES,
    EnqueueItem,
    FlowItem,
    QueueScripts,
    ScheduledJob,
    ScriptCall,
    key_names_prelude,
    load_script,
)

LUA_DIR = files("qworker").joinpath("lua")
LUA_FILES = sorted(
    p.name.removesuffix(".lua") for p in LUA_DIR.iterdir() if p.name.endswith(".lua")
)
NAMESPACE = "ns"

# A header line declares one slot (KEYS[2]) or a range: KEYS[2..5], KEYS[1..n], ARGV[3..].
DECLARATION = re.compile(r"^(KEYS|ARGV)\[(\d+)(\.\.)?(\d+|n)?\]", re.MULTILINE)
LITERAL_USE = re.compile(r"\b(KEYS|ARGV)\[(\d+)\]")


@dataclass(frozen=True)
class Header:
    text: str
    body: str
    fixed: dict[str, int]  # highest slot declared, per KEYS/ARGV
    variadic: dict[str, bool]  # whether more slots may follow

    @classmethod
    def parse(cls, name: str) -> Header:
        source = load_script(name).source
        assert source.startswith("--[["), f"{name}.lua must open with a --[[ ... ]] header"
        text, _, body = source.partition("]]")
        fixed = {"KEYS": 0, "ARGV": 0}
        variadic = {"KEYS": False, "ARGV": False}
        covered: dict[str, set[int]] = {"KEYS": set(), "ARGV": set()}
        for kind, start, dots, end in DECLARATION.findall(text):
            first = int(start)
            open_ended = bool(dots) and end in ("", "n")
            variadic[kind] |= open_ended
            last = int(end) if end.isdigit() else first
            covered[kind].update(range(first, last + 1))
            fixed[kind] = max(fixed[kind], last)
        for kind in ("KEYS", "ARGV"):
            assert covered[kind] == set(range(1, fixed[kind] + 1)), (
                f"{name}.lua: {kind} slots not all declared: {sorted(covered[kind])}"
            )
        return cls(text, body, fixed, variadic)


def sample_calls() -> dict[str, ScriptCall[Any]]:
    """One call of every wrapper, with the smallest sensible arguments."""
    k = QueueKeys(NAMESPACE)
    s = QueueScripts(k)
    item = EnqueueItem("id1", 1, "probe", "{}", None, None)
    return {
        "enqueue": s.enqueue([item], 0),
        "claim": s.claim("w", 0, 1, 1, "base", job_types=["probe"]),
        "complete": s.complete([("id1", "w:1", "")], 0, 1000),
        "defer": s.defer(k.retry, "id1", "w:1", 0, 1, "", 0, state="retry", keep_ms=1000),
        "bury": s.bury("id1", "w:1", 1, "{}", 0, attempt_failed=True, keep_ms=1000),
        "hand_back": s.hand_back([("id1", "w:1", True)], 10, "{}", 0, 1000),
        "recover": s.recover(0, 10, 3, "{}", 1000),
        "promote": s.promote(k.retry, 0, 10),
        "release_parked": s.release_parked(0, 10),
        "renew": s.renew(0, 1000, [("id1", "w:1")]),
        "checkpoint": s.checkpoint("id1", "w:1", "cp:x", "1"),
        "requeue_dead": s.requeue_dead(["id1"], requeue_all=False, priority=None),
        "trim_dead_letter": s.trim_dead_letter(0, 10, keep_ms=0),
        "clear": s.clear([k.retry, k.parked], keep_ms=0),
        "rate_reserve": s.rate_reserve("tweet", 0, "m", 17, 3, 0),
        "rate_block": s.rate_block("tweet", 0, 0, "m"),
        "unknown_type": s.unknown_type("id1", "w:1", mark=True, now_ms=0),
        "cancel": s.cancel("id1", 0, 1000),
        "run_now": s.run_now("id1", 0),
        "watch": s.watch("id1"),
        "lift_pauses": s.lift_pauses(0, 10, "type:x"),
        "maintenance_turn": s.maintenance_turn("w", 1000),
        "x_gate": s.x_gate("tweet", "2026-12", 0, 100, 15_000, None, 1, "posts"),
        "x_settle": s.x_settle("tweet", "2026-12", 0, 0, "posts", [("x-rate-limit", 0, 1)]),
        "schedule_upsert": s.schedule_upsert("daily", 0, "spec", 60_000, 0, {"job_type": "x"}),
        "schedule_fire": s.schedule_fire(
            "daily", 0, version=1, due_ms=0, jobs=[ScheduledJob("id1", 0, 0, 1)]
        ),
        "schedule_pause": s.schedule_pause(
            "daily", pause=True, next_due_ms=None, now_ms=0, version=1
        ),
        "schedule_remove": s.schedule_remove("daily"),
        "mark_dry_run": s.mark_dry_run("id1", "w:1", 0),
        "delete_dead": s.delete_dead(["id1"], keep_ms=0),
        "enqueue_flow": s.enqueue_flow([FlowItem("id2", 1, "probe", "{}", None, ("id1",))], 0),
        "dep_timeout": s.dep_timeout(0, 10),
        "worker_counts": s.worker_counts("w:1", 1, 0, 30_000),
        "attach_media": s.attach_media("id1", "{}", [b"\x89PNG"], 60_000),
    }


def test_every_script_name_has_a_file_and_every_file_a_name() -> None:
    assert sorted(SCRIPT_NAMES) == LUA_FILES
    assert len(set(SCRIPT_NAMES)) == len(SCRIPT_NAMES)


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_every_script_has_a_method_on_queue_scripts(name: str) -> None:
    assert callable(getattr(QueueScripts, name, None)), f"QueueScripts.{name} is missing"
    assert name in sample_calls(), f"add a sample call of QueueScripts.{name} to this test"


@pytest.mark.parametrize("name", LUA_FILES)
def test_header_names_keys_argv_and_returns(name: str) -> None:
    header = Header.parse(name)
    assert header.fixed["KEYS"] >= 1, f"{name}.lua: no KEYS[i] in the header"
    no_argv = re.search(r"^ARGV\s+none\b", header.text, re.MULTILINE)
    assert header.fixed["ARGV"] >= 1 or no_argv, f"{name}.lua: no ARGV[i] (or 'ARGV none')"
    assert re.search(r"^Returns\s+\S", header.text, re.MULTILINE), f"{name}.lua: no Returns"


@pytest.mark.parametrize("name", LUA_FILES)
def test_body_uses_only_declared_slots(name: str) -> None:
    header = Header.parse(name)
    for kind, index in LITERAL_USE.findall(header.body):
        assert header.variadic[kind] or int(index) <= header.fixed[kind], (
            f"{name}.lua uses {kind}[{index}], not declared in its header"
        )


@pytest.mark.parametrize("name", LUA_FILES)
def test_scripts_build_no_key_names_of_their_own(name: str) -> None:
    """Keys come in through KEYS or a prefix in ARGV; the names a script composes after that
    prefix come from keys.py (``--#include keys``)."""
    assert "jobs_" not in Header.parse(name).body.replace(key_names_prelude(), "")


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_wrapper_passes_what_the_header_declares(name: str) -> None:
    header = Header.parse(name)
    call = sample_calls()[name]
    assert call.script.name == name
    for kind, given in (("KEYS", len(call.keys)), ("ARGV", len(call.args))):
        if header.variadic[kind]:
            assert given >= header.fixed[kind], f"{name}: {given} {kind} for {header.fixed}"
        else:
            assert given == header.fixed[kind], f"{name}: {given} {kind} for {header.fixed}"
    assert all(key.startswith(f"{NAMESPACE}:jobs_") for key in call.keys), call.keys
    assert call.command()[:3] == ("EVALSHA", load_script(name).sha, len(call.keys))


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_every_script_declares_the_migration_fence_last(name: str) -> None:
    """While a cluster slot migrates, Redis refuses a script whose keys are partly missing:
    the fence, a key that never exists, makes sure every script is refused then."""
    assert sample_calls()[name].keys[-1] == QueueKeys(NAMESPACE).fence
