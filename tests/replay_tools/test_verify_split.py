"""verify on long logs: the fold split at a snapshot between this process and a child.

Long logs (``PARALLEL_MIN_EVENTS``) are checked by three processes: the storage check,
the first half of the replay here and the second half in a child that starts from a
snapshot. The threshold is lowered here so a small job takes the same path; the
results must be exactly those of the one-process verify, good logs and bad.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import eventlog
from replay_tools import open_job, verify_job
from replay_tools import verify as verify_mod
from replay_tools.replay import projection_at
from routilux.events import SCHEMA_VERSION
from routilux.job_state import JobState
from routilux.projection import snapshot_state


@pytest.fixture
def long_job(tmp_path: Path, drive_job: Any) -> str:
    """A driven job with a snapshot every 10 events, none pruned."""
    path = str(tmp_path / "long")
    job = JobState.open(path, flow_id="long")
    try:
        drive_job(job, rounds=30)
    finally:
        job.close()
    # Snapshots at fixed versions, as the fold would have them (rebuilt from the events).
    with open_job(path) as reader:
        states = {seq: snapshot_state(projection_at(reader, seq)) for seq in range(10, reader.head, 10)}
    log = eventlog.open_log(path, snapshot_gap=0)
    try:
        for seq, state in states.items():
            log.save_snapshot(state, schema_version=SCHEMA_VERSION, seq=seq)
    finally:
        log.close()
    return path


def _verify(path: str, **kwargs: Any) -> Any:
    with open_job(path) as job:
        return verify_job(job, **kwargs)


def _split_used(path: str) -> int:
    with open_job(path) as job:
        snaps = {s.seq: s for s in job.log.snapshots()}
        newest = max(snaps)
        return verify_mod._split_point(job, snaps, newest)


def test_split_verify_agrees_with_the_one_process_verify(long_job: str, monkeypatch: pytest.MonkeyPatch) -> None:
    alone = _verify(long_job, parallel=False)
    monkeypatch.setattr(verify_mod, "PARALLEL_MIN_EVENTS", 10)
    assert _split_used(long_job) > 0, "the test must exercise the split"
    split = _verify(long_job)
    assert alone.ok and split.ok
    assert split.head_hash == alone.head_hash
    assert split.snapshots_checked == alone.snapshots_checked > 2
    assert split.checks == alone.checks == {"storage": True, "snapshots": True, "determinism": True, "head": None,
                                            "audit": True}


def test_split_verify_finds_a_bad_snapshot_in_either_half(long_job: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify_mod, "PARALLEL_MIN_EVENTS", 10)
    middle = _split_used(long_job)
    with open_job(long_job) as job:
        seqs = sorted(s.seq for s in job.log.snapshots())
    first_half = next(s for s in seqs if s < middle)
    second_half = next(s for s in reversed(seqs) if s > middle)
    log = eventlog.open_log(long_job, snapshot_gap=0)
    try:
        for seq in (first_half, second_half):
            snap = log.latest_snapshot(max_seq=seq)
            assert snap is not None and snap.seq == seq
            bad = dict(snap.state)
            bad["shared_data"] = {**bad["shared_data"], "limit": -99}
            log.save_snapshot(bad, schema_version=snap.schema_version, seq=seq)
    finally:
        log.close()
    result = _verify(long_job)
    assert not result.ok and result.checks["snapshots"] is False
    found = sorted(p.seq for p in result.problems if p.kind == "snapshot_state")
    assert found == [first_half, second_half]
    assert all("shared_data" in p.message for p in result.problems if p.kind == "snapshot_state")


def test_split_verify_falls_back_when_the_child_cannot_run(long_job: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify_mod, "PARALLEL_MIN_EVENTS", 10)
    monkeypatch.setattr(verify_mod, "_FOLD_CHILD", "raise SystemExit(3)")
    result = _verify(long_job)
    assert result.ok and result.checks["determinism"] is True
    assert result.snapshots_checked == _verify(long_job, parallel=False).snapshots_checked
