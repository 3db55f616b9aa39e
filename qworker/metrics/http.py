"""The ``/metrics`` endpoint: prometheus_client's threaded HTTP server, with a port already in
use reported as a configuration error (exit 2, one line) instead of a traceback."""

from __future__ import annotations

import errno
import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from qworker.errors import ConfigurationError

DEFAULT_HOST = "127.0.0.1"


@dataclass
class MetricsServer:
    """A running endpoint; :meth:`close` stops it (a daemon thread dies with the process)."""

    server: WSGIServer
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(registry: CollectorRegistry, port: int, host: str = DEFAULT_HOST) -> MetricsServer:
    """Serve ``registry`` on ``host:port`` (port 0: any free one) from a daemon thread."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = "the address is already in use"
        else:
            reason = exc.strerror or str(exc)
        raise ConfigurationError(f"cannot serve metrics on {host}:{port}: {reason}") from None
    bound_port = int(server.server_address[1])
    return MetricsServer(server, thread, host, bound_port)
