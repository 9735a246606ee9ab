"""Unit tests of the event-sourced JobState: the original API, read-only reads, events."""

from __future__ import annotations

import copy
import datetime as dt
import json
import pickle
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from eventlog import (
    EventEncodingError,
    InMemoryEventLog,
    Record,
    Unrepresentable,
    UnrepresentableValueWarning,
)
from routilux import job_events as ev
from routilux.errors import ReadOnlyJobStateError, ReplayError, SchemaVersionError, UnknownEventKindError
from routilux.frozen import FrozenDict, FrozenList
from routilux.job_state import ExecutionRecord, JobState
from routilux.projection import JobProjection, apply, from_snapshot, snapshot_state


# -- construction and defaults --------------------------------------------------------
def test_defaults_match_the_original() -> None:
    """A new JobState has the original's defaults and types."""
    js = JobState("flow-1")
    assert js.flow_id == "flow-1"
    assert str(uuid.UUID(js.job_id)) == js.job_id
    assert js.status == "pending"
    assert js.current_routine_id is None
    assert js.routine_states == {} and isinstance(js.routine_states, dict)
    for name in ("execution_history", "pause_points", "pending_tasks", "deferred_events", "shared_log",
                 "output_log"):
        assert getattr(js, name) == [] and isinstance(getattr(js, name), list)
    assert js.shared_data == {}
    assert isinstance(js.created_at, dt.datetime) and js.created_at.tzinfo is None
    assert isinstance(js.updated_at, dt.datetime)
    assert js.output_handler is None
    assert repr(js) == f"JobState[{js.job_id}:pending]"
    assert JobState().flow_id == ""


def test_first_event_is_job_created() -> None:
    """seq 1 is a job_created event carrying job_id and flow_id."""
    js = JobState("f")
    (first,) = js.events()
    assert (first.seq, first.kind) == (1, ev.JOB_CREATED)
    assert first.data["job_id"] == js.job_id and first.data["flow_id"] == "f"
    assert js.version == 1


def test_created_at_comes_from_the_event_and_is_naive_local() -> None:
    """Timestamps are naive local datetimes comparable with datetime.now()."""
    before = dt.datetime.now()
    js = JobState()
    after = dt.datetime.now()
    assert before - dt.timedelta(milliseconds=1) <= js.created_at <= after + dt.timedelta(milliseconds=1)
    assert js.created_at == js.events()[0].timestamp


# -- status ---------------------------------------------------------------------------
@pytest.mark.parametrize("status", ev.JOB_STATUSES)
def test_status_assignment_is_recorded(status: str) -> None:
    """Assigning status appends a status_set event."""
    js = JobState()
    js.status = status
    assert js.status == status
    assert js.events()[-1].kind == ev.STATUS_SET
    assert js.events()[-1].data == {"status": status}


@pytest.mark.parametrize("bad", ["", None, 3])
def test_invalid_status_is_a_value_error_listing_the_allowed(bad: object) -> None:
    """A status that is not a non-empty str is refused (naming the usual six) and nothing is recorded."""
    js = JobState()
    with pytest.raises(ValueError, match="pending, running, paused, completed, failed, cancelled"):
        js.status = bad  # type: ignore[assignment]
    assert js.version == 1 and js.status == "pending"


@pytest.mark.parametrize("custom", ["done", "RUNNING", "waiting_for_review"])
def test_a_custom_status_is_recorded_as_in_0_10(custom: str) -> None:
    """routilux 0.10 lets a job take any status string: it is recorded and replays."""
    js = JobState()
    js.status = custom
    assert js.status == custom and js.events()[-1].data == {"status": custom}
    assert JobState.from_events(js.events()).status == custom


def test_current_routine_id_is_assignable_and_recorded() -> None:
    """current_routine_id assignment is an event; non-str values are refused."""
    js = JobState()
    js.current_routine_id = "r1"
    assert js.current_routine_id == "r1"
    js.current_routine_id = None
    assert js.current_routine_id is None
    with pytest.raises(TypeError, match="current_routine_id"):
        js.current_routine_id = 5  # type: ignore[assignment]
    assert js.version == 3


# -- routine states, shared data, logs -----------------------------------------------------
def test_update_routine_state_replaces_and_copies() -> None:
    """update_routine_state stores a copy and replaces (no merge)."""
    js = JobState()
    state = {"status": "running", "x": [1]}
    js.update_routine_state("r", state)
    state["status"] = "changed"
    state["x"].append(2)
    assert js.get_routine_state("r") == {"status": "running", "x": [1]}
    js.update_routine_state("r", {"status": "completed"})
    assert js.get_routine_state("r") == {"status": "completed"}
    assert js.get_routine_state("missing") is None


def test_read_only_containers_name_the_method_to_use() -> None:
    """In-place mutation of the read-only reads (outputs, pause points, tasks, records) names the method."""
    js = JobState()
    js.send_output("r", "t", {"v": [1]})
    js._set_paused("why", {"k": 1})
    js.pending_tasks = [{"t": 1}]
    js.add_deferred_event("r", "e", {"d": 1})
    js.record_execution("r", "e", {"x": [1]})
    with pytest.raises(TypeError, match="send_output"):
        js.output_log.append({})
    with pytest.raises(TypeError, match="send_output"):
        js.output_log[0]["data"]["v"].append(2)
    with pytest.raises(TypeError, match="flow.pause"):
        js.pause_points.clear()
    with pytest.raises(TypeError, match="pending_tasks = "):
        js.pending_tasks.append({})
    with pytest.raises(TypeError, match="add_deferred_event"):
        js.deferred_events[0]["data"]["d"] = 2
    with pytest.raises(TypeError, match="immutable"):
        js.execution_history[0].data["x"].append(2)
    with pytest.raises(AttributeError, match="send_output"):
        js.output_log = []  # type: ignore[misc]
    with pytest.raises(AttributeError, match="assignable"):
        js.version = 3  # type: ignore[misc]
    assert js.version == 6


def test_reads_behave_like_plain_values() -> None:
    """Frozen reads compare, iterate, copy and JSON-encode like dicts and lists."""
    js = JobState()
    js.update_shared_data("k", {"v": [1, 2]})
    data = js.shared_data
    assert isinstance(data, dict) and isinstance(data["k"]["v"], list)
    assert json.loads(json.dumps(data)) == {"k": {"v": [1, 2]}}
    mutable = copy.deepcopy(data)
    mutable["k"]["v"].append(3)
    assert type(mutable) is dict and js.shared_data["k"]["v"] == [1, 2]
    assert type(pickle.loads(pickle.dumps(data))) is dict
    plain = data.copy()
    plain["new"] = 1
    assert "new" not in js.shared_data
    assert list(js.shared_data.items()) == [("k", {"v": [1, 2]})]


def test_shared_data_get_and_default() -> None:
    """get_shared_data returns the value or the default."""
    js = JobState()
    js.update_shared_data("a", 1)
    assert js.get_shared_data("a") == 1
    assert js.get_shared_data("b") is None
    assert js.get_shared_data("b", 7) == 7


def test_append_to_shared_log_rules() -> None:
    """Entries must be dicts; a copy gets an iso timestamp unless it has one."""
    js = JobState()
    entry = {"msg": "hi"}
    js.append_to_shared_log(entry)
    js.append_to_shared_log({"msg": "own", "timestamp": "yesterday"})
    assert "timestamp" not in entry
    log = js.get_shared_log()
    assert log[0]["msg"] == "hi"
    assert dt.datetime.fromisoformat(log[0]["timestamp"]) == js.events()[-2].timestamp
    assert log[1]["timestamp"] == "yesterday"
    assert js.get_shared_log(lambda e: e["msg"] == "own") == [log[1]]
    copy_ = js.get_shared_log()
    copy_.append({})
    assert len(js.shared_log) == 2
    for bad in (["x"], "x", None):
        with pytest.raises(ValueError, match="must be a dict"):
            js.append_to_shared_log(bad)  # type: ignore[arg-type]
    assert len(js.shared_log) == 2


def test_record_execution_and_history_order() -> None:
    """record_execution appends records; get_execution_history filters and sorts."""
    js = JobState()
    js.record_execution("a", "start", {"x": 1})
    js.record_execution("b", "out", {"y": [1, 2]})
    js.record_execution("a", "done", None)
    history = js.get_execution_history()
    assert [(r.routine_id, r.event_name) for r in history] == [("a", "start"), ("b", "out"), ("a", "done")]
    assert [r.event_name for r in js.get_execution_history("a")] == ["start", "done"]
    assert history[2].data == {}
    assert history[1].data == {"y": [1, 2]}
    assert history == sorted(history, key=lambda r: r.timestamp)
    history.append("mine")  # a new list: the job is unchanged
    assert len(js.execution_history) == 3
    assert all(isinstance(r, ExecutionRecord) for r in js.execution_history)


def test_execution_history_reference_stays_live() -> None:
    """A kept reference to execution_history shows records made later (like the original)."""
    js = JobState()
    history = js.execution_history
    js.record_execution("a", "one", {"n": 1})
    js.record_execution("a", "two", {"n": {"nested": True}})
    assert len(history) == 2
    assert [r.event_name for r in history] == ["one", "two"]
    assert history[0].data == {"n": 1}
    js.record_execution("a", "three", {})
    assert history[-1].event_name == "three"
    assert history == js.execution_history and "x" not in history


def test_record_execution_copies_data_at_call_time() -> None:
    """Changing the caller's dict after the call does not change the record."""
    js = JobState()
    data = {"n": 1}
    js.record_execution("a", "e", data)
    data["n"] = 2
    assert js.execution_history[0].data == {"n": 1}


def test_record_timestamps_come_from_events() -> None:
    """ExecutionRecord.timestamp is the event's ts at microsecond precision."""
    js = JobState()
    js.record_execution("a", "e", {})
    (event,) = js.events(kind=ev.EXECUTION_RECORDED)
    record = js.execution_history[0]
    assert record.timestamp == event.timestamp
    assert record.timestamp.microsecond == (event.ts // 1000) % 1_000_000
    assert js.updated_at == record.timestamp


def test_execution_record_is_immutable_with_original_repr() -> None:
    """ExecutionRecord keeps the original constructor, defaults and repr; it is immutable."""
    stamp = dt.datetime(2024, 1, 2, 3, 4, 5, 6)
    rec = ExecutionRecord("r", "e", {"a": 1}, stamp)
    assert repr(rec) == f"ExecutionRecord[r.e@{stamp}]"
    assert ExecutionRecord().data == {} and ExecutionRecord().routine_id == ""
    assert isinstance(ExecutionRecord().timestamp, dt.datetime)
    with pytest.raises(AttributeError, match="immutable"):
        rec.routine_id = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        rec.data["a"] = 2
    ser = rec.serialize()
    assert ser == {"_type": "ExecutionRecord", "routine_id": "r", "event_name": "e", "data": {"a": 1},
                   "timestamp": stamp.isoformat()}
    assert ExecutionRecord.from_dict(ser) == rec
    detached = ExecutionRecord()
    detached.deserialize(ser)  # the original API, on a record the user built
    assert detached == rec
    js = JobState()
    js.record_execution("r", "e", {})
    with pytest.raises(TypeError, match="part of a JobState"):
        js.execution_history[0].deserialize(ser)


def test_deferred_events() -> None:
    """add_deferred_event appends {routine_id, event_name, data, timestamp}; assignment replaces."""
    js = JobState()
    js.add_deferred_event("r", "go", {"v": 1})
    (entry,) = js.deferred_events
    assert entry["routine_id"] == "r" and entry["event_name"] == "go" and entry["data"] == {"v": 1}
    assert dt.datetime.fromisoformat(entry["timestamp"]) == js.updated_at
    js.deferred_events = []
    assert js.deferred_events == []
    with pytest.raises(TypeError):
        js.deferred_events = "x"  # type: ignore[assignment]


class _Handler:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[dict[str, object]] = []
        self.fail = fail

    def handle(self, **kwargs: object) -> None:
        self.calls.append(kwargs)
        if self.fail:
            raise RuntimeError("handler broke")


def test_send_output_calls_handler_and_logs() -> None:
    """send_output calls the handler with keyword args and always appends to output_log."""
    js = JobState()
    js.send_output("r", "result", {"v": 1})  # no handler: only logged
    handler = _Handler()
    js.set_output_handler(handler)
    js.send_output("r", "status", {"v": 2})
    assert [e["output_type"] for e in js.output_log] == ["result", "status"]
    (call,) = handler.calls
    assert call["job_id"] == js.job_id and call["routine_id"] == "r" and call["output_type"] == "status"
    assert call["data"] == {"v": 2} and isinstance(call["timestamp"], dt.datetime)
    assert js.output_log[1]["timestamp"] == call["timestamp"].isoformat()  # type: ignore[union-attr]


def test_send_output_handler_failure_is_a_warning() -> None:
    """A failing handler becomes a warning; the output is still logged."""
    js = JobState()
    js.set_output_handler(_Handler(fail=True))
    with pytest.warns(UserWarning, match="handler broke"):
        js.send_output("r", "t", {})
    assert len(js.output_log) == 1


# -- bad input changes nothing -------------------------------------------------------
def _lock() -> Any:
    return threading.Lock()


@pytest.mark.parametrize(
    "call",
    [
        lambda js: js.update_shared_data("k", {1, 2, _lock()}),
        lambda js: js.update_shared_data(3, "v"),
        lambda js: js.update_routine_state("r", {"f": print}),
        lambda js: js.update_routine_state("r", "not a dict"),
        lambda js: js.record_execution("r", "e", {(1, 2): _lock()}),
        lambda js: js.record_execution("r", "e", {"x": object()}),
        lambda js: js.record_execution("r", "e", {"x": "\ud800"}),
        lambda js: js.record_execution("r", 5, {}),
        lambda js: js.record_execution("r", "e", [1]),
        lambda js: js.append_to_shared_log({"x": (i for i in range(2))}),
        lambda js: js.send_output("r", "t", {"x": {2: _lock()}}),
        lambda js: js.add_deferred_event("r", "e", {"x": {3: 1j}}),
        lambda js: setattr(js, "pending_tasks", [{1: _lock()}]),
        lambda js: js._task_queued("t", {"x": {_lock()}}),
        lambda js: setattr(js, "status", ""),
    ],
)
def test_bad_input_raises_and_changes_nothing(call: Any, tmp_path: Path) -> None:
    """On a durable job, validation and encoding errors append nothing and change nothing."""
    with JobState.open(tmp_path / "job") as js:
        js.record_execution("r", "before", {"ok": 1})
        before = js.serialize()
        version = js.version
        with pytest.raises((TypeError, ValueError)):
            call(js)
        assert js.version == version
        assert js.serialize() == before
        assert js.log.head_seq == version


def test_values_the_first_codec_refused_are_recorded() -> None:
    """Sets, NaN, big ints, naive datetimes, non-str keys, tuples: recorded and read back with their types."""
    js = JobState()
    when = dt.datetime(2026, 1, 1, 12, 30)
    js.update_shared_data("k", {1, 2})
    js.update_routine_state("r", {"when": when, "n": float("nan"), "t": (1, [2])})
    js.record_execution("r", "e", {1: "int key", "big": 2**70, "inf": float("inf")})
    assert js.shared_data["k"] == {1, 2} and isinstance(js.shared_data["k"], set)
    state = js.get_routine_state("r")
    assert state["when"] == when and state["n"] != state["n"] and state["t"] == (1, [2])
    assert type(state["t"]) is tuple
    (rec,) = js.execution_history
    assert rec.data == {1: "int key", "big": 2**70, "inf": float("inf")}
    again = JobState.from_events(js.events())
    assert again.shared_data == js.shared_data and again.execution_history == js.execution_history


def test_encoding_error_names_the_path(tmp_path: Path) -> None:
    """The error names the bad value's path from the caller's argument, not the event's fields."""
    with JobState.open(tmp_path / "job") as js:
        version = js.version
        with pytest.raises(EventEncodingError, match=r"^data\['items'\]\[1\]: _thread:lock") as ei:
            js.record_execution("r", "e", {"items": [1, threading.Lock()]})
        assert ei.value.path == "data['items'][1]"
        with pytest.raises(EventEncodingError, match=r"^value\['a'\]: builtins:object"):
            js.update_shared_data("k", {"a": object()})
        with pytest.raises(EventEncodingError, match=r"^state\['n'\]: str is not valid unicode"):
            js.update_routine_state("r", {"n": "\ud800"})
        with pytest.raises(EventEncodingError, match=r"^entry\['k'\]\[2\]: builtins:complex"):
            js.append_to_shared_log({"k": {2: 3j}})
        with js._transaction(), pytest.raises(EventEncodingError, match=r"^value: builtins:object"):
            js.update_shared_data("k", object())
        assert js.version == version  # nothing was stored


def test_in_memory_job_records_placeholders_with_one_warning_per_type() -> None:
    """An in-memory job keeps running (the 0.10 behaviour): a placeholder is recorded, one warning per type."""

    class Socketish:
        def __repr__(self) -> str:
            return "<Socketish fd=3>"

    js = JobState()
    with pytest.warns(UnrepresentableValueWarning) as caught:
        js.update_shared_data("conn", Socketish())
        js.record_execution("r", "e", {"conn": Socketish()})
    assert len([w for w in caught if "Socketish" in str(w.message)]) == 1
    placeholder = js.shared_data["conn"]
    assert isinstance(placeholder, Unrepresentable) and placeholder.text == "<Socketish fd=3>"
    assert js.execution_history[0].data["conn"] == placeholder
    assert JobState.from_events(js.events()).shared_data == js.shared_data


# -- events, replay and time travel --------------------------------------------------
def _busy_job() -> JobState:
    js = JobState("flow")
    js.status = "running"
    js.current_routine_id = "a"
    js.update_routine_state("a", {"status": "completed", "n": 1.5})
    js.record_execution("a", "out", {"v": 1})
    js.record_execution("b", "in", {"nested": {"x": [1, None, True]}})
    js.update_shared_data("limit", 10)
    js.append_to_shared_log({"m": 1})
    js.send_output("a", "t", {"d": 1})
    js.add_deferred_event("b", "later", {})
    js._set_paused("because", {"cp": 1})
    js._set_running()
    js.pending_tasks = [{"slot": "s"}]
    js._task_queued("t1", {"slot": "x"})
    js._task_started("t1")
    js._task_queued("t2", {"slot": "y"})
    js._task_finished("t1")
    js._set_cancelled("stop")
    return js


def test_from_events_equals_live() -> None:
    """A replay of the events equals the live state, types included."""
    js = _busy_job()
    replay = JobState.from_events(js.events())
    assert replay.serialize() == js.serialize()
    assert replay.head_hash == js.head_hash
    assert JobState.from_events(js.log).serialize() == js.serialize()
    assert replay.open_tasks == js.open_tasks == {"t2": {"task": {"slot": "y"}, "state": "queued"}}
    assert replay.routine_states["_cancellation"] == {"reason": "stop"}


def test_at_every_version_equals_a_prefix_replay() -> None:
    """at(version=k) equals the fold of the first k events."""
    js = _busy_job()
    events = js.events()
    for k in range(1, js.version + 1):
        assert js.at(version=k).serialize() == JobState.from_events(events[:k]).serialize()


def test_at_uses_snapshots_and_matches_full_replay() -> None:
    """With a small snapshot interval, at() from a snapshot equals the full replay.

    An in-memory job keeps only its newest two snapshots (its memory is bounded by its
    state and its log); earlier points replay from the start.
    """
    js = JobState()
    js.snapshot_every = 7
    for i in range(40):
        js.record_execution("r", "e", {"i": i})
        js.update_shared_data("i", i)
    assert [s.seq for s in js.log.snapshots()] == [70, 77]
    events = js.events()
    for k in (1, 7, 8, 30, 63, js.version):
        view = js.at(version=k)
        assert view.serialize() == JobState.from_events(events[:k]).serialize()


def test_at_is_read_only() -> None:
    """The result of at() refuses every mutator."""
    js = _busy_job()
    view = js.at(version=3)
    for call in (lambda: view.record_execution("r", "e", {}), lambda: setattr(view, "status", "running"),
                 lambda: view.update_shared_data("k", 1), lambda: view.deserialize(js.serialize()),
                 lambda: view._set_paused(), lambda: view._transaction().__enter__()):
        with pytest.raises(ReadOnlyJobStateError, match="read-only"):
            call()
    assert view.version == 3


def test_at_timestamp_includes_the_records_own_timestamp() -> None:
    """at(timestamp=record.timestamp) includes that record (naive and aware)."""
    js = JobState()
    js.record_execution("a", "one", {})
    time.sleep(0.002)
    js.record_execution("a", "two", {})
    first = js.execution_history[0]
    view = js.at(timestamp=first.timestamp)
    assert [r.event_name for r in view.execution_history] == ["one"]
    aware = first.timestamp.astimezone(dt.timezone.utc)
    assert js.at(timestamp=aware).version == view.version
    with pytest.raises(ValueError, match="no event"):
        js.at(timestamp=js.created_at - dt.timedelta(seconds=1))


@pytest.mark.parametrize("bad", [0, -1, 10_000, "3"])
def test_at_out_of_range(bad: object) -> None:
    """A version outside 1..version is a ValueError."""
    with pytest.raises(ValueError, match="version must be"):
        JobState().at(version=bad)  # type: ignore[arg-type]


def test_events_filters() -> None:
    """events() filters by kind, routine id, seq range and time range."""
    js = _busy_job()
    assert [e.kind for e in js.events(kind=ev.EXECUTION_RECORDED)] == [ev.EXECUTION_RECORDED] * 2
    assert {e.kind for e in js.events(kind=[ev.STATUS_SET, ev.PAUSED])} == {ev.STATUS_SET, ev.PAUSED}
    assert all(e.data["routine_id"] == "a" for e in js.events(routine_id="a"))
    assert [e.seq for e in js.events(start=3, stop=5)] == [3, 4, 5]
    every = js.events()
    assert [e.seq for e in every] == list(range(1, js.version + 1))
    mid = every[5]
    since = js.events(since=mid.timestamp)
    assert since[0].timestamp >= mid.timestamp and mid.seq in [e.seq for e in since]
    until = js.events(until=mid.timestamp)
    assert until[-1].timestamp <= mid.timestamp and mid.seq in [e.seq for e in until]


def test_unknown_kind_and_newer_schema_are_clear_errors() -> None:
    """Replay refuses unknown kinds and newer schema versions."""
    js = JobState()
    events = js.events()
    bogus = [*events, Record(2, events[0].ts, "teleported", {})]
    with pytest.raises(UnknownEventKindError, match="teleported"):
        JobState.from_events(bogus)
    newer = [Record(1, 1, ev.JOB_CREATED, {"job_id": "j", "flow_id": "", "schema": ev.SCHEMA_VERSION + 1})]
    with pytest.raises(SchemaVersionError, match="newer"):
        JobState.from_events(newer)
    with pytest.raises(ReplayError, match="expected seq 2"):
        JobState.from_events([events[0], Record(3, 1, ev.STATUS_SET, {"status": "running"})])
    with pytest.raises(ReplayError, match="job_created"):
        JobState.from_events([Record(1, 1, ev.STATUS_SET, {"status": "running"})])
    with pytest.raises(ReplayError, match="malformed"):
        JobState.from_events([events[0], Record(2, events[0].ts, ev.STATUS_SET, {})])
    with pytest.raises(ReplayError, match="earlier"):
        JobState.from_events([events[0], Record(2, events[0].ts - 1, ev.STATUS_SET, {"status": "running"})])


def test_every_kind_has_a_handler_and_doc() -> None:
    """The kinds module lists each kind once with its payload fields."""
    assert set(ev.KINDS) >= {ev.JOB_CREATED, ev.EXECUTION_RECORDED, ev.DESERIALIZED}
    for kind in ev.KINDS.values():
        assert kind.doc and kind.since <= ev.SCHEMA_VERSION


def test_snapshot_state_round_trip() -> None:
    """from_snapshot(snapshot_state(p)) plus the same tail equals the full fold."""
    js = _busy_job()
    events = js.events()
    p = JobProjection()
    for rec in events[:8]:
        apply(p, rec)
    restored = from_snapshot(snapshot_state(p), 8)
    full = JobProjection()
    for rec in events:
        apply(full, rec)
    for rec in events[8:]:
        apply(restored, rec)
    assert snapshot_state(restored) == snapshot_state(full)
    assert restored.history_from == 8


# -- serialize / deserialize ----------------------------------------------------------
def test_serialize_shape() -> None:
    """serialize() keeps the original dict shape with ISO timestamps and is JSON-able."""
    js = _busy_job()
    data = js.serialize()
    assert data["_type"] == "JobState"
    assert list(data)[1:] == ["flow_id", "job_id", "status", "current_routine_id", "routine_states",
                              "execution_history", "created_at", "updated_at", "pause_points",
                              "pending_tasks", "deferred_events", "shared_data", "shared_log", "output_log"]
    assert data["execution_history"][0]["_type"] == "ExecutionRecord"
    dt.datetime.fromisoformat(data["created_at"])
    json.dumps(data)
    data["routine_states"]["a"]["status"] = "mutated"  # a plain copy
    assert js.routine_states["a"]["status"] == "completed"


def test_deserialize_is_one_event_and_round_trips() -> None:
    """deserialize(serialize()) of another job restores it exactly, as one event."""
    source = _busy_job()
    data = source.serialize()
    target = JobState()
    target.deserialize(data)
    assert target.version == 2
    assert target.events()[-1].kind == ev.DESERIALIZED
    assert target.serialize() == data
    assert JobState.from_events(target.events()).serialize() == data


def test_deserialize_errors_change_nothing() -> None:
    """Bad dicts are ValueErrors and record nothing."""
    js = JobState()
    for bad in ({"_type": "Flow"}, {"status": ""}, {"status": 3}, {"bogus": 1}, [1], {"execution_history": [3]},
                {"created_at": "not a date"}, {"routine_states": {"r": 1}}, {"shared_data": {5: 1}}):
        with pytest.raises(ValueError):
            js.deserialize(bad)  # type: ignore[arg-type]
    assert js.version == 1


# -- engine hooks, transactions, threads ------------------------------------------------
def test_engine_hooks_follow_the_original() -> None:
    """_set_paused/_set_running/_set_cancelled behave as in the original."""
    js = JobState()
    js.current_routine_id = "r"
    js._set_running()
    assert js.status == "pending"  # only paused -> running
    js._set_paused("wait", {"k": 1})
    assert js.status == "paused"
    point = js.pause_points[-1]
    assert point["reason"] == "wait" and point["checkpoint"] == {"k": 1} and point["current_routine_id"] == "r"
    js._set_paused()
    assert js.pause_points[-1]["checkpoint"] == {}
    js._set_running()
    assert js.status == "running"
    js._set_cancelled()
    assert js.status == "cancelled" and "_cancellation" not in js.routine_states
    js._set_cancelled("user")
    assert js.routine_states["_cancellation"] == {"reason": "user"}


def test_open_tasks_lifecycle() -> None:
    """open_tasks holds queued/started tasks until finished or failed."""
    js = JobState()
    js._task_queued("a", {"slot": 1})
    js._task_queued("b", {"slot": 2})
    js._task_started("a")
    assert js.open_tasks == {"a": {"task": {"slot": 1}, "state": "started"},
                             "b": {"task": {"slot": 2}, "state": "queued"}}
    js._task_finished("a")
    js._task_failed("b", {"error": "boom"})
    js._task_started("unknown")
    assert js.open_tasks == {}
    assert isinstance(js.open_tasks, FrozenDict)


def test_transaction_is_one_atomic_batch() -> None:
    """Mutators inside _transaction() land as one batch at exit; an exception discards them."""
    js = JobState()
    with js._transaction():
        js.record_execution("r", "emit", {"v": 1})
        js._task_queued("t", {"slot": "s"})
        assert js.version == 1  # buffered
        with pytest.raises(TypeError):
            js.update_shared_data(1, "v")  # refused at the call
    assert js.version == 3
    first, second = js.events(start=2)
    assert first.ts == second.ts
    with pytest.raises(RuntimeError), js._transaction():
        js.record_execution("r", "lost", {})
        raise RuntimeError("abort")
    assert js.version == 3 and len(js.execution_history) == 1


def test_many_threads_one_order() -> None:
    """Concurrent mutators produce one total order; the projection equals a replay."""
    js = JobState()
    barrier = threading.Barrier(4)

    def work(n: int) -> None:
        barrier.wait()
        for i in range(200):
            js.record_execution(f"r{n}", "e", {"i": i})
            js.update_shared_data(f"k{n}", i)
            if i % 50 == 0:
                with js._transaction():
                    js.append_to_shared_log({"n": n, "i": i})
                    js.update_routine_state(f"r{n}", {"i": i})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert js.version == 1 + 4 * (400 + 4 * 2)
    assert JobState.from_events(js.events()).serialize() == js.serialize()
    assert [e.seq for e in js.events()] == list(range(1, js.version + 1))


def test_hot_path_and_general_path_interleave_in_log_order() -> None:
    """Flat and nested record_execution calls keep log order in the history."""
    js = JobState()
    js.record_execution("a", "flat", {"x": 1})
    js.record_execution("a", "nested", {"x": {"y": 1}})
    js.record_execution("a", "flat2", {"x": 1.5})
    js.deserialize({"status": "running"})
    js.record_execution("a", "after", {})
    names = [r.event_name for r in js.execution_history]
    assert names == ["flat", "nested", "flat2", "after"]
    assert JobState.from_events(js.events()).serialize() == js.serialize()


# -- waiting ---------------------------------------------------------------------------
class _FakeFlow:
    """A flow stub exposing the activity hook helper D implements."""

    def __init__(self) -> None:
        self.busy = 1

    def _job_activity(self, job_state: JobState) -> tuple[int, int]:
        return (self.busy, 0)


def test_wait_for_completion_idle_job_returns_fast_and_completes() -> None:
    """An idle running job completes at once (no polling floor)."""
    flow = _FakeFlow()
    flow.busy = 0
    js = JobState()
    js.status = "running"
    assert JobState.wait_for_completion(flow, js, timeout=5)
    assert js.status == "completed"
    js2 = JobState()
    js2.status = "running"
    js2.update_routine_state("r", {"status": "error"})
    assert JobState.wait_for_completion(flow, js2, timeout=5)
    assert js2.status == "failed"


def test_wait_for_completion_wakes_on_notify() -> None:
    """A waiter wakes when the engine notifies; pending never completes."""
    flow = _FakeFlow()
    js = JobState()
    js.status = "running"

    def finish() -> None:
        time.sleep(0.05)
        flow.busy = 0
        js._notify_waiters()

    threading.Thread(target=finish).start()
    assert JobState.wait_for_completion(flow, js, timeout=10, check_interval=30)
    assert js.status == "completed"
    pending = JobState()
    assert not JobState.wait_for_completion(flow, pending, timeout=0.05)
    assert pending.status == "pending"


def test_wait_for_completion_terminal_statuses_and_open_tasks_fallback() -> None:
    """paused/cancelled/failed count as complete; without the hook, open_tasks decides."""
    for status in ("paused", "cancelled", "failed"):
        js = JobState()
        js.status = status
        assert JobState.wait_for_completion(object(), js, timeout=1)
        assert js.status == status
    js = JobState()
    js.status = "running"
    js._task_queued("t", {})
    assert not JobState.wait_for_completion(object(), js, timeout=0.05)
    js._task_finished("t")
    assert JobState.wait_for_completion(object(), js, timeout=1)
    assert js.status == "completed"


def test_condition_is_notified_after_every_event() -> None:
    """A thread waiting on job_state._condition is notified when an event is applied."""
    js = JobState()
    result: list[bool] = []

    def waiter() -> None:
        with js._condition:
            result.append(js._condition.wait(timeout=30))  # True only if notified

    t = threading.Thread(target=waiter)
    t.start()
    for _ in range(3000):  # until the waiter is registered (bounded)
        if js._c.waiters:
            break
        time.sleep(0.001)
    js.record_execution("r", "e", {})
    t.join(60)
    assert result == [True]


def test_wait_until_condition() -> None:
    """wait_until_condition returns when the condition holds, False on timeout."""
    js = JobState()

    def later() -> None:
        time.sleep(0.05)
        js.update_routine_state("v", {"status": "completed"})

    threading.Thread(target=later).start()

    def done(flow: object, job: JobState) -> bool:
        state = job.get_routine_state("v")
        return state is not None and state.get("status") == "completed"

    assert JobState.wait_until_condition(None, js, done, timeout=10, check_interval=30)
    assert not JobState.wait_until_condition(None, js, lambda f, j: False, timeout=0.05)


def test_frozen_types_are_exported() -> None:
    """Reads are FrozenDict/FrozenList."""
    js = JobState()
    assert isinstance(js.routine_states, FrozenDict) and isinstance(js.execution_history, FrozenList)


def test_in_memory_log_is_the_default() -> None:
    """A bare JobState keeps its log in memory; head_hash is 32 hex digits."""
    js = JobState()
    assert isinstance(js.log, InMemoryEventLog)
    assert len(js.head_hash) == 32 and int(js.head_hash, 16) >= 0
    before = js.head_hash
    js.record_execution("r", "e", {})
    assert js.head_hash != before


def test_a_kept_reference_to_lazily_decoded_state_stays_live() -> None:
    """shared_data and routine_states decode on first read; a kept reference shows every later change."""
    js = JobState()
    shared, states = js.shared_data, js.routine_states
    js.update_shared_data("k", {"n": 1})
    js.update_shared_data("tags", {"a", "b"})
    js.update_routine_state("r", {"status": "running"})
    assert shared["k"] == {"n": 1} and dict(shared) == {"k": {"n": 1}, "tags": {"a", "b"}}
    assert list(states) == ["r"] and states == {"r": {"status": "running"}}
    js.update_shared_data("k", {"n": 2})
    assert json.loads(json.dumps(shared, default=sorted)) == {"k": {"n": 2}, "tags": ["a", "b"]}
    shared["k"]["n"] = 3  # an in-place edit: recorded, and seen through the kept reference
    assert js.events()[-1].kind == "shared_data_edited" and shared == {"k": {"n": 3}, "tags": {"a", "b"}}
    with pytest.raises(TypeError, match="read-only"):
        shared["tags"].add("c")  # sets stay read-only: update_shared_data replaces them
    assert js.get_shared_data("k") == {"n": 3}
