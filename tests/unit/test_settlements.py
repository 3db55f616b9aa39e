"""A held job is either run by this worker or handed back by its heartbeat, never both: the
event loop's "begin" and the heartbeat's "lose the waiting" are one step each under one lock."""

from __future__ import annotations

import threading
import time

from qworker.keys import QueueKeys
from qworker.running import RunningJob, SettlementBuffer
from qworker.scripts import ClaimedJob, QueueScripts


def buffer() -> SettlementBuffer:
    return SettlementBuffer(QueueScripts(QueueKeys("t")), keep_ms=0, now_ms=lambda: None)


class SlowToMark(RunningJob):
    """A job whose ``ran`` takes a while to read and to set: a check and a mark that are not
    one step under the lock would let the other thread in between."""

    @property
    def ran(self) -> bool:
        time.sleep(0.0001)
        return bool(self.__dict__.get("_ran", False))

    @ran.setter
    def ran(self, value: bool) -> None:
        time.sleep(0.0001)
        self.__dict__["_ran"] = value


def held(job_id: str) -> RunningJob:
    return SlowToMark(
        claimed=ClaimedJob(job_id, 1, {}), owner=f"w:{job_id}", priority=2, attempt=1, started=0
    )


def test_a_job_lost_while_waiting_does_not_begin() -> None:
    settlements, waiting, started = buffer(), held("a"), held("b")
    assert settlements.begin(started)
    assert settlements.lose_waiting([waiting, started]) == [waiting.key]
    assert not settlements.begin(waiting) and not waiting.ran
    assert settlements.is_lost(waiting) and not settlements.is_lost(started)


def race_once(jobs: list[RunningJob]) -> tuple[list[RunningJob], list[tuple[str, str]]]:
    """The event loop begins every job while the heartbeat loses those not begun."""
    settlements = buffer()
    begun: list[RunningJob] = []
    lost: list[tuple[str, str]] = []
    gate = threading.Barrier(2)

    def loop() -> None:
        gate.wait()
        begun.extend(job for job in jobs if settlements.begin(job))

    def heartbeat() -> None:
        gate.wait()
        for job in jobs:  # one at a time, on the loop's heels
            lost.extend(settlements.lose_waiting([job]))

    threads = [threading.Thread(target=loop), threading.Thread(target=heartbeat)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return begun, lost


def test_begin_and_lose_waiting_racing_give_each_job_to_exactly_one() -> None:
    for _round in range(20):
        jobs = [held(str(i)) for i in range(20)]
        begun, lost = race_once(jobs)
        assert sorted([job.key for job in begun] + lost) == sorted(job.key for job in jobs)


def test_settled_claims_are_known_until_redis_has_them_all() -> None:
    """What a lost claim's hand-back leaves alone: every settlement not yet acknowledged."""
    settlements, first, second = buffer(), held("a"), held("b")
    settlements.add_completed(first)
    sent, _claims, send = settlements.take()
    settlements.add_completed(second)  # while the first send is on its way
    assert sent and set(settlements.unacknowledged) == {first.key, second.key}
    settlements.acknowledged(send)
    assert set(settlements.unacknowledged) == {second.key}
    _calls, _settled, later = settlements.take()
    settlements.acknowledged(later)
    assert settlements.unacknowledged == set()


def test_a_steady_stream_of_settlements_keeps_few_unacknowledged() -> None:
    """Under a steady drain the buffer is never empty when a send is acknowledged: what was
    acknowledged is forgotten all the same."""
    settlements = buffer()
    for number in range(1000):
        _calls, _claims, send = settlements.take()
        settlements.add_completed(held(str(number)))  # finished while the send was on its way
        settlements.acknowledged(send)
        assert len(settlements.unacknowledged) <= 1


def test_a_refused_settlement_keeps_only_its_own_claims_unacknowledged() -> None:
    """One call Redis refuses on every send (a clobbered record) goes again each time; the
    claims of everything else settled meanwhile are forgotten once acknowledged."""
    settlements = buffer()
    stuck, first = held("stuck"), held("0")
    settlements.add(stuck, settlements.scripts.renew(None, 1000, [stuck.key]))
    settlements.add_completed(first)
    for number in range(1, 100):
        calls, claims, send = settlements.take()
        for call, settled in zip(calls, claims, strict=True):
            if call.script.name == "renew":  # refused, every time
                settlements.retry(call, settled)
        settlements.add_completed(held(str(number)))
        settlements.acknowledged(send)
        assert set(settlements.unacknowledged) == {stuck.key, held(str(number)).key}
