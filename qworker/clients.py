"""ClientContainer: the clients jobs talk to, built lazily once per worker process and shared.

A job type registers a factory under a name (``ClientContainer.register_factory``); the first job
that asks for that name builds it, every later job gets the same object. Tests and the dry-run
mode put a ready-made client in place with :meth:`ClientContainer.provide`.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from qworker.config import Settings

ClientFactory = Callable[["Settings"], Any]


class ClientContainer:
    _factories: ClassVar[dict[str, ClientFactory]] = {}

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def register_factory(cls, name: str, factory: ClientFactory) -> None:
        cls._factories[name] = factory

    def provide(self, name: str, client: Any) -> None:
        """Use ``client`` for ``name`` instead of building one (dry run, tests)."""
        with self._lock:
            self._clients[name] = client

    def get(self, name: str) -> Any:
        client = self._clients.get(name)
        if client is not None:
            return client
        # A lock, not a check-then-set race: jobs may run in threads (blocking code off the loop).
        with self._lock:
            if name not in self._clients:
                try:
                    factory = self._factories[name]
                except KeyError:
                    raise KeyError(f"no client factory registered for {name!r}") from None
                self._clients[name] = factory(self.settings)
            return self._clients[name]

    async def aclose(self) -> None:
        """Close every client built so far that knows how to close itself."""
        for client in list(self._clients.values()):
            close = getattr(client, "aclose", None) or getattr(client, "close", None)
            if close is None:
                continue
            result = close()
            if inspect.isawaitable(result):
                await result
        self._clients.clear()
