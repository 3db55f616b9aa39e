"""Worker processes: start them, and kill, stop, pause and resume them on the injector's word.

Each worker is ``python -m qworker work`` run by this very interpreter (the repository's .venv),
so it is the real command line under test. Settings travel in the environment (``QWORKER_*``).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


def worker_command(concurrency: int) -> list[str]:
    return [
        sys.executable, "-m", "qworker", "work",
        "--concurrency", str(concurrency), "--log-format", "json",
    ]  # fmt: skip


def late_worker_command(concurrency: int) -> list[str]:
    """The same command line, started while Redis is down (see ``chaoslib.late_worker``)."""
    return [sys.executable, "-m", "chaoslib.late_worker", *worker_command(concurrency)[3:]]


@dataclass
class WorkerSlot:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    generation: int = 0
    log: IO[bytes] | None = None
    log_paths: list[Path] = field(default_factory=list)
    # Set while the injector works on this slot, so an exit it caused is not called a crash.
    busy: bool = False


class WorkerPool:
    def __init__(self, command: list[str], env: dict[str, str], run_dir: Path, count: int):
        self.command = command
        self.env = env
        self.run_dir = run_dir
        self.slots = [WorkerSlot(index) for index in range(count)]
        self.started = 0
        self.log_by_pid: dict[int, Path] = {}

    def slot_of(self, pid: int) -> int | None:
        return next((slot.index for slot in self.slots if self.pid(slot.index) == pid), None)

    def pid(self, index: int) -> int | None:
        proc = self.slots[index].proc
        return proc.pid if proc is not None else None

    def start(self, index: int, command: list[str] | None = None) -> int:
        slot = self.slots[index]
        slot.generation += 1
        path = self.run_dir / f"worker-{index}-{slot.generation}.log"
        slot.log_paths.append(path)
        slot.log = path.open("wb")
        # cwd is the run directory: no stray .env file of the developer's leaks into the run.
        slot.proc = subprocess.Popen(
            command or self.command,
            env=self.env,
            cwd=self.run_dir,
            stdin=subprocess.DEVNULL,
            stdout=slot.log,
            stderr=slot.log,
        )
        self.started += 1
        self.log_by_pid[slot.proc.pid] = path
        return slot.proc.pid

    def kill(self, index: int) -> None:
        slot = self.slots[index]
        if slot.proc is not None:
            slot.proc.send_signal(signal.SIGKILL)  # works on a stopped process too
            slot.proc.wait()
        self._forget(slot)

    def terminate(self, index: int) -> None:
        proc = self.slots[index].proc
        if proc is not None:
            proc.send_signal(signal.SIGTERM)

    async def wait_exit(self, index: int, timeout_s: float) -> int | None:
        """The exit code, or None if the process is still running after ``timeout_s``."""
        slot = self.slots[index]
        deadline = time.monotonic() + timeout_s
        while slot.proc is not None and slot.proc.poll() is None:
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.05)
        code = slot.proc.returncode if slot.proc is not None else 0
        self._forget(slot)
        return code

    def pause(self, index: int) -> None:
        slot = self.slots[index]
        if slot.proc is not None:
            slot.proc.send_signal(signal.SIGSTOP)

    def resume(self, index: int) -> None:
        slot = self.slots[index]
        if slot.proc is not None:
            slot.proc.send_signal(signal.SIGCONT)

    def crashed(self) -> list[tuple[int, int, int]]:
        """(slot, pid, exit code) of workers that exited while nobody was stopping them."""
        found = []
        for slot in self.slots:
            if slot.busy or slot.proc is None:
                continue
            code = slot.proc.poll()
            if code is not None:
                found.append((slot.index, slot.proc.pid, code))
                self._forget(slot)
        return found

    async def stop_all(self, timeout_s: float) -> dict[int, int | None]:
        """SIGTERM every worker and wait: the graceful stop at the end of the run."""
        for slot in self.slots:
            slot.busy = True
            self.resume(slot.index)
            self.terminate(slot.index)
        codes = {slot.index: await self.wait_exit(slot.index, timeout_s) for slot in self.slots}
        self.kill_all()
        return codes

    def kill_all(self) -> None:
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                slot.proc.send_signal(signal.SIGKILL)
                slot.proc.wait()
            self._forget(slot)

    def log_tail(self, index: int, lines: int = 3) -> str:
        paths = self.slots[index].log_paths
        if not paths:
            return ""
        text = paths[-1].read_text(errors="replace").splitlines()
        return " | ".join(line.strip() for line in text[-lines:])

    def _forget(self, slot: WorkerSlot) -> None:
        slot.proc = None
        if slot.log is not None:
            slot.log.close()
            slot.log = None
