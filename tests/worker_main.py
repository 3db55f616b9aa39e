"""A worker process for the process tests: ``python -m tests.worker_main --redis-url ...``.

A stand-in for ``qworker work`` built only from the core (Settings, Worker, configure_logging),
so the crash and signal tests do not depend on the CLI. Exits 0 after a graceful stop.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from qworker.config import Settings
from qworker.logs import configure_logging
from qworker.service import QueueService
from qworker.worker import Worker


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tests.worker_main")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--namespace", default="")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--burst", action="store_true")
    parser.add_argument("--lease-seconds", type=float, default=60.0)
    parser.add_argument("--grace", type=float, default=None)
    parser.add_argument("--import", dest="modules", action="append", default=[])
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    settings = Settings(
        redis_url=args.redis_url,
        namespace=args.namespace,
        lease_seconds=args.lease_seconds,
        _env_file=None,  # type: ignore[call-arg]
    )
    service = QueueService(settings=settings)
    worker = Worker(
        service,
        settings=settings,
        concurrency=args.concurrency,
        burst=args.burst,
        job_modules=args.modules,
        grace_s=args.grace,
    )
    worker.install_signal_handlers()
    try:
        await worker.run()
    finally:
        await service.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging("text")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
