"""Jobs of a type this worker does not know. During a rolling deploy a new type's producers may
come up before the workers that know it, so such a job is not dead at once: it waits in the
scheduled set (no attempt counted) for a worker that knows the type, for at most
``QWORKER_UNKNOWN_TYPE_GRACE_S`` after a worker first saw it so, and only then goes to the
dead-letter queue, naming the type and the types the worker knew. Meanwhile the statistics hash
counts it (``keys.STAT_UNKNOWN_TYPE_WAITING``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from qworker.error_records import error_json
from qworker.errors import UnknownJobType
from qworker.jobs.base import JobFactory
from qworker.keys import QueueKeys
from qworker.running import RunningJob
from qworker.scripts import QueueScripts, ScriptCall

log = logging.getLogger("qworker.worker")

# unknown_type.lua marks a job whose type a worker did not know: since when (ms).
UNKNOWN_SINCE_FIELD = "unknown_type_since_ms"
# How often a job of an unknown type comes back to see whether a worker knows it now.
UNKNOWN_TYPE_RETRY_S = 10.0


@dataclass
class UnknownTypes:
    keys: QueueKeys
    scripts: QueueScripts
    grace_s: float
    # How long the record of a job canceled while it waited stays readable.
    keep_ms: int
    _warned: set[str] = field(default_factory=set)  # once per type

    def settle(
        self, running: RunningJob, exc: UnknownJobType, now_ms: int
    ) -> tuple[str, list[ScriptCall[Any]]]:
        """What to do with the job: ("deferred", calls) while it may wait, else ("dead", the
        calls that clear its mark; the caller buries it with ``dead_letter_error``)."""
        since_ms = _int_or_none(running.claimed.fields.get(UNKNOWN_SINCE_FIELD))
        waited_s = 0.0 if since_ms is None else (now_ms - since_ms) / 1000
        job_id, owner = running.claimed.id, running.owner
        waits = waited_s < self.grace_s
        mark = self.scripts.unknown_type(job_id, owner, mark=waits, now_ms=now_ms)
        if not waits:
            return "dead", [mark] if since_ms is not None else []
        if since_ms is None and exc.job_type not in self._warned:
            self._warned.add(exc.job_type)
            log.warning(
                "job type %r is unknown here (known: %s); its jobs wait up to %gs for a "
                "worker that knows it",
                exc.job_type,
                _known(),
                self.grace_s,
            )
        message = (
            f"no worker has known job type {exc.job_type!r} yet (this one knows: {_known()}); "
            f"it waits up to {self.grace_s:g}s for one that does"
        )
        due_ms = now_ms + int(min(UNKNOWN_TYPE_RETRY_S, self.grace_s - waited_s) * 1000)
        defer = self.scripts.defer(
            self.keys.scheduled, job_id, owner, due_ms, None,
            error_json("UnknownJobType", message), now_ms, state="scheduled",
            keep_ms=self.keep_ms,
        )  # fmt: skip
        return "deferred", [mark, defer]

    def dead_letter_error(self, exc: UnknownJobType) -> str:
        return error_json(
            "UnknownJobType",
            f"no worker knew job type {exc.job_type!r} within {self.grace_s:g}s "
            f"(QWORKER_UNKNOWN_TYPE_GRACE_S); this worker knows: {_known()}. Load the "
            "module that registers it with --import MODULE or QWORKER_JOB_MODULES",
        )

    def clear(self, running: RunningJob, now_ms: int) -> ScriptCall[int]:
        """The call that clears the mark of a job (``UNKNOWN_SINCE_FIELD`` among its fields)
        that a worker knowing its type now has: one more round trip, only for such jobs."""
        job_id, owner = running.claimed.id, running.owner
        return self.scripts.unknown_type(job_id, owner, mark=False, now_ms=now_ms)


def _known() -> str:
    return ", ".join(JobFactory.known_types()) or "none"


def _int_or_none(value: str | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None
