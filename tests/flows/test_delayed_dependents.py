"""A dependent with a delay or a start time, on a real redis-server: when its dependencies are
done it is scheduled (the delay counted from then; the start time a not-before), and runs when
that time comes, through the same promotion as any scheduled job."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from qworker.clock import ManualClock
from qworker.errors import ValidationFailed
from qworker.flows import Step, chain
from qworker.service import QueueService
from tests.flows.jobtypes import ran, step

RunBurst = Callable[..., Awaitable[Any]]
MINUTE_MS = 60_000


async def where(service: QueueService, job_id: str) -> tuple[str, float | None, bool]:
    """(state, score in the scheduled set, whether it still counts as waiting)."""
    job = await service.get_job(job_id)
    assert job is not None
    k = service.keys
    waiting = await service.redis.zscore(k.waiting, job_id) is not None
    return job.state, await service.redis.zscore(k.scheduled, job_id), waiting


async def test_the_delay_counts_from_the_release(
    service: QueueService, run_burst: RunBurst, clock: ManualClock, log: Path
) -> None:
    first, second = await service.add_flow(
        chain(step(log, "first"), Step(step(log, "second"), delay_s=60))
    )
    clock.advance(600)  # ten minutes pass before the first runs: the delay starts after it
    released_ms = clock.now_ms()
    await run_burst()

    assert await where(service, second) == ("scheduled", released_ms + MINUTE_MS, False)
    job = await service.get_job(second)
    assert job is not None and job.run_at_ms == released_ms + MINUTE_MS
    clock.advance(59)
    await run_burst()
    assert [line["name"] for line in ran(log)] == ["first"]

    clock.advance(1)
    await run_burst()
    assert [line["name"] for line in ran(log)] == ["first", "second"]
    assert ran(log)[1]["deps"] == {first: None}


async def test_a_start_time_is_a_not_before(
    service: QueueService, run_burst: RunBurst, clock: ManualClock, log: Path
) -> None:
    in_an_hour = clock.now_ms() + 60 * MINUTE_MS
    _, later, past = await service.add_flow(
        chain(
            step(log, "first"),
            Step(step(log, "later"), run_at_ms=in_an_hour),
            Step(step(log, "past"), run_at_ms=clock.now_ms() - MINUTE_MS),
        )
    )
    await run_burst()
    assert await where(service, later) == ("scheduled", in_an_hour, False)
    assert await where(service, past) == ("waiting", None, True)

    clock.set_ms(in_an_hour)
    await run_burst()  # `later` runs, and `past`, whose time is long gone, at once after it
    assert [line["name"] for line in ran(log)] == ["first", "later", "past"]


async def test_a_first_step_with_a_delay_is_scheduled_at_once(
    service: QueueService, clock: ManualClock, log: Path
) -> None:
    first, second = await service.add_flow(
        chain(Step(step(log, "first"), delay_s=30), step(log, "second"))
    )
    assert await where(service, first) == ("scheduled", clock.now_ms() + 30_000, False)
    assert await where(service, second) == ("waiting", None, True)


async def test_add_job_after_others_with_a_delay(
    service: QueueService, run_burst: RunBurst, clock: ManualClock, log: Path
) -> None:
    first = await service.add_job(step(log, "first"))
    after = await service.add_job(step(log, "after"), depends_on=[first], delay_s=120)
    assert await where(service, after) == ("waiting", None, True)
    await run_burst()
    assert await where(service, after) == ("scheduled", clock.now_ms() + 120_000, False)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"delay_s": -1}, "must not be negative"),
        ({"delay_s": float("nan")}, "finite"),
        ({"delay_s": 5, "run_at_ms": 1}, "not both"),
        ({"run_at_ms": -5}, "out of range"),
    ],
)
async def test_a_bad_delay_or_start_time_queues_nothing(
    service: QueueService, log: Path, options: dict[str, Any], words: str
) -> None:
    first = await service.add_job(step(log, "first"))
    with pytest.raises(ValidationFailed, match=words):
        await service.add_flow(chain(step(log, "a"), Step(step(log, "b"), **options)))
    with pytest.raises(ValidationFailed, match=words):
        await service.add_job(step(log, "c"), depends_on=[first], **options)
    assert (await service.get_queue_stats()).total_jobs == 1


async def test_requeued_by_hand_it_runs_at_once_and_repaired_it_waits_again(
    service: QueueService, run_burst: RunBurst, clock: ManualClock, log: Path, tmp_path: Path
) -> None:
    """A delayed dependent that failed on its own and is requeued by hand is queued now, as any
    requeued job; one brought back by the repair of its dependency waits its delay again after
    that dependency is done."""
    broken = tmp_path / "broken"
    broken.touch()
    _, own_failure = await service.add_flow(
        chain(step(log, "first"), Step(step(log, "own", fail_while=str(broken)), delay_s=60))
    )
    failing, repaired = await service.add_flow(
        chain(step(log, "failing", fail_while=str(broken)), Step(step(log, "rep"), delay_s=60))
    )
    await run_burst()
    clock.advance(60)
    await run_burst()
    assert [await where(service, j) for j in (own_failure, repaired)] == [("dead", None, False)] * 2

    broken.unlink()
    assert (await service.requeue_dead([own_failure, failing])).requeued == [own_failure, failing]
    assert await where(service, own_failure) == ("queued", None, False)
    assert await where(service, repaired) == ("waiting", None, True)
    await run_burst()
    assert await where(service, repaired) == ("scheduled", clock.now_ms() + MINUTE_MS, False)


async def test_a_flow_whose_delays_outlast_a_later_steps_dep_timeout_is_refused(
    service: QueueService, clock: ManualClock, log: Path
) -> None:
    eight_days_ms = 8 * 24 * 60 * MINUTE_MS
    in_eight_days = Step(step(log, "b"), run_at_ms=clock.now_ms() + eight_days_ms)
    with pytest.raises(ValidationFailed, match=r"step 3 would wait at least 192 h .* 168 h"):
        await service.add_flow(chain(step(log, "a"), in_eight_days, step(log, "c")))
    four_days = Step(step(log, "x"), delay_s=4 * 24 * 3600)
    with pytest.raises(ValidationFailed, match="step 3 would wait"):  # the delays add up
        await service.add_flow(chain(four_days, four_days, step(log, "y")))
    with pytest.raises(ValidationFailed, match=r"past its dep-timeout of 0\.0166667 h"):
        await service.add_flow(chain(Step(step(log, "z"), delay_s=600), step(log, "w")),
                               dep_timeout_s=60)  # fmt: skip
    assert (await service.get_queue_stats()).total_jobs == 0
    assert await service.redis.zcard(service.keys.waiting) == 0
    # A last step may wait as long as it likes: nothing waits for it.
    await service.add_flow(chain(step(log, "a"), in_eight_days))


async def test_a_waiting_dependent_says_what_follows_its_dependencies(
    service: QueueService, clock: ManualClock, log: Path
) -> None:
    """``job show`` (and the web UI's job page) of a waiting dependent names its delay or its
    start time."""
    at_ms = 1_800_000_000_000
    _, delayed, timed = await service.add_flow(
        chain(
            step(log, "first"),
            Step(step(log, "delayed"), delay_s=5400),
            Step(step(log, "timed"), run_at_ms=at_ms),
        )
    )
    reasons = []
    for job_id in (delayed, timed):
        job = await service.get_job(job_id)
        assert job is not None and job.waiting is not None
        reasons.append(job.waiting.reason)
    assert reasons == [
        "1 of its dependencies not done yet; then a delay of 1h 30m",
        "1 of its dependencies not done yet; then not before 2027-01-15T08:00:00Z",
    ]
