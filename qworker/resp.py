"""A minimal blocking Redis client (RESP2 over one socket) for the one-shot ``qworker enqueue``.

Importing redis-py costs more than the whole command (it loads its asyncio, Sentinel and Cluster
clients whatever is used), so the command line's fast enqueue path talks to Redis through this
module instead: connect by a ``redis://`` or ``unix://`` URL, log in, select the db, send a
command, read its reply with text decoded as UTF-8. Everything else (``rediss://``, Sentinel,
Cluster, URL options it does not know) raises :class:`UnsupportedUrl`, and the caller takes the
full path through redis-py. Nothing here retries: a command that may have run is never sent twice.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, BinaryIO, Self
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_PORT = 6379
CONNECT_TIMEOUT_S = 5.0
# As the full path's clients: longer than anything the enqueue script can take.
TIMEOUT_S = 15.0
_CRLF = b"\r\n"


class RespError(Exception):
    """Anything this client could not do."""


class UnsupportedUrl(RespError):
    """A URL this client does not handle (TLS, an option it does not know, a malformed one)."""


class RespConnectionError(RespError):
    """The connection could not be made, or broke while a command was under way."""


class RespReplyError(RespError):
    """Redis answered with an error reply (``NOSCRIPT ...``, ``WRONGPASS ...``, ``OOM ...``)."""

    @property
    def code(self) -> str:
        """The error's first word, which Redis uses as its kind: ``NOSCRIPT``, ``ERR``."""
        return str(self).split(" ", 1)[0]


@dataclass(frozen=True)
class Address:
    """Where and as whom to connect; ``unix_path`` set means a Unix socket."""

    host: str = "localhost"
    port: int = DEFAULT_PORT
    unix_path: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int = 0


def parse_url(url: str) -> Address:
    """``redis://[[user]:password@]host[:port][/db]`` or ``unix://[[user]:password@]/path[?db=N]``,
    read as redis-py reads them; anything else raises UnsupportedUrl."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsupportedUrl(str(exc)) from None
    scheme = parts.scheme.lower()
    query = parse_qs(parts.query, keep_blank_values=True)
    # redis-py refuses a URL without the "//" (``unix:/run/redis.sock``), so this path does too.
    plain = url[: len(scheme) + 3].lower() in ("redis://", "unix://")
    if not plain or set(query) - {"db"} or parts.fragment:
        raise UnsupportedUrl(f"not a plain redis:// or unix:// URL: {scheme}://")
    db_texts = query.get("db", [])[:1]  # redis-py reads the first ?db= alone
    if scheme == "redis":
        db_texts.insert(0, unquote(parts.path).strip("/") or "0")
    if any(not text.isascii() or not text.isdigit() for text in db_texts):
        raise UnsupportedUrl("the db is not a number")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if username is not None and password is None:
        raise UnsupportedUrl("a user without a password")  # redis-py's reading of it is its own
    db = int(db_texts[-1]) if db_texts else 0
    if scheme == "unix":
        if not parts.path:
            raise UnsupportedUrl("a unix:// URL needs the socket's path")
        path = unquote(parts.path)
        return Address(unix_path=path, username=username, password=password, db=db)
    host = parts.hostname or "localhost"
    port = DEFAULT_PORT if port is None else port  # ``:0`` is port 0, as redis-py reads it
    return Address(host=host, port=port, username=username, password=password, db=db)


class RespConnection:
    """One connection, logged in and on its db; ``command`` sends one command and returns its
    reply (an error reply raised as RespReplyError)."""

    def __init__(
        self,
        address: Address,
        *,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.address = address
        self._sock = _connect(address, connect_timeout_s)
        self._sock.settimeout(timeout_s)
        self._reader: BinaryIO = self._sock.makefile("rb")
        try:
            if address.password is not None:
                user = (address.username,) if address.username else ()
                self.command("AUTH", *user, address.password)
            if address.db:
                self.command("SELECT", address.db)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_url(cls, url: str, **timeouts: float) -> RespConnection:
        return cls(parse_url(url), **timeouts)

    def command(self, *args: str | bytes | int | float) -> Any:
        try:
            self._sock.sendall(encode_command(args))
            reply = read_reply(self._reader)
        except OSError as exc:
            raise RespConnectionError(_reason(exc)) from exc
        if isinstance(reply, RespReplyError):
            raise reply
        return reply

    def close(self) -> None:
        self._reader.close()
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _connect(address: Address, timeout_s: float) -> socket.socket:
    try:
        if address.unix_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout_s)
                sock.connect(address.unix_path)
            except BaseException:
                sock.close()
                raise
            return sock
        sock = socket.create_connection((address.host, address.port), timeout=timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    except OSError as exc:
        raise RespConnectionError(_reason(exc)) from exc


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _encode(arg: str | bytes | int | float) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, float):
        return repr(arg).encode()  # as redis-py sends a float: no digit lost
    return str(arg).encode("utf-8")


def encode_command(args: tuple[str | bytes | int | float, ...]) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _encode(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def read_reply(reader: BinaryIO) -> Any:
    """One RESP2 reply: str, int, None (nil) or a list of them; an error reply is returned as a
    RespReplyError (inside an array it stays one item, as a script's replies do)."""
    line = reader.readline()
    if not line.endswith(_CRLF):
        raise RespConnectionError("Connection closed by server.")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode("utf-8", "replace")
    if kind == b"-":
        return RespReplyError(rest.decode("utf-8", "replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        length = int(rest)
        if length < 0:
            return None
        data = reader.read(length + 2)
        if len(data) != length + 2:
            raise RespConnectionError("Connection closed by server.")
        # As the full path's clients: bytes that are not UTF-8 arrive replaced, not as a crash.
        return data[:-2].decode("utf-8", "replace")
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [read_reply(reader) for _ in range(count)]
    raise RespConnectionError(f"unexpected reply from Redis: {line[:40]!r}")
