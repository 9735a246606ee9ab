"""kind_counts: events per kind, kept by the projection and its snapshots."""

from __future__ import annotations

import logging
import random
from collections import Counter
from pathlib import Path

import pytest

from routilux import events as ev
from routilux.job_state import JobState, rebuild_projection
from routilux.projection import snapshot_state


def mutate(job: JobState, rng: random.Random, n: int) -> None:
    """``n`` random mutations of several kinds."""
    actions = [
        lambda i: job.record_execution("r", "e", {"i": i}),
        lambda i: job.record_execution("r", "nested", {"l": [i]}),  # the general path
        lambda i: job.update_shared_data("k", i),
        lambda i: job.update_routine_state("r", {"i": i}),
        lambda i: job.append_to_shared_log({"i": i}),
        lambda i: setattr(job, "status", rng.choice(["running", "paused", "pending"])),
        lambda i: job._task_queued(f"t{i}", {"i": i}),
    ]
    for i in range(n):
        rng.choice(actions)(i)


def expected(job: JobState, version: int | None = None) -> Counter[str]:
    """The event kinds of ``job`` up to ``version``, counted from its log."""
    return Counter(e.kind for e in job.events(stop=version))


def test_counts_follow_every_mutation_in_memory(rng: random.Random) -> None:
    """Live, replayed and time-travelled projections count every event by kind."""
    job = JobState("f")
    job.snapshot_every = 16
    mutate(job, rng, 120)
    assert job._p.kind_counts == expected(job)
    assert sum(job._p.kind_counts.values()) == job.version
    assert JobState.from_events(job.events())._p.kind_counts == expected(job)
    for k in sorted({1, 2, 15, 16, 17, 33, rng.randint(1, job.version), job.version}):
        assert job.at(version=k)._p.kind_counts == expected(job, k)
        assert rebuild_projection(job.log, k).kind_counts == expected(job, k)
    with job._transaction():  # batched events count too
        job.update_shared_data("a", 1)
        job.record_execution("r", "e", {})
    assert job._p.kind_counts == expected(job)


def test_counts_survive_snapshots_and_reopen(tmp_path: Path, rng: random.Random) -> None:
    """A reopened durable job starts from a snapshot whose counts continue correctly."""
    path = tmp_path / "job"
    with JobState.open(path, flow_id="f") as job:
        job.snapshot_every = 10
        mutate(job, rng, 75)
        job.sync()
        snaps = job.log.snapshots()
        assert snaps and all(s.state["kind_counts"] == expected(job, s.seq) for s in snaps)
    with JobState.open(path) as again:
        assert again._p.kind_counts == expected(again)
        mutate(again, rng, 20)
        assert again._p.kind_counts == expected(again)
        head = again.version
    with JobState.open(path, readonly=True) as reader:
        assert rebuild_projection(reader.log).kind_counts == expected(reader)
        assert rebuild_projection(reader.log, head - 3).kind_counts == expected(reader, head - 3)


def test_old_and_malformed_snapshots_are_not_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A schema-1 snapshot (no counts) is skipped; a schema-2 one without counts is ignored with a warning."""
    path = tmp_path / "job"
    with JobState.open(path, flow_id="f") as job:
        for i in range(30):
            job.record_execution("r", "e", {"i": i})
        job.sync()
        state = snapshot_state(job._p)
        old = {k: v for k, v in state.items() if k != "kind_counts"}
        job.log.save_snapshot(old, schema_version=1, seq=job.version)
        want = expected(job)
    with JobState.open(path) as again:  # the schema-1 snapshot is not even looked at
        assert again._p.kind_counts == want
    with JobState.open(path) as again:
        again.log.save_snapshot(old, schema_version=ev.SCHEMA_VERSION, seq=again.version)
        bad = {**snapshot_state(again._p), "kind_counts": {"execution_recorded": 1}}
        again.log.save_snapshot(bad, schema_version=ev.SCHEMA_VERSION, seq=again.version - 1)
    with caplog.at_level(logging.WARNING, logger="routilux.job_state"), JobState.open(path) as again:
        assert again._p.kind_counts == want
        assert again.serialize() == JobState.from_events(again.events()).serialize()
        assert again.at(version=again.version - 1)._p.kind_counts == expected(again, again.version - 1)
    assert "ignoring unusable snapshot" in caplog.text
