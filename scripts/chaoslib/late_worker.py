"""``python -m chaoslib.late_worker work ...``: ``qworker work ...`` started while Redis is down.

It is started as a supervisor starts a worker whose Redis is away (systemd's ``ExecStartPre``
waiting for the port, an init container): it waits until Redis answers PING, then runs the real
command line in this process, already imported, so it connects the moment Redis is back. That
is the moment a worker that never saw the outage could take the jobs of live workers whose
leases expired only because Redis was away.
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
import time
from urllib.parse import urlsplit

import qworker.worker  # noqa: F401 - imported before the wait, not after it
from qworker.cli import main as qworker_main

POLL_S = 0.01


def redis_answers(host: str, port: int) -> bool:
    """+PONG, not -LOADING: Redis has its data back."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def main() -> None:
    for module in filter(None, os.environ.get("QWORKER_JOB_MODULES", "").split(",")):
        importlib.import_module(module.strip())
    url = urlsplit(os.environ["QWORKER_REDIS_URL"])
    host, port = url.hostname or "127.0.0.1", url.port or 6379
    while not redis_answers(host, port):
        time.sleep(POLL_S)
    sys.argv = ["qworker", *sys.argv[1:]]
    qworker_main()


if __name__ == "__main__":
    main()
