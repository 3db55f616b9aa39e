"""Recurring schedules in Redis: build one from a producer's input (validated like an enqueue,
so a bad one stores nothing), and add, read, pause, resume, remove, trigger and fire them, each
change one Lua script."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from qworker.cron import MAX_DUE_MS, check_cron, parse_every, zone
from qworker.errors import QworkerError, ValidationFailed
from qworker.producing import new_job_id, prepare
from qworker.schedules import (
    DEFAULT_MAX_CATCHUP,
    MISSED_POLICIES,
    FirePlan,
    Schedule,
    check_name,
    plan_fires,
)
from qworker.scripts import FireReply, ScheduledJob

if TYPE_CHECKING:
    from qworker.config import Settings
    from qworker.jobs.base import BaseJobParams
    from qworker.service import QueueService

# schedule_pause.lua's reply when the schedule changed between the read and the resume; a
# resume reads again at most this many times (each time needs another change meanwhile).
RESUME_RACED = -2
RESUME_TRIES = 10

# The configuration fields an upsert writes (history and counters are the scripts' own).
CONFIG_FIELDS = (
    "name", "cron", "tz", "every_ms", "start_ms", "end_ms", "job_type", "payload", "priority",
    "max_retries", "missed", "max_catchup", "no_overlap",
)  # fmt: skip


class ScheduleNotFound(QworkerError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule named {name!r} (see: qworker schedule list)")
        self.name = name


class ScheduleBusy(QworkerError):
    """A resume met a change of the schedule every time it read it."""


@dataclass(frozen=True)
class UpsertResult:
    outcome: str  # "added" or "updated"
    next_due_ms: int | None


def build_schedule(
    settings: Settings,
    name: str,
    job_data: dict[str, Any] | BaseJobParams,
    *,
    cron: str | None = None,
    tz: str = "UTC",
    every: str | int | None = None,
    priority: int = 3,
    missed: str = "once",
    max_catchup: int = DEFAULT_MAX_CATCHUP,
    no_overlap: bool = False,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> Schedule:
    """Check everything a schedule needs; raises ValidationFailed naming what is wrong.
    ``every``: a duration (``90s``) or milliseconds."""
    check_name(name)
    if (cron is None) == (every is None):
        raise ValidationFailed("give --cron EXPR or --every DURATION, one of the two")
    every_ms = None
    if cron is not None:
        cron = check_cron(cron)
        zone(tz)
    else:
        every_ms = parse_every(every) if isinstance(every, str) else every
        if every_ms is None or every_ms < 1000 or every_ms % 1000:
            raise ValidationFailed(f"--every must be whole seconds, at least 1s, not {every!r}")
        tz = "UTC"
    if missed not in MISSED_POLICIES:
        raise ValidationFailed(
            f"--missed must be one of {', '.join(MISSED_POLICIES)}, not {missed!r}"
        )
    if not 0 <= max_catchup <= 1000:
        raise ValidationFailed(f"--max-catchup must be 0 to 1000, not {max_catchup}")
    for label, value in (("--start", start_ms), ("--end", end_ms)):
        if value is not None and not 0 <= value <= MAX_DUE_MS:
            raise ValidationFailed(f"{label} must be between 1970 and the year 9999")
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise ValidationFailed("--end must be after --start")
    from qworker.clients import ClientContainer

    # The job is built only to ask its retry config, as an enqueue does; no client is made.
    item = prepare(job_data, priority, None, None, settings, ClientContainer(settings))
    return Schedule(
        name=name,
        cron=cron,
        tz=tz,
        every_ms=every_ms,
        start_ms=start_ms,
        end_ms=end_ms,
        job_type=item.job_type,
        payload=item.payload,
        priority=priority,
        max_retries=item.max_retries,
        missed=missed,
        max_catchup=max_catchup,
        no_overlap=no_overlap,
    )


def anchor_of(schedule: Schedule, now_ms: int) -> int:
    """Where an interval grid starts: the start time, or now to the whole second."""
    return schedule.start_ms if schedule.start_ms is not None else now_ms - now_ms % 1000


class ScheduleStore:
    """The schedules of one namespace, through the service's connection and clock."""

    def __init__(self, service: QueueService) -> None:
        self.service = service
        self.keys = service.keys
        self.scripts = service.scripts

    async def upsert(self, schedule: Schedule) -> UpsertResult:
        now_ms = self.service.clock.now_ms()
        anchor_ms = anchor_of(schedule, now_ms)
        next_due = schedule.model_copy(update={"anchor_ms": anchor_ms}).first_due_ms(now_ms)
        config = {f: v for f, v in schedule.to_hash().items() if f in CONFIG_FIELDS}
        call = self.scripts.schedule_upsert(
            schedule.name, now_ms, schedule.spec_key, next_due, anchor_ms, config
        )
        outcome, due = await self.service.run(call)
        return UpsertResult(outcome, int(due) if due else None)

    async def get(self, name: str) -> Schedule:
        fields = cast(dict[str, str], await self.service.redis.hgetall(self.keys.schedule(name)))
        if not fields:
            raise ScheduleNotFound(name)
        return Schedule.from_hash(fields)

    async def names(self) -> list[str]:
        return [str(n) for n in await self.service.redis.zrange(self.keys.schedules, 0, -1)]

    async def list(self) -> list[Schedule]:
        """Every schedule, by name."""
        names = sorted(await self.names())
        pipe = self.service.redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self.keys.schedule(name))
        replies = await pipe.execute() if names else []
        return [Schedule.from_hash(cast(dict[str, str], f)) for f in replies if f]

    async def set_paused(self, name: str, *, paused: bool) -> bool:
        """True if it changed, False if it already was so."""
        for _try in range(RESUME_TRIES):
            schedule = await self.get(name)
            now_ms = self.service.clock.now_ms()
            next_due = None if paused else schedule.first_due_ms(now_ms)
            call = self.scripts.schedule_pause(
                name, pause=paused, next_due_ms=next_due, now_ms=now_ms, version=schedule.version
            )
            reply = await self.service.run(call)
            if reply != RESUME_RACED:  # else a change came between: read the new calendar
                break
        else:
            raise ScheduleBusy(
                f"schedule {name!r} changed {RESUME_TRIES} times while it was being resumed; "
                "resume it again once the changes (a schedule sync?) are over"
            )
        if reply < 0:
            raise ScheduleNotFound(name)
        return bool(reply)

    async def remove(self, name: str) -> None:
        if not await self.service.run(self.scripts.schedule_remove(name)):
            raise ScheduleNotFound(name)

    async def trigger(self, name: str) -> str:
        """Enqueue one job of the schedule now; its next due time stays. Returns the job id."""
        now_ms = self.service.clock.now_ms()
        job = ScheduledJob(new_job_id(), now_ms, now_ms, 1)
        call = self.scripts.schedule_fire(name, now_ms, trigger=True, jobs=[job])
        reply: FireReply = await self.service.run(call)
        if reply.code < 0:
            raise ScheduleNotFound(name)
        return job.job_id

    async def fire_due(
        self, schedule: Schedule, now_ms: int, script_now_ms: int | None
    ) -> tuple[FirePlan, FireReply]:
        """Fire what has come due of a schedule read at ``now_ms`` (this host's estimate of
        Redis's clock); the script's compare-and-set makes it a no-op if another worker was
        first. ``script_now_ms`` None: the script decides by Redis's own clock."""
        plan = plan_fires(schedule, now_ms)
        jobs = [
            ScheduledJob(new_job_id(), fire.scheduled_for_ms, fire.first_ms, fire.covers)
            for fire in plan.fires
        ]
        call = self.scripts.schedule_fire(
            schedule.name,
            script_now_ms,
            version=schedule.version,
            due_ms=schedule.next_due_ms or 0,
            next_due_ms=plan.next_due_ms,
            missed=plan.missed,
            overlapped=plan.overlapped,
            jobs=jobs,
        )
        return plan, await self.service.runner.run(call)
