"""``qworker demo --web``: the demo's flow kept going on the embedded Redis, with the web UI
serving it, so a newcomer sees the UI with one command and no Redis.

A worker runs all along; a round of the sample tweets is enqueued every ROUND_S seconds (one
fails once and is retried, one ends in the dead-letter queue each round), and a schedule posts a
status every 30 seconds, until Ctrl-C. The UI allows actions (requeue, cancel, pause, trigger):
it is bound to loopback and the data is the demo's.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

from qworker.cli._common import run
from qworker.cli._errors import CliError

if TYPE_CHECKING:
    import uvicorn

    from qworker.demo import DemoEnvironment

ROUND_S = 15.0
HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 30.0
SCHEDULE_NAME = "demo-status"
SCHEDULE_EVERY = "30s"


def demo_web(port: int) -> None:
    from qworker import demo as parts
    from qworker.cli.web import (
        build_server,
        describe,
        require_web_extra,
        stop_signals_end_quietly,
        url_of,
    )
    from qworker.web.settings import WebSettings

    require_web_extra()
    # Rounds keep coming: limits loose enough that the flow never stalls on them.
    env = parts.DemoEnvironment(
        parts.demo_settings().model_copy(
            update={"tweet_max_per_hour": 100_000, "tweet_max_per_day": 1_000_000}
        )
    )
    settings = WebSettings(
        queue=env.settings, allow_actions=True, service_factory=lambda: env.service
    )
    server = build_server(settings, HOST, port)  # exit 2 now if the port is taken
    parts.register_demo_job_type()
    try:
        with stop_signals_end_quietly():
            run(_keep_going(env, server, f"{url_of(HOST, port)} ({describe(settings)})"))
    finally:
        parts.unregister_demo_job_type()


async def _keep_going(env: DemoEnvironment, server: uvicorn.Server, where: str) -> None:
    worker = env.worker()
    serving = asyncio.create_task(server.serve())
    working = asyncio.create_task(worker.run())
    try:
        await _started(server, serving)
        _say(
            f"qworker demo: web UI on {where}; a round of sample tweets every "
            f"{ROUND_S:g}s, schedule {SCHEDULE_NAME} every {SCHEDULE_EVERY}; Ctrl-C stops"
        )
        await _add_schedule(env)
        rounds = 0
        while not serving.done():
            if working.done():
                await working  # a worker that crashed raises here
                raise CliError("the demo's worker stopped")
            await env.enqueue_samples()
            rounds += 1
            _say(f"round {rounds}: {len(_samples())} sample tweets enqueued")
            await asyncio.wait(
                {serving, working}, timeout=ROUND_S, return_when=asyncio.FIRST_COMPLETED
            )
    finally:
        server.should_exit = True
        worker.request_stop()
        await asyncio.gather(working, serving, return_exceptions=True)
        await env.close()


async def _add_schedule(env: DemoEnvironment) -> None:
    """A recurring job, so the schedules page has one to show, fire, pause and trigger."""
    from qworker.demo import DemoTweetParams
    from qworker.schedule_store import ScheduleStore, build_schedule

    params = DemoTweetParams(content="Status: still up (a recurring job, every 30 seconds).")
    schedule = build_schedule(env.settings, SCHEDULE_NAME, params, every=SCHEDULE_EVERY)
    await ScheduleStore(env.service).upsert(schedule)


async def _started(server: uvicorn.Server, serving: asyncio.Task[None]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT_S
    while not server.started:
        if serving.done() or loop.time() > deadline:
            raise CliError("the web UI did not start")
        await asyncio.sleep(0.05)


def _samples() -> tuple[object, ...]:
    from qworker.demo import SAMPLE_TWEETS

    return SAMPLE_TWEETS


def _say(line: str) -> None:
    sys.stderr.write(f"{line}\n")
    sys.stderr.flush()
