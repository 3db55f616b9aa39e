"""A dead dependent deleted for good (``dlq delete``, the dead-letter queue's retention trim, a
clear of the dead-letter queue) lets go of its dependencies' records: a done dependency's record
is kept for its dependents while any may still run, and one that is gone can never run again.
Before, such a record stayed in Redis for ever."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from qworker.flows import chain, group
from qworker.service import QueueService
from tests.flows.jobtypes import step

RunBurst = Callable[..., Awaitable[Any]]


async def dead_after_done(
    service: QueueService, run_burst: RunBurst, log: Path, tmp_path: Path
) -> tuple[str, str]:
    """A chain whose first step is done and whose second is dead: (first, second)."""
    broken = tmp_path / "broken"
    broken.touch()
    first, second = await service.add_flow(
        chain(step(log, "first", result=1), step(log, "second", fail_while=str(broken)))
    )
    await run_burst()
    job = await service.get_job(second)
    assert job is not None and job.state == "dead"
    # The first record is kept while its dependent may come back (a requeue of the dead one).
    assert await service.redis.pttl(service.keys.job(first)) == -1
    return first, second


async def deleted_with(how: str, service: QueueService, second: str) -> None:
    if how == "delete":
        assert await service.delete_dead([second]) == [second]
    elif how == "trim":  # as the maintenance turn trims a dead-letter queue past its cap
        keep_ms = service.settings.keep_finished_ms
        trim = service.scripts.trim_dead_letter(0, 0, keep_ms=keep_ms)
        assert await service.run(trim) == 1
    else:
        assert await service.clear_queue(dead_letter=True) == 1


@pytest.mark.parametrize("how", ["delete", "trim", "clear"])
async def test_a_deleted_dead_dependent_lets_go_of_its_dependency(
    service: QueueService, run_burst: RunBurst, log: Path, tmp_path: Path, how: str
) -> None:
    first, second = await dead_after_done(service, run_burst, log, tmp_path)

    await deleted_with(how, service, second)

    keep_ms = service.settings.keep_finished_ms
    assert 0 < await service.redis.pttl(service.keys.job(first)) <= keep_ms
    assert await service.redis.exists(service.keys.job(second)) == 0
    assert 0 < await service.redis.pttl(service.keys.dependents(first)) <= keep_ms


async def test_a_dependency_others_still_need_is_kept(
    service: QueueService, run_burst: RunBurst, log: Path, tmp_path: Path
) -> None:
    """Two dependents of one done job: deleting the dead one keeps the record for the other,
    still waiting on a second dependency."""
    broken, held = tmp_path / "broken", tmp_path / "held"
    broken.touch()
    held.touch()
    first = await service.add_job(step(log, "first", result=1))
    slow = await service.add_job(step(log, "slow", fail_while=str(held)))
    await run_burst()
    [dead] = await service.add_flow(chain(step(log, "dead", fail_while=str(broken))), after=[first])
    [still] = await service.add_flow(group(step(log, "still")), after=[first, slow])
    await run_burst()
    assert await service.redis.pttl(service.keys.job(first)) == -1

    assert await service.delete_dead([dead]) == [dead]

    # `still`, dead because `slow` is, comes back if `slow` is requeued, and then needs
    # `first`'s result.
    job = await service.get_job(still)
    assert job is not None and job.state == "dead"
    assert await service.redis.pttl(service.keys.job(first)) == -1


async def test_a_cleared_dependency_ends_its_waiting_dependents_at_once(
    service: QueueService, log: Path
) -> None:
    """Cleared while queued, a dependency can never finish: a dependent that would fail with it
    is dead-lettered now, with the reason (and its own dependent after it), and one that runs
    anyway is queued now, not at the dep-timeout days later."""
    first, failing, after_failing = await service.add_flow(
        chain(step(log, "first"), step(log, "failing"), step(log, "after"))
    )
    running_anyway = await service.add_job(
        step(log, "anyway"), priority=2, depends_on=[first], on_dep_fail="run"
    )

    assert await service.clear_queue([3]) == 1

    assert await service.get_job(first) is None
    for job_id, cause in ((failing, first), (after_failing, failing)):
        job = await service.get_job(job_id)
        assert job is not None and job.state == "dead" and job.error is not None
        assert job.error.message == f"dependency {cause} " + (
            "deleted" if cause == first else "dead"
        )
    job = await service.get_job(running_anyway)
    assert job is not None and job.state == "queued"
    assert await service.redis.lrange(service.keys.priority(2), 0, -1) == [running_anyway]
    stats = await service.get_queue_stats()
    assert (stats.dead_letter, stats.total_jobs) == (2, 1)
    assert await service.redis.zcard(service.keys.waiting) == 0


async def test_a_dependent_queued_by_a_clear_is_not_cleared_in_its_place(
    service: QueueService, log: Path
) -> None:
    """The dependent a clear makes ready joins the list being cleared: the clear removes what it
    read, not the newcomer (which would leave it queued nowhere, and an id of a deleted job)."""
    other = await service.add_job(step(log, "other"), priority=2)
    first = await service.add_job(step(log, "first"), priority=2)
    anyway = await service.add_job(
        step(log, "anyway"), priority=2, depends_on=[first], on_dep_fail="run"
    )

    assert await service.clear_queue([2]) == 2

    assert (await service.get_job(other), await service.get_job(first)) == (None, None)
    assert await service.redis.lrange(service.keys.priority(2), 0, -1) == [anyway]
    job = await service.get_job(anyway)
    assert job is not None and job.state == "queued"


async def test_a_dead_dependency_deleted_is_not_counted_twice_by_one_that_runs_anyway(
    service: QueueService, run_burst: RunBurst, log: Path, tmp_path: Path
) -> None:
    """A dependent that runs anyway stopped counting a dependency when it died; its deletion
    must not count it again, which would run the dependent before its other dependency."""
    broken = tmp_path / "broken"
    broken.touch()
    dead = await service.add_job(step(log, "dead", fail_while=str(broken)))
    await run_burst()
    later = await service.add_job(step(log, "later"), delay_s=3600)
    anyway = await service.add_job(step(log, "anyway"), depends_on=[dead, later], on_dep_fail="run")
    assert await service.redis.hget(service.keys.job(anyway), "deps_left") == "1"

    assert await service.delete_dead([dead]) == [dead]

    job = await service.get_job(anyway)
    assert job is not None and job.state == "waiting"
    assert await service.redis.hget(service.keys.job(anyway), "deps_left") == "1"


async def test_a_dependent_requeued_to_wait_for_a_dead_one_ends_when_it_is_deleted(
    service: QueueService, run_burst: RunBurst, log: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.touch()
    dead, dependent = await service.add_flow(
        chain(step(log, "dead", fail_while=str(broken)), step(log, "dependent"))
    )
    await run_burst()
    assert (await service.requeue_dead([dependent])).requeued == [dependent]
    job = await service.get_job(dependent)
    assert job is not None and job.state == "waiting"  # for `dead`, which may be requeued

    assert await service.delete_dead([dead]) == [dead]

    job = await service.get_job(dependent)
    assert job is not None and job.state == "dead" and job.error is not None
    assert job.error.message == f"dependency {dead} deleted"


async def test_repair_keeps_dead_a_dependent_whose_other_dependency_was_deleted(
    service: QueueService, run_burst: RunBurst, log: Path, tmp_path: Path
) -> None:
    """Requeuing one failed dependency brings back the dependents it took down, but not one
    that also lost a deleted dependency: that one never finishes, so it is still failed."""
    broken = tmp_path / "broken"
    broken.touch()
    cleared = await service.add_job(step(log, "cleared"), priority=3)
    failing = await service.add_job(step(log, "failing", fail_while=str(broken)), priority=2)
    dependent = await service.add_job(step(log, "dependent"), depends_on=[cleared, failing])
    await service.clear_queue([3])
    await run_burst()
    assert (await service.get_job(failing)).state == "dead"  # type: ignore[union-attr]

    broken.unlink()
    assert (await service.requeue_dead([failing])).requeued == [failing]

    job = await service.get_job(dependent)
    assert job is not None and job.state == "dead" and job.error is not None
    assert job.error.message == f"dependency {cleared} deleted"
