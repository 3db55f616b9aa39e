"""The driver's live view of the execution records, read as the workers append them.

It sees two things the final audit would see too late: a job tried far more often than its
attempts allow (a loop: the run stops, since such a job never becomes final), and an execution
that has just blocked its worker's event loop (the injector, which asked for it, then asks Redis
which jobs that worker holds, to tell later whether they were freed).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from chaoslib.contract import RECORD_FILE_GLOB
from chaoslib.history import GATE_HOOK, Execution, HookRaise, add_record


class RecordWatch:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._offsets: dict[Path, int] = {}
        self._runs: dict[tuple[str, int], Execution] = {}
        self._hooks: list[HookRaise] = []
        self.tries: Counter[str] = Counter()
        # Executions started and not yet ended, by process token.
        self.open_runs: dict[str, set[str]] = {}
        # Jobs whose execution is blocking its worker's event loop now (asked for by a fault).
        self.blocking_now: set[str] = set()

    def poll(self) -> list[Execution]:
        """Read what was appended since the last poll; returns the blocking executions that
        started meanwhile."""
        blocking = []
        for path in sorted(self.directory.glob(RECORD_FILE_GLOB)):
            for record in self._new_records(path):
                hooks_before = len(self._hooks)
                run = add_record(record, self._runs, self._hooks)
                for hook in self._hooks[hooks_before:]:
                    self.tries[hook.job_id] += hook.hook == GATE_HOOK
                if run is None:
                    continue
                open_runs = self.open_runs.setdefault(run.proc, set())
                if record["ev"] == "start":
                    self.tries[run.job_id] += 1
                    open_runs.add(run.job_id)
                    if run.block_ms:
                        blocking.append(run)
                        self.blocking_now.add(run.job_id)
                else:
                    open_runs.discard(run.job_id)
                    self.blocking_now.discard(run.job_id)
        self._hooks.clear()  # counted; the audit reads the files again at the end
        return blocking

    def _new_records(self, path: Path) -> list[dict[str, object]]:
        offset = self._offsets.get(path, 0)
        with path.open("rb") as file:
            file.seek(offset)
            data = file.read()
        # A record is one write, but the read may still have caught one half-way.
        complete = data[: data.rfind(b"\n") + 1]
        self._offsets[path] = offset + len(complete)
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def most_tried(self) -> tuple[str, int]:
        return self.tries.most_common(1)[0] if self.tries else ("", 0)
