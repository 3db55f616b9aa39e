"""The fast enqueue path (``qworker.cli.fast_enqueue``) against the Typer application.

Every scenario runs twice on the session's real redis-server, each time in a fresh namespace:
through ``qworker.cli.main`` (the fast path, and the Typer application for what it declines) and
through the Typer application alone. Both must print the same, exit the same and leave the same
keys in Redis (job ids and times aside).
"""

from __future__ import annotations

import gc
import io
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple
from uuid import uuid4

import pytest
import redis

import qworker.cli.fast_enqueue as fast_enqueue
from qworker.cli import main
from qworker.cli.commands import app
from qworker.resp import RespConnection, RespConnectionError
from tests.distributed.acl import denials, restricted_user_url
from tests.redis_server import RedisServer

_JOB_ID = re.compile(r"\b[0-9a-f]{32}\b")
_MS = re.compile(r"\b1[0-9]{12}\b")
TWEET_JSON = '{"job_type": "tweet", "content": "from json"}'


class Outcome(NamedTuple):
    exit_code: int
    stdout: str
    stderr: str
    # Whether the fast path finished the command itself (False: the Typer application ran).
    fast: bool = False


class Runner:
    """Runs ``qworker --redis-url URL --namespace NS ARGS...`` in this process."""

    def __init__(
        self,
        redis_url: str,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.redis_url = redis_url
        self.capsys = capsys
        self.monkeypatch = monkeypatch

    def through_main(self, namespace: str, args: list[str]) -> Outcome:
        decided: list[Any] = []
        real = fast_enqueue.enqueue_fast

        def spy(given: list[str]) -> Any:
            decided.append(real(given))
            return decided[-1]

        self.monkeypatch.setattr(fast_enqueue, "enqueue_fast", spy)
        self.monkeypatch.setattr(sys, "argv", ["qworker", *self._globals(namespace), *args])
        collecting = gc.isenabled()
        try:
            outcome = self._run(main)
        finally:  # main() ends a process, so it may leave the collector off and its objects frozen
            gc.unfreeze()
            if collecting:
                gc.enable()
        return outcome._replace(fast=isinstance(decided[0], int))

    def through_typer(self, namespace: str, args: list[str]) -> Outcome:
        full = [*self._globals(namespace), *args]
        return self._run(lambda: app(args=full, prog_name="qworker"))

    def _globals(self, namespace: str) -> list[str]:
        return ["--redis-url", self.redis_url, "--namespace", namespace]

    def _run(self, command: Callable[[], Any]) -> Outcome:
        self.capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            command()
        captured = self.capsys.readouterr()
        code = exited.value.code
        return Outcome(code if isinstance(code, int) else 0, captured.out, captured.err)


@pytest.fixture
def runner(
    redis_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Runner:
    return Runner(redis_url, capsys, monkeypatch)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


def new_namespace() -> str:
    return f"t{uuid4().hex[:12]}"


class Names:
    """Job ids as ``<job 1>``, ``<job 2>`` in the order they first appear, times as ``<ms>``."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        text = _JOB_ID.sub(lambda m: self.ids.setdefault(m[0], f"<job {len(self.ids) + 1}>"), text)
        return _MS.sub("<ms>", text)


def stored(client: redis.Redis, namespace: str, names: Names) -> dict[str, Any]:
    """Every key of ``namespace``, its value with ids and times named as ``names`` does."""
    state: dict[str, Any] = {}
    for key in sorted(client.scan_iter(match=f"{namespace}:*")):
        kind = client.type(key)
        value: Any
        if kind == "hash":
            value = sorted(client.hgetall(key).items())
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(client.smembers(key))
        else:
            value = client.get(key)
        state[names(key.removeprefix(namespace))] = names(repr(value))
    return state


# Each scenario is a list of commands run in order; True: the fast path does all of them.
SCENARIOS: list[tuple[list[list[str]], bool]] = [
    ([["enqueue", "tweet", "hello"]], True),
    ([["enqueue", "tweet", "urgent", "-p", "1"]], True),
    ([["enqueue", "tweet", "low", "--priority=4"]], True),
    ([["enqueue", "tweet", "--priority", "2", "after its option"]], True),
    ([["enqueue", "tweet", "unicode ✓ 日本語 🎉"]], True),
    ([["enqueue", "json", TWEET_JSON, "-p", "2"]], True),
    ([["enqueue", "tweet", "order 42 shipped", "--id", "order-42"]] * 2, True),
    ([["enqueue", "tweet", "only once", "--unique"]] * 2, True),
    ([["enqueue", "json", TWEET_JSON, "--unique-key", "report:1", "--id=r1"]] * 2, True),
    ([["enqueue", "tweet", ""]], False),
    ([["enqueue", "tweet", "   "]], False),
    ([["enqueue", "tweet", "x" * 281]], False),
    ([["enqueue", "tweet", "bad \udcff byte"]], False),
    ([["enqueue", "tweet", "hi", "-p", "5"]], False),
    ([["enqueue", "tweet", "hi", "--priority", "0"]], False),
    ([["enqueue", "tweet", "hi", "-p", "02"]], False),
    ([["enqueue", "tweet", "hi", "-p=2"]], False),
    ([["enqueue", "tweet", "hi", "--id", "not an id!"]], False),
    ([["enqueue", "tweet", "hi", "--unique", "--unique-key", "k"]], False),
    ([["enqueue", "tweet", "hi", "--json"]], False),
    ([["enqueue", "tweet", "hi", "--delay", "10m"]], False),
    ([["enqueue", "tweet", "one", "two"]], False),
    ([["enqueue", "tweet", "hi", "--bogus"]], False),
    ([["enqueue", "tweet", "hi", "-p"]], False),
    ([["enqueue", "tweet"]], False),
    ([["enqueue", "tweet", "--help"]], False),
    ([["enqueue", "json", "not json"]], False),
    ([["enqueue", "json", "[1, 2]"]], False),
    ([["enqueue", "json", '{"job_type": "no_such_type"}']], False),
    ([["enqueue", "json", '{"job_type": "tweet", "content": "x"}', "--unique"]], False),
    ([["enqueue", "json", '{"job_type": "tweet", "content": "hi"}', "--import", "nope"]], False),
]


@pytest.mark.parametrize(("commands", "fast"), SCENARIOS, ids=lambda v: repr(v)[:60])
def test_the_fast_path_and_the_typer_application_agree(
    runner: Runner, client: redis.Redis, commands: list[list[str]], fast: bool
) -> None:
    namespaces = new_namespace(), new_namespace()
    names = Names(), Names()
    via_main = [runner.through_main(namespaces[0], args) for args in commands]
    via_typer = [runner.through_typer(namespaces[1], args) for args in commands]
    for ours, theirs in zip(via_main, via_typer, strict=True):
        assert ours.fast is fast, ours
        assert ours.exit_code == theirs.exit_code, (ours, theirs)
        assert names[0](ours.stdout) == names[1](theirs.stdout)
        assert names[0](ours.stderr) == names[1](theirs.stderr)
    assert stored(client, namespaces[0], names[0]) == stored(client, namespaces[1], names[1])


def test_an_unreachable_redis_is_reported_by_the_typer_application(runner: Runner) -> None:
    runner.redis_url = "redis://127.0.0.1:9/0"  # discard: nothing listens
    ours = runner.through_main(new_namespace(), ["enqueue", "tweet", "hi"])
    theirs = runner.through_typer(new_namespace(), ["enqueue", "tweet", "hi"])
    assert not ours.fast
    assert (ours.exit_code, ours.stdout, ours.stderr) == (
        theirs.exit_code,
        theirs.stdout,
        theirs.stderr,
    )
    assert ours.exit_code == 1 and ours.stderr.startswith("error: cannot reach Redis at")


def test_a_malformed_redis_url_is_reported_by_the_typer_application(runner: Runner) -> None:
    runner.redis_url = "redis://localhost:notaport/0"
    ours = runner.through_main(new_namespace(), ["enqueue", "tweet", "hi"])
    theirs = runner.through_typer(new_namespace(), ["enqueue", "tweet", "hi"])
    assert not ours.fast
    assert (ours.exit_code, ours.stderr) == (theirs.exit_code, theirs.stderr)
    assert ours.exit_code == 2


@pytest.fixture(scope="module")
def redis_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The Unix socket of a private server."""
    directory = tmp_path_factory.mktemp("redis-socket")
    socket_path = directory / "redis.sock"
    with RedisServer(directory, extra_args=["--unixsocket", str(socket_path)]):
        yield socket_path


def test_a_url_without_its_double_slash_is_refused_as_the_typer_application_refuses_it(
    runner: Runner, redis_socket: Path
) -> None:
    """``unix:/run/redis.sock`` is not a URL redis-py takes: the fast path must not read it as
    one and queue the job there while the Typer application refuses the command."""
    runner.redis_url = f"unix:{redis_socket}"
    namespace = new_namespace()
    ours = runner.through_main(namespace, ["enqueue", "tweet", "hi"])
    theirs = runner.through_typer(new_namespace(), ["enqueue", "tweet", "hi"])
    assert not ours.fast
    assert (ours.exit_code, ours.stdout, ours.stderr) == (
        theirs.exit_code,
        theirs.stdout,
        theirs.stderr,
    )
    assert ours.exit_code == 2
    admin = redis.Redis(unix_socket_path=str(redis_socket), decode_responses=True)
    try:
        assert admin.keys(f"{namespace}:*") == []
    finally:
        admin.close()


@pytest.fixture(scope="module")
def evicting_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    directory = tmp_path_factory.mktemp("redis-evicting")
    with RedisServer(directory, extra_args=["--maxmemory-policy", "allkeys-lru"]) as server:
        yield server


@pytest.mark.parametrize("allow", [False, True])
def test_a_redis_that_may_evict_is_left_to_the_typer_application(
    runner: Runner, evicting_server: RedisServer, allow: bool
) -> None:
    runner.redis_url = evicting_server.url
    args = ["--allow-eviction"] if allow else []
    ours = runner.through_main(new_namespace(), [*args, "enqueue", "tweet", "hi"])
    theirs = runner.through_typer(new_namespace(), [*args, "enqueue", "tweet", "hi"])
    assert not ours.fast
    assert ours.exit_code == theirs.exit_code == (0 if allow else 2)
    assert Names()(ours.stdout) == Names()(theirs.stdout)
    assert ours.stderr == theirs.stderr
    assert "maxmemory-policy allkeys-lru" in ours.stderr


@pytest.mark.parametrize("unique", [[], ["--unique"]])
def test_a_failure_after_the_script_was_sent_queues_the_job_once(
    runner: Runner, client: redis.Redis, monkeypatch: pytest.MonkeyPatch, unique: list[str]
) -> None:
    """The reply is lost after Redis ran the script: the Typer application runs again with the
    job's id, finds the job there, and prints its id as if nothing happened."""
    real_command = RespConnection.command

    def reply_lost(self: RespConnection, *args: Any) -> Any:
        reply = real_command(self, *args)
        if args[0] in ("EVALSHA", "EVAL"):
            raise RespConnectionError("Connection closed by server.")
        return reply

    monkeypatch.setattr(RespConnection, "command", reply_lost)
    namespace = new_namespace()
    outcome = runner.through_main(namespace, ["enqueue", "tweet", "reply lost", *unique])
    assert not outcome.fast
    assert outcome.exit_code == 0 and outcome.stderr == ""
    job_id = outcome.stdout.strip()
    assert _JOB_ID.fullmatch(job_id)
    queued = client.lrange(f"{namespace}:jobs_priority_3", 0, -1)
    assert queued == [job_id]


class _PipeGone(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize(
    ("stdout", "stderr_lines"),
    [(_PipeGone, 0), (type(None), 1)],
    ids=["reader-gone", "closed"],
)
def test_a_stdout_that_is_gone_ends_as_in_the_typer_application(
    runner: Runner,
    client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    stdout: type[Any],
    stderr_lines: int,
) -> None:
    """``qworker enqueue tweet hi | head -0`` or ``>&-``: the job is queued, its id cannot be
    printed. Exit 1, in silence for a broken pipe (as click does) or with one line, never a
    traceback."""
    outcomes = []
    for run in (runner.through_main, runner.through_typer):
        namespace = new_namespace()
        with monkeypatch.context() as patch:
            patch.setattr(sys, "stdout", stdout())
            patch.setattr(sys, "stderr", sys.stderr)  # put back whatever the command set
            outcomes.append(run(namespace, ["enqueue", "tweet", "stdout gone"]))
        assert len(client.lrange(f"{namespace}:jobs_priority_3", 0, -1)) == 1
    ours, theirs = outcomes
    assert ours.fast
    assert (ours.exit_code, ours.stderr) == (theirs.exit_code, theirs.stderr)
    assert ours.exit_code == 1 and ours.stderr.count("\n") == stderr_lines


def test_a_failure_after_the_script_was_sent_keeps_the_given_id(
    runner: Runner, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[Any, ...]] = []
    real_command = RespConnection.command

    def reply_lost(self: RespConnection, *args: Any) -> Any:
        reply = real_command(self, *args)
        if args[0] in ("EVALSHA", "EVAL"):
            sent.append(args)
            raise RespConnectionError("Connection closed by server.")
        return reply

    monkeypatch.setattr(RespConnection, "command", reply_lost)
    namespace = new_namespace()
    outcome = runner.through_main(namespace, ["enqueue", "tweet", "given", "--id", "given-1"])
    assert (outcome.exit_code, outcome.stdout, outcome.stderr) == (0, "given-1\n", "")
    assert len(sent) == 1
    assert client.lrange(f"{namespace}:jobs_priority_3", 0, -1) == ["given-1"]


@pytest.mark.parametrize(
    "args",
    [
        ["enqueue", "tweet", "hi"],
        ["--redis-url=redis://h/0", "--namespace", "n", "--debug", "enqueue", "tweet", "hi"],
        ["enqueue", "json", "{}", "-p", "4", "--id", "x", "--unique-key", "k"],
        ["--allow-eviction", "enqueue", "tweet", "--unique", "hi"],
    ],
)
def test_plain_enqueues_are_recognised(args: list[str]) -> None:
    assert fast_enqueue.parse(args) is not None


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--version"],
        ["stats"],
        ["enqueue"],
        ["enqueue", "thread", "a", "b"],
        ["enqueue", "tweet", "-"],
        ["enqueue", "tweet", "--", "-starts with a dash"],
        ["enqueue", "tweet", "hi", "-h"],
        ["enqueue", "tweet", "hi", "--media", "a.png"],
        ["enqueue", "tweet", "hi", "--durable"],
        ["enqueue", "tweet", "hi", "--after", "x"],
        ["enqueue", "tweet", "hi", "-p", "1", "-p", "2"],
        ["enqueue", "tweet", "hi", "-p2"],
        ["enqueue", "tweet", "hi", "-p=2"],
        ["enqueue", "tweet", "hi", "--unique=1"],
        ["enqueue", "tweet", "hi", "--id", "--json"],
        ["--sentinels", "h:26379", "enqueue", "tweet", "hi"],
        ["--cluster", "enqueue", "tweet", "hi"],
        ["--namespace", "n", "--namespace", "m", "enqueue", "tweet", "hi"],
        ["enqueue", "json", "{}", "--unique"],
    ],
)
def test_anything_else_is_left_to_the_typer_application(args: list[str]) -> None:
    assert fast_enqueue.parse(args) is None
    assert fast_enqueue.enqueue_fast(args) is fast_enqueue.AS_GIVEN


def test_settings_it_does_not_handle_are_left_to_the_typer_application(
    runner: Runner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("QWORKER_DURABLE_REPLICAS", "1")
    monkeypatch.setenv("QWORKER_DURABLE_TIMEOUT_MS", "50")
    outcome = runner.through_main(new_namespace(), ["enqueue", "tweet", "durable"])
    assert not outcome.fast
    assert outcome.exit_code == 1  # queued on the master, no replica confirmed it
    assert "replica" in outcome.stderr


def test_a_shell_asking_for_completions_gets_them_from_click(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("_QWORKER_COMPLETE", "bash_complete")
    assert fast_enqueue.enqueue_fast(["enqueue", "tweet", "hi"]) is fast_enqueue.AS_GIVEN


def test_the_readme_acl_user_enqueues_on_a_redis_without_the_script(
    redis_server: RedisServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    client: redis.Redis,
) -> None:
    """A Redis that lost its scripts (a restart) is sent the script by SCRIPT LOAD, which the
    README's least-privilege user may send (EVAL it may not), and the fast path finishes."""
    namespace = new_namespace()
    with restricted_user_url(redis_server, namespace, "fast") as url:
        client.script_flush()
        outcome = Runner(url, capsys, monkeypatch).through_main(
            namespace, ["enqueue", "tweet", "after a restart"]
        )
        assert outcome.fast and (outcome.exit_code, outcome.stderr) == (0, "")
        assert client.lrange(f"{namespace}:jobs_priority_3", 0, -1) == [outcome.stdout.strip()]
        assert denials(client) == []
