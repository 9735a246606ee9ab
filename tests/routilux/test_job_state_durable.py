"""Durable JobStates (open/close/reopen) and save/load bundles."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from eventlog import LogLockedError
from routilux.errors import ReadOnlyJobStateError
from routilux.job_state import JobState


def _fill(js: JobState, n: int = 20) -> None:
    js.status = "running"
    for i in range(n):
        js.record_execution("r", "e", {"i": i})
        js.update_shared_data("i", i)
    js.append_to_shared_log({"done": True})
    js._set_paused("p", {"at": n})


def test_open_creates_then_reopen_continues(tmp_path: Path) -> None:
    """Reopening a durable job continues the same job (same id, state and hash)."""
    path = tmp_path / "job"
    with JobState.open(path, flow_id="f") as js:
        js.snapshot_every = 8
        _fill(js)
        before, head, job_id = js.serialize(), js.head_hash, js.job_id
    with JobState.open(path) as again:
        assert again.job_id == job_id and again.flow_id == "f"
        assert again.serialize() == before and again.head_hash == head
        again.record_execution("r", "more", {})
        version = again.version
    with JobState.open(path, flow_id="f") as third:
        assert third.version == version
        assert third.execution_history[-1].event_name == "more"


def test_open_wrong_flow_and_locking(tmp_path: Path) -> None:
    """A different flow id is refused; a second writer gets the log's lock error."""
    path = tmp_path / "job"
    js = JobState.open(path, flow_id="f")
    with pytest.raises(LogLockedError):
        JobState.open(path)
    reader = JobState.open(path, readonly=True)
    assert reader.readonly and reader.job_id == js.job_id
    with pytest.raises(ReadOnlyJobStateError):
        reader.status = "running"
    reader.close()
    js.close()
    with pytest.raises(ValueError, match="belongs to flow 'f'"):
        JobState.open(path, flow_id="other")
    with pytest.raises(FileNotFoundError):
        JobState.open(tmp_path / "nothing", readonly=True)


def test_readonly_open_sees_a_running_job(tmp_path: Path) -> None:
    """A read-only open of a job being written shows its acknowledged events."""
    with JobState.open(tmp_path / "job") as js:
        _fill(js, 5)
        with JobState.open(tmp_path / "job", readonly=True) as view:
            assert view.serialize() == js.serialize()


def test_at_on_durable_uses_snapshots(tmp_path: Path) -> None:
    """at() on a durable job with snapshots equals a replay of the prefix."""
    with JobState.open(tmp_path / "job") as js:
        js.snapshot_every = 5
        _fill(js, 30)
        events = js.events()
        js.sync()  # snapshots are written in the background; sync() waits for them
        newest = js.log.latest_snapshot()
        assert newest is not None and newest.seq > js.version - 5
        for k in (1, 5, 6, 33, newest.seq, newest.seq + 1, js.version):
            view = js.at(version=k)
            assert view.serialize() == JobState.from_events(events[:k]).serialize()


def test_save_load_round_trip_and_keep_going(tmp_path: Path) -> None:
    """load(save()) equals the job; the loaded job can keep going and be saved again."""
    js = JobState("f")
    _fill(js)
    target = tmp_path / "sub" / "job.bundle"
    js.save(target)  # creates the parent directory
    loaded = JobState.load(target)
    assert loaded.serialize() == js.serialize() and loaded.head_hash == js.head_hash
    assert not loaded.readonly
    loaded.record_execution("r", "after-load", {})
    loaded.save(target)
    again = JobState.load(target)
    assert again.version == js.version + 1
    assert again.execution_history[-1].event_name == "after-load"


def test_load_earlier_point(tmp_path: Path) -> None:
    """load(version=..., timestamp=...) rebuilds an earlier, read-only state."""
    js = JobState()
    _fill(js, 5)
    js.save(tmp_path / "j")
    events = js.events()
    old = JobState.load(tmp_path / "j", version=4)
    assert old.serialize() == JobState.from_events(events[:4]).serialize()
    assert old.readonly
    with pytest.raises(ReadOnlyJobStateError):
        old.update_shared_data("x", 1)
    stamp = events[5].timestamp
    by_time = JobState.load(tmp_path / "j", timestamp=stamp)
    assert by_time.version >= 6 and all(e.timestamp <= stamp for e in by_time.events())


def test_load_errors(tmp_path: Path) -> None:
    """Missing file: FileNotFoundError; not a job file or damaged: ValueError saying why."""
    with pytest.raises(FileNotFoundError):
        JobState.load(tmp_path / "missing.job")
    junk = tmp_path / "junk.job"
    junk.write_bytes(b"not a bundle at all")
    with pytest.raises(ValueError, match="junk.job"):
        JobState.load(junk)
    js = JobState()
    _fill(js, 50)
    good = tmp_path / "good.job"
    js.save(good)
    data = bytearray(good.read_bytes())
    for offset in (len(data) // 3, len(data) // 2, len(data) - 5):
        damaged = tmp_path / f"damaged-{offset}.job"
        flipped = bytearray(data)
        flipped[offset] ^= 0x40
        damaged.write_bytes(bytes(flipped))
        with pytest.raises(ValueError):
            JobState.load(damaged)
    truncated = tmp_path / "truncated.job"
    truncated.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ValueError):
        JobState.load(truncated)


def test_load_refuses_a_bundle_of_something_else(tmp_path: Path) -> None:
    """A valid eventlog bundle that is not a job is a ValueError naming the problem."""
    from eventlog import InMemoryEventLog, write_bundle

    log = InMemoryEventLog()
    log.append("order_placed", {"id": 1})
    write_bundle(tmp_path / "orders.bundle", log)
    with pytest.raises(ValueError, match="not a routilux job file"):
        JobState.load(tmp_path / "orders.bundle")


def test_terminal_status_syncs_durable_log(tmp_path: Path) -> None:
    """Reaching a terminal status makes every event durable."""
    with JobState.open(tmp_path / "job", durability="none") as js:
        js.record_execution("r", "e", {})
        js.status = "completed"
        assert js.log.durable_seq == js.version


def test_timestamps_survive_reopen(tmp_path: Path) -> None:
    """Timestamps come from the events, so a reopened job shows the same ones."""
    with JobState.open(tmp_path / "job") as js:
        js.record_execution("r", "e", {})
        stamp = js.execution_history[0].timestamp
        created = js.created_at
    with JobState.open(tmp_path / "job") as again:
        assert again.execution_history[0].timestamp == stamp
        assert again.created_at == created
        assert isinstance(stamp, dt.datetime) and stamp.tzinfo is None
