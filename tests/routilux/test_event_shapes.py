"""Replay validates each event's shape (issue 13, item 6): one declaration, checked on write and on replay.

An attacker (or a bug elsewhere) can write a record with a valid checksum and a valid
hash chain whose payload is impossible for its kind: a shared-data key ``5`` where a
str is required, a missing field, a list where a dict belongs. ``eventlog`` cannot know
job shapes; routilux must refuse such a record as a ``ReplayError`` naming its seq and
field -- when a job is opened, loaded or verified -- and never build (or snapshot, or
save) a state from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import eventlog
from eventlog import InMemoryEventLog
from eventlog.encoding import encode_event
from replay_tools.source import open_job
from replay_tools.verify import verify_job
from routilux import JobState
from routilux import job_events as ev
from routilux.errors import PayloadShapeError, ReplayError
from routilux.job_state import ExecutionRecord


def _forge(path: Path, kind: str, data: dict[str, Any]) -> int:
    """Append a record to the durable log at ``path`` with the log's own writer: valid frame,
    checksum and chain link, whatever the payload (the attacker's edit). Returns its seq."""
    log = eventlog.open_log(path)
    try:
        seq, _ts = log.append_encoded(encode_event(kind, data))
        log.sync()
    finally:
        log.close()
    return seq


@pytest.fixture
def run_cli() -> Any:
    """``routilux-replay ARGS`` in-process."""
    from click.testing import CliRunner

    from replay_tools.cli import cli

    return lambda *args: CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def forged(tmp_path: Path) -> tuple[Path, int]:
    """A durable job whose last record is a shared_data_set with the key 5 (a valid chain)."""
    path = tmp_path / "job"
    with JobState.open(path, flow_id="f") as job:
        job.update_shared_data("limit", 3)
        job.update_routine_state("r", {"status": "running"})
    return path, _forge(path, ev.SHARED_DATA_SET, {"key": 5, "value": "forged"})


def test_a_forged_shape_is_refused_at_open_naming_seq_and_field(forged: tuple[Path, int]) -> None:
    """JobState.open (writer and read-only) refuses the record: ReplayError with its seq and field."""
    path, seq = forged
    assert eventlog.verify(path).ok  # the bytes and the chain are intact: only routilux can tell
    for readonly in (False, True):
        with pytest.raises(ReplayError, match=rf"event seq {seq}: .*field 'key' must be a str, got int \(5\)") as err:
            JobState.open(path, readonly=readonly)
        assert err.value.seq == seq and err.value.field == "key"


def test_a_forged_shape_fails_both_verifies_and_load(forged: tuple[Path, int], run_cli: Any, tmp_path: Path) -> None:
    """replay_tools.verify_job and `routilux-replay verify` report it; a saved copy does not load."""
    path, seq = forged
    with open_job(str(path)) as job:
        report = verify_job(job)
    assert not report.ok
    problem = report.first_problem
    assert problem is not None and problem.kind == "replay" and problem.seq == seq and "'key'" in problem.message
    result = run_cli("verify", str(path), "--json")
    assert result.exit_code != 0
    assert json.loads(result.stdout)["problems"][0]["seq"] == seq
    # A bundle of the log (as `copy --file` would write it) does not load either.
    log = eventlog.open_log(path, readonly=True)
    try:
        eventlog.write_bundle(str(tmp_path / "copy.rjob"), log, state=None, schema_version=ev.SCHEMA_VERSION)
    finally:
        log.close()
    with pytest.raises(ValueError, match=rf"event seq {seq}: .*field 'key'"):
        JobState.load(tmp_path / "copy.rjob")


def test_the_write_path_never_writes_a_bad_shape() -> None:
    """Every event goes through the declared shape before it is encoded: nothing written, nothing applied."""
    job = JobState()
    version = job.version
    with pytest.raises(PayloadShapeError, match="field 'key' must be a str"):
        job._emit(ev.SHARED_DATA_SET, {"key": 5, "value": 1})
    with pytest.raises(PayloadShapeError, match="field 'state' is missing"):
        job._emit(ev.ROUTINE_STATE_SET, {"routine_id": "r"})
    with pytest.raises(PayloadShapeError, match="field 'extra' is not a field"):
        job._emit(ev.STATUS_SET, {"status": "running", "extra": 1})
    assert job.version == version and job.log.head_seq == version


def test_snapshots_and_saves_are_never_made_from_a_bad_state(forged: tuple[Path, int], tmp_path: Path) -> None:
    """No JobState exists for the forged log, so no policy snapshot or save can be made from it."""
    path, seq = forged
    before = sorted(p.name for p in path.iterdir())
    with pytest.raises(ReplayError):
        JobState.open(path)
    assert sorted(p.name for p in path.iterdir()) == before  # nothing written, no snapshot renamed .broken


def test_a_forged_execution_record_is_refused_when_the_history_is_read(tmp_path: Path) -> None:
    """A history-only record (read lazily) is checked when the history is folded, and by verify."""
    path = tmp_path / "job"
    with JobState.open(path, flow_id="f") as job:
        job.record_execution("r", "e", {"x": 1})
    seq = _forge(path, ev.EXECUTION_RECORDED, {"routine_id": "r", "event_name": 7, "data": {}})
    with JobState.open(path, readonly=True) as job, pytest.raises(ReplayError) as err:
        job.execution_history  # noqa: B018 - reading it folds the history
    assert (err.value.seq, err.value.field) == (seq, "event_name")
    with open_job(str(path)) as opened:
        assert verify_job(opened).first_problem.seq == seq  # type: ignore[union-attr]


# -- the property: well-formed events replay; any field-type corruption is refused -----------------
ids = st.sampled_from(["a", "b"])
small = st.one_of(st.integers(-3, 3), st.text(max_size=3), st.lists(st.integers(0, 3), max_size=2))
steps = st.lists(st.one_of(
    st.tuples(st.just("shared"), st.sampled_from(["k", "l"]), small),
    st.tuples(st.just("state"), ids, st.dictionaries(st.sampled_from(["n", "s"]), small, max_size=2)),
    st.tuples(st.just("record"), ids, st.dictionaries(st.sampled_from(["n", "s"]), small, max_size=2)),
    st.tuples(st.just("log"), st.dictionaries(st.sampled_from(["m"]), small, max_size=1)),
    st.tuples(st.just("status"), st.sampled_from(["running", "paused", "custom"])),
    st.tuples(st.just("append"), st.sampled_from(["k", "l"]), small),
    st.tuples(st.just("count"), ids),
    st.tuples(st.just("task"), st.sampled_from(["t1", "t2"])),
    st.tuples(st.just("output"), ids),
    st.tuples(st.just("history"), ids),
), min_size=1, max_size=12)


def _build(script: list[tuple[Any, ...]]) -> JobState:
    """A job from random well-formed API calls (in-place edits included)."""
    job = JobState("flow")
    for step in script:
        what = step[0]
        if what == "shared":
            job.update_shared_data(step[1], step[2])
        elif what == "state":
            job.update_routine_state(step[1], step[2])
        elif what == "record":
            job.record_execution(step[1], "emit", step[2])
        elif what == "log":
            job.append_to_shared_log(step[1])
        elif what == "status":
            job.status = step[1]
        elif what == "append":
            value = job.get_shared_data(step[1])
            if isinstance(value, list):
                value.append(step[2])
            else:
                job.shared_data[step[1]] = [step[2]]
        elif what == "count":
            state = job.get_routine_state(step[1])
            if state is None:
                job.routine_states[step[1]] = {"count": 0}
            else:
                state["count"] = state.get("count", 0) + 1 if isinstance(state.get("count", 0), int) else 0
        elif what == "task":
            job._task_queued(step[1], {"routine_id": "a"})
            job._task_finished(step[1])
        elif what == "output":
            job.send_output(step[1], "t", {"v": 1})
        else:
            job.execution_history.append(ExecutionRecord(step[1], "inserted", {}))
    return job


def _wrong(type_name: str) -> list[Any]:
    """Values of another type than a field's declared one."""
    return {"str": [5, None, ["s"]], "str?": [5, ["s"]], "int": ["4", None], "dict": [[1], "x", None],
            "list": [{"a": 1}, 3, None], "any": []}[type_name]


def _corruptions(kind: str, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(field, corrupted payload)`` for each field of the event: a wrong type, missing, and one extra field."""
    out: list[tuple[str, dict[str, Any]]] = []
    for field in ev.KINDS[kind].shape:
        if field.name not in data:
            continue
        for bad in _wrong(field.type):
            out.append((field.name, {**data, field.name: bad}))
        if field.required:
            out.append((field.name, {k: v for k, v in data.items() if k != field.name}))
    out.append(("bogus", {**data, "bogus": 1}))
    return out


def _log_of(events: list[Any], replace_at: int | None = None, payload: dict[str, Any] | None = None) -> Any:
    log = InMemoryEventLog()
    for e in events:
        data = payload if e.seq == replace_at else e.data
        log.append_encoded(encode_event(e.kind, data), ts=e.ts)
    return log


@given(script=steps, pick=st.integers(0, 10_000), which=st.integers(0, 10_000))
def test_well_formed_events_replay_and_each_corruption_names_seq_and_field(script: list[Any], pick: int,
                                                                         which: int) -> None:
    """Random jobs replay exactly; a random field of a random event given a wrong type (or
    dropped, or an extra field added) is refused with that event's seq and that field."""
    job = _build(script)
    events = job.events()
    assert JobState.from_events(_log_of(events)).serialize() == job.serialize()
    target = events[pick % len(events)]
    corruptions = _corruptions(target.kind, target.data)
    field, payload = corruptions[which % len(corruptions)]
    with pytest.raises(ReplayError) as err:
        JobState.from_events(_log_of(events, target.seq, payload)).serialize()  # serialize reads the history
    assert err.value.seq == target.seq, str(err.value)
    assert err.value.field == field, str(err.value)
    assert f"event seq {target.seq}" in str(err.value) and repr(field) in str(err.value)
