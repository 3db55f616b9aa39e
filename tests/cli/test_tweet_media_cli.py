"""``qworker enqueue tweet TEXT --media FILE --alt TEXT``: files checked by content and size,
stored with the job; any bad file exits 2 with one line and queues nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from qworker.jobs.tweet_media import MAX_GIF_BYTES, MAX_IMAGE_BYTES
from qworker.keys import QueueKeys
from tests.cli.conftest import Cli, one_error_line

PNG = b"\x89PNG\r\n\x1a\n" + b"p" * 64
GIF = b"GIF89a" + b"g" * 64


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def queued(cli: Cli) -> int:
    total: int = cli.json("stats")["total_jobs"]
    return total


def test_images_are_stored_with_the_job(cli: Cli, tmp_path: Path, redis_url: str) -> None:
    first, second = write(tmp_path / "a.png", PNG), write(tmp_path / "b.gif.png", PNG + b"2")
    result = cli(
        "enqueue",
        "tweet",
        "two pictures",
        "--media",
        first,
        "--media",
        second,
        "--alt",
        "the first",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    media = json.loads(record["payload"])["media"]
    assert [m.get("alt") for m in media] == ["the first", None]
    assert [m["mime"] for m in media] == ["image/png", "image/png"]
    client = redis.Redis.from_url(redis_url)
    stored = client.hgetall(QueueKeys(cli.namespace).media(record["id"]))
    client.close()
    assert stored == {b"0": PNG, b"1": PNG + b"2"}


@pytest.mark.parametrize(
    ("files", "extra", "fragment"),
    [
        ({}, ["--media", "{tmp}/missing.png"], "cannot read media file"),
        ({}, ["--media", "{tmp}"], "not a regular file"),
        ({}, ["--media", ""], "not an empty one"),
        ({"a.png": PNG}, ["--media", "{tmp}/a.png"] * 5, "at most 4 images"),
        ({"notes.png": b"just text"}, ["--media", "{tmp}/notes.png"], "is not a JPEG, PNG"),
        ({"big.png": PNG + b"x" * MAX_IMAGE_BYTES}, ["--media", "{tmp}/big.png"], "over 5,242,880"),
        ({"big.gif": GIF + b"x" * MAX_GIF_BYTES}, ["--media", "{tmp}/big.gif"], "at most 15 MB"),
        (
            {"a.gif": GIF, "b.png": PNG},
            ["--media", "{tmp}/a.gif", "--media", "{tmp}/b.png"],
            "a GIF must be a tweet's only media",
        ),
        ({"a.png": PNG}, ["--media", "{tmp}/a.png", "--alt", "x", "--alt", "y"], "2 --alt texts"),
        ({"a.png": PNG}, ["--media", "{tmp}/a.png", "--alt", "x" * 1001], "1000"),
    ],
    ids=[
        "missing",
        "directory",
        "empty-path",
        "fifth",
        "not-an-image",
        "big-image",
        "big-gif",
        "gif-and-image",
        "extra-alt",
        "long-alt",
    ],
)
def test_bad_media_exit_2_and_queue_nothing(
    cli: Cli, tmp_path: Path, files: dict[str, bytes], extra: list[str], fragment: str
) -> None:
    for name, data in files.items():
        write(tmp_path / name, data)
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in extra]
    one_error_line(cli("enqueue", "tweet", "hello", *args), 2, fragment)
    assert queued(cli) == 0


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--durable"], None), ([], {"QWORKER_DURABLE_REPLICAS": "1"})],
    ids=["--durable", "QWORKER_DURABLE_REPLICAS"],
)
def test_media_is_not_enqueued_durably_yet_and_says_so(
    cli: Cli, tmp_path: Path, args: list[str], env: dict[str, str] | None
) -> None:
    """No WAIT follows the MULTI/EXEC that stores a tweet with its media: rather than a durable
    enqueue that is not, one line and exit 2, nothing queued."""
    media = write(tmp_path / "a.png", PNG)
    result = cli("enqueue", "tweet", "hello", "--media", media, *args, env=env)
    one_error_line(result, 2, "cannot be enqueued durably yet")
    assert queued(cli) == 0
