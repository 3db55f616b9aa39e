"""Every Redis key qworker uses, composed from the namespace here and nowhere else.

With an empty namespace the keys are the seed's own names (``jobs_priority_1`` ...); with a
namespace ``app`` they become ``app:jobs_priority_1``. Every name starts with ``jobs_`` so that
even without a namespace qworker never touches keys it did not create. A namespace with a hash
tag (``{qw}``) puts every key in one Redis Cluster slot, which the Lua scripts require there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

PRIORITIES: tuple[int, ...] = (1, 2, 3, 4)
DEFAULT_PRIORITY = 3

# Fields of the statistics hash.
STAT_PROCESSED = "processed"
STAT_FAILED = "failed"
STAT_DEAD = "dead"
STAT_DEAD_DROPPED = "dead_dropped"
STAT_RECOVERED = "recovered"
# Not a counter but a gauge: jobs waiting for a worker that knows their type (unknown_type.lua).
STAT_UNKNOWN_TYPE_WAITING = "unknown_type_waiting"
STAT_CANCELED = "canceled"
# Jobs a dry-run worker marked done without doing them (mark_dry_run.lua).
STAT_DRY_RUN = "dry_run"

# How many of the most recently finished (done, canceled) job ids are listed for ``jobs list``;
# their records themselves are kept for QWORKER_KEEP_FINISHED_S.
RECENT_FINISHED_MAX = 10_000

# The key names the Lua scripts compose themselves, after the namespace prefix (job records,
# and the keys of a job's unique key, waiters, pause and cancel): the scripts get them from here
# (``--#include keys``), so a name is spelled in this module only.
LUA_KEY_NAMES = {
    "JOB_DATA": "jobs_data:",
    "UNIQUE": "jobs_unique:",
    "SIGNAL": "jobs_signal:",
    "HELD": "jobs_held:",
    "RECENT": "jobs_recent_",
    "CANCEL_REQUESTS": "jobs_cancel_requests",
    "MEDIA": "jobs_media:",
    "LANES": "jobs_lanes",
    "LANE": "jobs_lane:",
    "LANE_WAKEUP": "jobs_lane_wakeup:",
    # Workflows (dependencies.lua): a job's release makes its dependents ready in the same step,
    # so the scripts that end jobs reach these lists by name, not through KEYS.
    "PRIORITY": "jobs_priority_",
    "WAKEUP": "jobs_wakeup",
    "DEAD_LETTER": "jobs_dead_letter",
    "STATS": "jobs_stats",
    "DEPENDENTS": "jobs_dependents:",
    "WAITING": "jobs_waiting",
    # A dependent with a delay or a start time is scheduled when its dependencies are done.
    "SCHEDULED": "jobs_scheduled",
}


@dataclass(frozen=True)
class QueueKeys:
    """Every key name of one namespace. Each name is computed once and kept (the keys of a
    script call are read on every enqueue)."""

    namespace: str = ""
    prefix: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", f"{self.namespace}:" if self.namespace else "")

    def priority(self, priority: int) -> str:
        """List of ready jobs: producers LPUSH, workers take the oldest from the right."""
        return f"{self.prefix}{LUA_KEY_NAMES['PRIORITY']}{priority}"

    @cached_property
    def priorities(self) -> tuple[str, ...]:
        return tuple(self.priority(p) for p in PRIORITIES)

    @cached_property
    def retry(self) -> str:
        """Sorted set of failed jobs waiting for their backoff, scored by due time (ms)."""
        return f"{self.prefix}jobs_retry"

    @cached_property
    def scheduled(self) -> str:
        """Sorted set of jobs enqueued with a delay, scored by the time they become ready (ms)."""
        return f"{self.prefix}{LUA_KEY_NAMES['SCHEDULED']}"

    @cached_property
    def parked(self) -> str:
        """Sorted set of rate-limited jobs, scored by the time their limiter reopens (ms)."""
        return f"{self.prefix}jobs_parked"

    @cached_property
    def dead_letter(self) -> str:
        """Sorted set of permanently failed jobs, scored by the time they failed (ms)."""
        return f"{self.prefix}{LUA_KEY_NAMES['DEAD_LETTER']}"

    @cached_property
    def inflight(self) -> str:
        """Sorted set of claimed jobs, scored by their lease deadline (ms)."""
        return f"{self.prefix}jobs_inflight"

    @cached_property
    def wakeup(self) -> str:
        """List holding at most a token or two: idle workers block on it instead of polling."""
        return f"{self.prefix}{LUA_KEY_NAMES['WAKEUP']}"

    @cached_property
    def seq(self) -> str:
        """Counter giving every enqueued job its number: its place in enqueue order, which
        rate-limited jobs keep when they leave the parked set."""
        return f"{self.prefix}jobs_seq"

    @cached_property
    def fence(self) -> str:
        """A key that never exists. Every script declares it last among its KEYS: while Redis
        Cluster migrates the namespace's slot, a command whose keys are partly missing is
        refused with TRYAGAIN before it runs, so no script ever runs on a half-moved
        namespace (where a job hash could look absent, or vanish between a read and a write).
        Outside a migration a missing key changes nothing."""
        return f"{self.prefix}jobs_fence"

    @cached_property
    def waiting(self) -> str:
        """Sorted set of the jobs waiting for their dependencies, scored by the time (ms) they
        stop waiting and go to the dead-letter queue (the dep-timeout) if still waiting."""
        return f"{self.prefix}{LUA_KEY_NAMES['WAITING']}"

    def dependents(self, job_id: str) -> str:
        """Set of the ids of the jobs that wait for ``job_id`` (enqueue ``--after``)."""
        return f"{self.prefix}{LUA_KEY_NAMES['DEPENDENTS']}{job_id}"

    @cached_property
    def pauses(self) -> str:
        """Hash of what is paused: ``priority:N`` or ``type:T`` to the time (ms) the pause ends,
        -1 until resumed, 0 once ended (kept until its held jobs are back in their lists)."""
        return f"{self.prefix}jobs_pauses"

    def held(self, job_type: str) -> str:
        """Sorted set of the jobs of a paused type that reached the front of their list, scored
        by enqueue order: they go back to the front of their lists when the pause ends."""
        return f"{self.prefix}{LUA_KEY_NAMES['HELD']}{job_type}"

    @cached_property
    def lanes(self) -> str:
        """Hash of the job types that have their own lane (see routing.py) to the time (ms)
        the lane was opened: enqueue and every script that makes a job ready route by it."""
        return f"{self.prefix}{LUA_KEY_NAMES['LANES']}"

    def lane(self, job_type: str, priority: int) -> str:
        """List of the ready jobs of one laned type at one priority, like a priority list."""
        return f"{self.prefix}{LUA_KEY_NAMES['LANE']}{job_type}:{priority}"

    def lane_lists(self, job_type: str) -> list[str]:
        return [self.lane(job_type, p) for p in PRIORITIES]

    def lanes_at(self, job_types: list[str], priority: int) -> list[str]:
        return [self.lane(t, priority) for t in job_types]

    def lane_wakeup(self, job_type: str) -> str:
        """The wakeup list of one lane: only workers serving its type block on it."""
        return f"{self.prefix}{LUA_KEY_NAMES['LANE_WAKEUP']}{job_type}"

    @cached_property
    def cancel_requests(self) -> str:
        """Set of running jobs an operator asked to cancel: the worker holding each stops it."""
        return f"{self.prefix}{LUA_KEY_NAMES['CANCEL_REQUESTS']}"

    def recent(self, state: str) -> str:
        """List of the most recently finished job ids in ``state`` (done, canceled), newest
        first, trimmed back to RECENT_FINISHED_MAX whenever it is 1,000 over."""
        return f"{self.prefix}{LUA_KEY_NAMES['RECENT']}{state}"

    def unique(self, unique_key: str) -> str:
        """The id of the job holding a unique key (enqueue ``--unique-key``)."""
        return f"{self.prefix}{LUA_KEY_NAMES['UNIQUE']}{unique_key}"

    def signal(self, job_id: str) -> str:
        """List that wakes the clients waiting for a job to finish (``job wait``)."""
        return f"{self.prefix}{LUA_KEY_NAMES['SIGNAL']}{job_id}"

    @cached_property
    def stats(self) -> str:
        """Hash of counters: processed, failed, dead, dead_dropped, recovered."""
        return f"{self.prefix}{LUA_KEY_NAMES['STATS']}"

    @cached_property
    def workers(self) -> str:
        """Sorted set of worker ids scored by their last heartbeat (ms)."""
        return f"{self.prefix}jobs_workers"

    @cached_property
    def job_prefix(self) -> str:
        """Prefix of the per-job hashes; Lua scripts append the id to it."""
        return f"{self.prefix}{LUA_KEY_NAMES['JOB_DATA']}"

    def job(self, job_id: str) -> str:
        return f"{self.job_prefix}{job_id}"

    @cached_property
    def rate_prefix(self) -> str:
        return f"{self.prefix}jobs_rate:"

    def rate_log(self, rate_key: str) -> str:
        """Sorted set of one job type's executions in the last 24 hours."""
        return f"{self.rate_prefix}{rate_key}"

    def rate_blocked(self, rate_key: str) -> str:
        """Time (ms) until which the remote side told us to stop (HTTP 429)."""
        return f"{self.rate_prefix}{rate_key}:blocked_until"

    @cached_property
    def rate_keys(self) -> str:
        """Hash of every rate-limit key in use to the limits its workers enforce (for stats)."""
        return f"{self.prefix}jobs_rate_keys"

    def x_limits(self, rate_key: str) -> str:
        """Hash of X's limits as its response headers last reported them, limit name to
        'remaining|reset_ms' (the tweet job's x_gate.lua and x_settle.lua)."""
        return f"{self.rate_prefix}{rate_key}:x_limits"

    def x_spend(self, month: str) -> str:
        """Hash of one calendar month's spend on X (``2026-12``): micro_usd, posts and
        posts_with_url."""
        return f"{self.prefix}jobs_x_spend:{month}"

    def media(self, job_id: str) -> str:
        """Hash of the media files a tweet job carries, index to bytes (the payload names their
        types and alt texts); deleted when the job ends (job_end.lua)."""
        return f"{self.prefix}{LUA_KEY_NAMES['MEDIA']}{job_id}"

    def throughput(self, minute: int) -> str:
        """Hash of the jobs settled in one minute (minutes since the epoch), by outcome; each
        expires after a few hours, so at most that many exist (the web UI's chart)."""
        return f"{self.prefix}jobs_throughput:{minute}"

    @cached_property
    def audit(self) -> str:
        """Stream of the web UI's actions (who, what, when, which jobs), capped in length."""
        return f"{self.prefix}jobs_audit"

    def worker(self, worker_id: str) -> str:
        """Hash describing one live worker; expires unless its heartbeat renews it."""
        return f"{self.prefix}jobs_worker:{worker_id}"

    def worker_wakeup(self, worker_id: str) -> str:
        """List one worker blocks on beside the wakeup lists, so a stop ends its wait at once
        (its idle wait is long: an idle worker should cost Redis next to nothing)."""
        return f"{self.prefix}jobs_worker:{worker_id}:wakeup"

    @cached_property
    def maintenance_turn(self) -> str:
        """String holding the id of the one worker whose turn it is to promote due jobs and
        recover expired leases; it expires unless that worker renews it."""
        return f"{self.prefix}jobs_maintenance_turn"

    @cached_property
    def schedules(self) -> str:
        """Sorted set of every recurring schedule's name, scored by its next due time (ms);
        +inf while paused or ended. Workers sleep until its first score."""
        return f"{self.prefix}jobs_schedules"

    def schedule(self, name: str) -> str:
        """Hash of one recurring schedule: its calendar, its job, its policies, its last fire.
        Schedules are configuration, not queue contents: ``clear`` leaves them."""
        return f"{self.prefix}jobs_schedule:{name}"

    @cached_property
    def schedules_channel(self) -> str:
        """Pub/Sub channel (not a key) on which every change of a schedule is announced, so
        sleeping schedulers wake for it instead of polling."""
        return f"{self.prefix}jobs_schedules_changed"

    @property
    def scan_patterns(self) -> list[str]:
        """Patterns that match every dynamic key of this namespace (for a full clear)."""
        prefix = glob_escape(self.prefix)
        return [
            f"{prefix}jobs_data:*",
            f"{prefix}jobs_rate:*",
            f"{prefix}jobs_worker:*",
            f"{prefix}jobs_held:*",
            f"{prefix}jobs_unique:*",
            f"{prefix}jobs_signal:*",
            f"{prefix}jobs_x_spend:*",
            f"{prefix}jobs_media:*",
            f"{prefix}jobs_lane:*",
            f"{prefix}jobs_lane_wakeup:*",
            f"{prefix}jobs_throughput:*",
            f"{prefix}jobs_dependents:*",
        ]

    @property
    def static_keys(self) -> list[str]:
        return [
            *self.priorities,
            self.retry,
            self.scheduled,
            self.parked,
            self.dead_letter,
            self.inflight,
            self.wakeup,
            self.stats,
            self.seq,
            self.fence,
            self.workers,
            self.rate_keys,
            self.pauses,
            self.lanes,
            self.cancel_requests,
            self.maintenance_turn,
            self.recent("done"),
            self.recent("canceled"),
            self.waiting,
        ]


def glob_escape(text: str) -> str:
    """Escape the characters SCAN MATCH treats as a pattern."""
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)
