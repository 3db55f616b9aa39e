"""1,000 hand-pushed payloads, most of them garbage, some valid jobs among them.

The worker must survive all of them; every invalid one ends in the dead-letter queue with a
reason and its raw text, every valid one runs once, and nothing is left behind.

Hypothesis draws the payloads: 10 examples of 100 each, derandomized (the same 1,000 every run)
and without shrinking, so the test costs the same few seconds whether it passes or not.
Validity is known by construction, not by asking qworker's own parser.
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from qworker.clock import ManualClock
from qworker.service import QueueService
from qworker.worker import Worker
from tests.jobtypes import ProbeParams, probe, read_events
from tests.redis.conftest import JOB_MODULES, make_test_settings

EXAMPLES = 10
PAYLOADS_PER_EXAMPLE = 100
PROBE_FIELDS = set(ProbeParams.model_fields)


@dataclass(frozen=True)
class Raw:
    """Text pushed as drawn: never a valid job (it cannot even name the required field)."""

    text: str
    valid = False

    def render(self, log_path: str, tag: str) -> str:
        return self.text


@dataclass(frozen=True)
class Valid:
    """A valid probe job, formatted in one of the ways another program might write it."""

    optional: tuple[tuple[str, Any], ...]
    indent: int | None
    ensure_ascii: bool
    valid = True

    def render(self, log_path: str, tag: str) -> str:
        data = probe(log_path, tag=tag, **dict(self.optional))
        return json.dumps(data, indent=self.indent, ensure_ascii=self.ensure_ascii)


@dataclass(frozen=True)
class Truncated:
    """A valid job cut short: a strict prefix of a JSON object is never valid JSON."""

    keep: float
    valid = False

    def render(self, log_path: str, tag: str) -> str:
        text = json.dumps(probe(log_path, tag=tag))
        return text[: int(len(text) * self.keep)]


@dataclass(frozen=True)
class BadProbe:
    """A probe job with one field that its params model must refuse."""

    field: str
    value: Any
    valid = False

    def render(self, log_path: str, tag: str) -> str:
        return json.dumps({**probe(log_path, tag=tag), self.field: self.value})


Spec = Raw | Valid | Truncated | BadProbe


def _no_log_path(text: str) -> bool:
    return "log_path" not in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
random_objects = st.builds(
    lambda job_type, rest: json.dumps(
        rest if job_type is None else {**rest, "job_type": job_type}, ensure_ascii=False
    ),
    st.none() | st.sampled_from(["probe", "Probe", "", "nope", "tweet "]) | json_values,
    st.dictionaries(st.text(max_size=8).filter(_no_log_path), json_values, max_size=4),
)
raw_texts = st.one_of(
    st.text(max_size=120),
    st.binary(max_size=120).map(lambda raw: raw.decode("latin-1")),
    json_values.map(json.dumps),
    random_objects,
).filter(_no_log_path)
bad_fields = st.one_of(
    st.tuples(st.just("sleep_s"), st.floats(max_value=-1e-9) | st.text(max_size=4).map(repr)),
    st.tuples(st.just("outcome"), st.text(max_size=8).filter(lambda s: s not in {"ok", "fail"})),
    st.tuples(st.just("log_path"), st.just("") | st.integers() | st.none()),
    st.tuples(st.just("tag"), st.integers() | st.lists(st.text(max_size=3), max_size=2)),
    st.tuples(st.just("job_type"), st.just("probe ") | st.just("PROBE")),
    st.tuples(st.text(min_size=1, max_size=8).filter(lambda s: s not in PROBE_FIELDS), json_values),
)
valid_specs = st.builds(
    Valid,
    optional=st.lists(
        st.sampled_from([("sleep_s", 0.0), ("sleep_s", 0), ("outcome", "ok")]),
        max_size=2,
        unique_by=lambda pair: pair[0],
    ).map(tuple),
    indent=st.none() | st.just(2),
    ensure_ascii=st.booleans(),
)
specs = st.one_of(
    st.builds(Raw, raw_texts),
    st.builds(Truncated, st.floats(min_value=0.0, max_value=0.99)),
    st.builds(lambda pair: BadProbe(*pair), bad_fields),
    valid_specs,
)
pushes = st.lists(
    st.tuples(specs, st.integers(min_value=1, max_value=4)),
    min_size=PAYLOADS_PER_EXAMPLE,
    max_size=PAYLOADS_PER_EXAMPLE,
)


async def push_run_and_check(redis_url: str, batch: list[tuple[Spec, int]], log: Path) -> None:
    # No wait for a worker that knows an unknown type: every bad payload is dead at once.
    settings = make_test_settings(redis_url, f"fuzz{uuid4().hex[:10]}", unknown_type_grace_s=0)
    clock = ManualClock()
    async with QueueService(settings=settings, clock=clock) as service:
        valid_tags: set[str] = set()
        invalid: Counter[str] = Counter()
        pipe = service.redis.pipeline(transaction=False)
        for index, (spec, priority) in enumerate(batch):
            tag = f"v{index}"
            text = spec.render(str(log), tag)
            if spec.valid:
                valid_tags.add(tag)
            else:
                invalid[text] += 1
            pipe.lpush(service.keys.priority(priority), text)
        await pipe.execute()

        worker = Worker(
            service,
            settings=settings,
            burst=True,
            concurrency=8,
            clock=clock,
            rng=random.Random(0),
            job_modules=JOB_MODULES,
        )
        await asyncio.wait_for(worker.run(), 30)  # survives: returns, does not raise

        started = [e.tag for e in read_events(log, "start")]
        assert sorted(started) == sorted(valid_tags)  # each valid job ran, once
        assert {e.tag for e in read_events(log, "done")} == valid_tags
        dead = await service.list_dead(limit=PAYLOADS_PER_EXAMPLE + 1)
        assert Counter(record.payload for record in dead) == invalid
        for record in dead:
            assert record.error is not None, record
            assert record.error.type in ("InvalidPayload", "UnknownJobType"), record
            assert record.error.message, record
        stats = await service.get_queue_stats()
        assert (stats.total_jobs, stats.in_flight, stats.retry, stats.parked) == (0, 0, 0, 0)
        assert stats.total_processed == len(valid_tags)
        assert stats.dead_letter == stats.total_dead == sum(invalid.values())


def test_a_thousand_hand_pushed_payloads(redis_url: str) -> None:
    batches: list[int] = []
    mix: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(pushes)
    def run_batch(batch: list[tuple[Spec, int]]) -> None:
        batches.append(len(batch))
        mix.update(type(spec).__name__ for spec, _ in batch)
        with tempfile.TemporaryDirectory() as directory:
            asyncio.run(push_run_and_check(redis_url, batch, Path(directory) / "probe.log"))

    run_batch()

    assert sum(batches) >= EXAMPLES * PAYLOADS_PER_EXAMPLE, batches
    assert min(mix.values()) >= 50, mix  # every kind of payload was well represented
