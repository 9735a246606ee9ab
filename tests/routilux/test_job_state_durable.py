"""Durable JobStates (open/close/reopen) and save/load bundles."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest

import eventlog
from eventlog import LogLockedError, encoding
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


# -- record_execution on a durable job (pre-encoded appends, history read on access) --
def test_durable_history_is_live_copied_and_equals_replay(tmp_path: Path) -> None:
    """Records on a durable job: a kept history reference stays live, data is copied at
    call time, timestamps come from the events, and everything equals a replay."""
    with JobState.open(tmp_path / "job", flow_id="f") as js:
        history = js.execution_history
        data = {"n": 1, "f": 2.5, "b": True, "none": None, "s": "é"}
        js.record_execution("a", "flat", data)
        data["n"] = 2  # after the call: not in the record
        js.record_execution("a", "nested", {"x": {"y": [1]}})
        js.record_execution("a", "flat2", {"x": 1.5})
        js.deserialize({"status": "running"})
        js.record_execution("a", "after", {})
        assert [r.event_name for r in history] == ["flat", "nested", "flat2", "after"]
        assert history[0].data == {"n": 1, "f": 2.5, "b": True, "none": None, "s": "é"}
        events = js.events(kind="execution_recorded")
        assert [r.timestamp for r in history] == [e.timestamp for e in events]
        assert js.updated_at == history[-1].timestamp
        live = js.serialize()
        assert JobState.from_events(js.events()).serialize() == live
        js.record_execution("a", "unread", {"k": 1})
    with pytest.raises(eventlog.LogClosedError):
        js.execution_history[-1]  # the history is read from the log, which is closed now
    with JobState.open(tmp_path / "job") as again:
        assert again.execution_history[-1].event_name == "unread"
        assert again.serialize()["execution_history"][:4] == live["execution_history"]


@pytest.mark.parametrize("value", [float("nan"), float("-inf"), 2**70, {1: "one"}, {2, 3}, (4, [5])])
def test_durable_job_stores_every_standard_value(tmp_path: Path, value: object) -> None:
    """NaN, infinity, big ints, int keys, sets and tuples are stored and read back after a reopen."""
    with JobState.open(tmp_path / "job", flow_id="f") as js:
        js.record_execution("a", "e", {"v": value})
        js.update_shared_data("v", value)
    with JobState.open(tmp_path / "job") as again:
        got = again.execution_history[0].data["v"]
        assert encoding.encode(got) == encoding.encode(value)  # same value and types (NaN-proof)
        assert encoding.encode(again.get_shared_data("v")) == encoding.encode(value)


def test_durable_many_threads_one_order(tmp_path: Path) -> None:
    """Concurrent record_execution and other mutators on a durable job: one order, equal to replay."""
    with JobState.open(tmp_path / "job", flow_id="f", durability="none") as js:
        js.snapshot_every = 64
        barrier = threading.Barrier(4)

        def work(n: int) -> None:
            barrier.wait()
            for i in range(150):
                js.record_execution(f"r{n}", "e", {"i": i})
                if i % 10 == 0:
                    js.update_shared_data(f"k{n}", i)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert js.version == 1 + 4 * (150 + 15)
        assert [e.seq for e in js.events()] == list(range(1, js.version + 1))
        assert JobState.from_events(js.events()).serialize() == js.serialize()
        per_routine = [[r.data["i"] for r in js.get_execution_history(f"r{n}")] for n in range(4)]
        assert per_routine == [list(range(150))] * 4


def test_policy_snapshots_are_not_lost_when_the_writer_falls_behind(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of batches that outruns a slow snapshot writer still gets every policy snapshot, in order."""
    with JobState.open(tmp_path / "job", flow_id="f") as js:
        js.snapshot_every = 10
        saved: list[int] = []
        real = js.log.store_snapshot

        def slow_save(state: dict, *, schema_version: int, seq: int | None = None) -> None:
            time.sleep(0.02)  # the writer is slower than the appends
            saved.append(seq)  # type: ignore[arg-type]
            real(state, schema_version=schema_version, seq=seq)

        monkeypatch.setattr(js.log, "store_snapshot", slow_save)
        points = []
        for _ in range(6):
            with js._transaction():
                for i in range(12):
                    js.record_execution("r", "e", {"i": i})
            points.append(js.version)
        js.sync()  # waits for the writer
        assert saved == points
        assert js.at(version=points[2] + 3).serialize() == JobState.from_events(js.events(stop=points[2] + 3)).serialize()


def test_a_busy_appender_does_not_lose_policy_snapshots(tmp_path: Path) -> None:
    """A thread appending flat out (no blocking call to free the GIL) still gets every policy
    snapshot stored: kept snapshots stay at most JOB_SNAPSHOT_GAP apart, so at(version=k) never
    replays more than that. (Dropping snapshots when the background writer fell behind once
    left gaps of tens of thousands of events.)"""
    from routilux.job_state import DEFAULT_SNAPSHOT_EVERY, JOB_SNAPSHOT_GAP

    with JobState.open(tmp_path / "job", flow_id="f") as js:
        for i in range(25 * DEFAULT_SNAPSHOT_EVERY):
            js.record_execution("r", "e", {"i": i})
        head = js.version
    with JobState.open(tmp_path / "job", readonly=True) as again:
        seqs = again.log.snapshot_seqs()
    assert seqs, "no snapshot was stored"
    gaps = [b - a for a, b in zip([0, *seqs], seqs, strict=False)]
    assert max(gaps) <= JOB_SNAPSHOT_GAP, f"snapshots {seqs} leave a gap of {max(gaps)} events"
    assert head - seqs[-1] < 2 * DEFAULT_SNAPSHOT_EVERY


def test_history_read_past_a_snapshot_is_folded_with_the_collector_paused(tmp_path: Path) -> None:
    """Reading a reopened job's history folds every event from the log (the snapshot holds no
    history) with the cyclic collector paused, and leaves it enabled as it was."""
    import gc

    path = tmp_path / "job"
    with JobState.open(path, flow_id="f", durability="none") as js:
        js.snapshot_every = 64
        for i in range(3000):
            js.record_execution("r", "e", {"i": i})
    collections: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    with JobState.open(path, readonly=True) as again:
        assert again.version - 3000 < 64  # opened from a snapshot near the head
        gc.collect()
        gc.callbacks.append(seen)
        try:
            assert len(again.execution_history) == 3000
        finally:
            gc.callbacks.remove(seen)
        assert gc.isenabled()
        assert collections == []
        assert [r.data["i"] for r in again.execution_history[-3:]] == [2997, 2998, 2999]
