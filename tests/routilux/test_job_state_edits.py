"""In-place edits are events (issue 12): routilux 0.10's read-modify-write patterns, each one event.

For every pattern of the 0.10 documentation the test checks what a 0.10 user sees (the
expected values were taken from routilux 0.10.0; ``test_patterns_match_routilux_0_10``
runs the same code on the real 0.10 when it is installed) and that the state rebuilt
from the job's events equals the live state. The operations themselves are compared
with plain Python lists and dicts, exhaustively over small cases.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from compat_support import needs_reference, run_reference

from routilux import JobState
from routilux import job_events as ev
from routilux.errors import DetachedValueError, ReadOnlyJobStateError
from routilux.frozen import thaw
from routilux.job_state import ExecutionRecord


def replayed(job: JobState) -> JobState:
    """The job rebuilt from its own events."""
    return JobState.from_events(job.events())


def assert_replays(job: JobState) -> None:
    """Live == replay == at(head) (snapshot + tail)."""
    live = job.serialize()
    assert replayed(job).serialize() == live
    assert job.at(version=job.version).serialize() == live


# -- the 0.10 documentation's patterns ------------------------------------------------------
# Each snippet runs unchanged on routilux 0.10.0 and on ours; SUMMARY prints what a user sees.
SUMMARY = """
def summary(job, results):
    return {
        "shared_data": job.shared_data, "routine_states": job.routine_states,
        "shared_log": [{k: v for k, v in e.items() if k != "timestamp"} for e in job.shared_log],
        "history": [[r.routine_id, r.event_name, r.data] for r in job.execution_history],
        "job_id": job.job_id, "flow_id": job.flow_id, "status": job.status, "results": results,
    }
"""

PATTERNS: dict[str, tuple[str, dict[str, Any]]] = {
    "get_shared_data_append": (
        'job.update_shared_data("items", [])\n'
        'for x in range(3):\n'
        '    job.get_shared_data("items").append(x)\n'
        'job.get_shared_data("items").append({"nested": [1]})\n'
        'job.get_shared_data("items")[3]["nested"].append(2)\n',
        {"shared_data": {"items": [0, 1, 2, {"nested": [1, 2]}]}},
    ),
    "shared_data_setitem": (
        'job.shared_data["k"] = "v"\n'
        'job.shared_data["config"] = {"retries": 1}\n'
        'job.shared_data["config"]["retries"] += 2\n'
        'job.shared_data["config"]["tags"] = ["a"]\n'
        'job.shared_data["config"]["tags"] += ["b"]\n',
        {"shared_data": {"k": "v", "config": {"retries": 3, "tags": ["a", "b"]}}},
    ),
    "routine_state_count": (
        'job.update_routine_state("counter", {"status": "running", "count": 0})\n'
        'for _ in range(5):\n'
        '    job.get_routine_state("counter")["count"] += 1\n'
        'job.routine_states["counter"]["status"] = "completed"\n',
        {"routine_states": {"counter": {"status": "completed", "count": 5}}},
    ),
    "routine_states_assign": (
        'job.routine_states["r1"] = {"status": "done"}\n'
        'job.routine_states["r2"] = {"status": "running", "seen": []}\n'
        'job.routine_states["r2"]["seen"].append("x")\n'
        'del job.routine_states["r1"]\n',
        {"routine_states": {"r2": {"status": "running", "seen": ["x"]}}},
    ),
    "execution_history_append": (
        'job.execution_history.append(ExecutionRecord("r", "emitted", {"n": 1}))\n'
        'job.record_execution("r", "second", {"n": 2})\n'
        'results.append(len(job.execution_history))\n',
        {"history": [["r", "emitted", {"n": 1}], ["r", "second", {"n": 2}]], "results": [2]},
    ),
    "shared_log_append": (
        'job.shared_log.append({"msg": "hello"})\n'
        'job.append_to_shared_log({"msg": "world"})\n'
        'job.shared_log[0]["msg"] = "HELLO"\n',
        {"shared_log": [{"msg": "HELLO"}, {"msg": "world"}]},
    ),
    "ids_and_custom_status": (
        'job.job_id = "job-42"\n'
        'job.flow_id = "renamed-flow"\n'
        'job.status = "awaiting_review"\n',
        {"job_id": "job-42", "flow_id": "renamed-flow", "status": "awaiting_review"},
    ),
    "dict_methods": (
        'job.shared_data.update({"a": 1, "b": {"x": 1}}, c=3)\n'
        'results.append(job.shared_data.pop("a"))\n'
        'results.append(job.shared_data.setdefault("d", [0]))\n'
        'job.shared_data["d"].extend([1, 2])\n'
        'results.append(job.shared_data["b"].popitem())\n'
        'results.append(job.shared_data.pop("nope", "default"))\n'
        'job.shared_data["b"] |= {"y": 2}\n',
        {"shared_data": {"b": {"y": 2}, "c": 3, "d": [0, 1, 2]}, "results": [1, [0, 1, 2], ["x", 1], "default"]},
    ),
    "list_methods": (
        'job.update_shared_data("l", [5, 3, 9, 1])\n'
        'l = job.get_shared_data("l")\n'
        'l.sort()\n'
        'l.insert(0, 7)\n'
        'results.append(l.pop())\n'
        'l.remove(3)\n'
        'l.reverse()\n'
        'l[1:1] = [8, 8]\n'
        'del l[::2]\n'
        'l.sort(key=lambda v: -v)\n'
        'l *= 2\n',
        {"shared_data": {"l": [8, 1, 8, 1]}, "results": [9]},
    ),
    "errors_as_in_python": (
        'job.update_shared_data("l", [1])\n'
        'for call in (lambda: job.get_shared_data("l").pop(5), lambda: job.get_shared_data("l").remove(9),\n'
        '             lambda: job.shared_data.__delitem__("nope"), lambda: job.get_shared_data("l")[3],\n'
        '             lambda: [].pop(), lambda: job.get_shared_data("l").sort(key=None) or job.shared_data.popitem()):\n'
        '    try:\n'
        '        call()\n'
        '        results.append("ok")\n'
        '    except Exception as exc:\n'
        '        results.append(type(exc).__name__)\n',
        {"shared_data": {}, "results": ["IndexError", "ValueError", "KeyError", "IndexError", "IndexError", "ok"]},
    ),
}
# What every summary holds unless a pattern says otherwise.
_BASE = {"shared_data": {}, "routine_states": {}, "shared_log": [], "history": [], "job_id": None,
         "flow_id": "flow", "status": "pending", "results": []}


def _expected(name: str) -> dict[str, Any]:
    out = dict(_BASE, **PATTERNS[name][1])
    return out


def _run_ours(code: str) -> tuple[JobState, dict[str, Any]]:
    namespace: dict[str, Any] = {"JobState": JobState, "ExecutionRecord": ExecutionRecord}
    exec(SUMMARY, namespace)  # noqa: S102 - the test's own snippets
    job = JobState("flow")
    results: list[Any] = []
    exec(code, dict(namespace, job=job, results=results))  # noqa: S102
    return job, json.loads(json.dumps(namespace["summary"](job, results), default=str))


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_behaves_as_in_0_10_and_replays(name: str) -> None:
    """The 0.10 pattern gives 0.10's result, every change is an event, and replay equals live."""
    job, got = _run_ours(PATTERNS[name][0])
    want = _expected(name)
    if want["job_id"] is None:
        want["job_id"] = got["job_id"]
    assert got == want
    assert_replays(job)


_REFERENCE_SCRIPT = """
import json, sys
from routilux import JobState
from routilux.job_state import ExecutionRecord
{summary}
out = {{}}
for name, code in json.loads(sys.argv[1]).items():
    job = JobState("flow")
    results = []
    exec(code, {{"job": job, "results": results, "ExecutionRecord": ExecutionRecord, "JobState": JobState}})
    out[name] = summary(job, results)
print(json.dumps(out, default=str))
"""


@needs_reference
def test_patterns_match_routilux_0_10() -> None:
    """The same snippets on the real routilux 0.10.0 give the expected results above.

    (The ids and the status of ``ids_and_custom_status`` and every other field too; the
    shared log is compared without its timestamps: ours adds one on append, as
    ``append_to_shared_log`` does.)
    """
    codes = {name: code for name, (code, _) in PATTERNS.items()}
    done = run_reference(_REFERENCE_SCRIPT.format(summary=SUMMARY), json.dumps(codes))
    assert done.returncode == 0, done.stderr
    theirs = json.loads(done.stdout)
    for name in PATTERNS:
        want = _expected(name)
        if want["job_id"] is None:
            want["job_id"] = theirs[name]["job_id"]
        assert theirs[name] == want, name


# -- one small event each ----------------------------------------------------------------------
def test_each_edit_is_one_small_event_carrying_the_change() -> None:
    """Appending to a 10,000-item list is one event of a few dozen bytes, not a copy of the list."""
    job = JobState()
    job.update_shared_data("items", list(range(10_000)))
    before = job.version
    job.get_shared_data("items").append("x")
    assert job.version == before + 1
    last = job.events()[-1]
    assert (last.kind, last.data) == (ev.SHARED_DATA_EDITED, {"key": "items", "path": [], "op": "append",
                                                               "args": ["x"]})
    assert len(job.log.read_raw(job.version, job.version).__next__()[2]) < 64
    job.update_routine_state("r", {"count": 0, "deep": {"list": [1]}})
    job.get_routine_state("r")["deep"]["list"].insert(0, 0)
    assert job.events()[-1].data == {"routine_id": "r", "path": ["deep", "list"], "op": "insert", "args": [0, 0]}


class _Tag(str):
    """A str subclass: the codec stores it as a plain str."""


def _typed(value: Any) -> Any:
    """``value`` with the type of every item spelled out (``==`` alone takes 1 == 1.0 == True)."""
    if isinstance(value, dict):
        return ("dict", {k: _typed(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return ("tuple" if type(value) is tuple else "list", [_typed(v) for v in value])
    return (type(value).__name__, value)


FAST_VALUES = [0, -(2**40), 2**63, 1.5, True, None, "s", b"b", _Tag("t"), (1, "x"), [1, [2]], {"a": {"b": 1}}]


@pytest.mark.parametrize("value", FAST_VALUES, ids=[repr(v) for v in FAST_VALUES])
def test_appends_and_item_sets_record_the_planned_event_and_replay_exactly(value: Any) -> None:
    """The fast path of an append / an item set (job_edits) records the event the general path would.

    Root values and nested containers, scalars of every type and containers: each edit is
    one event with the expected payload, and the live value, types included, is what the
    job's events rebuild (a value the codec changes, a tuple or a str subclass, is applied
    as decoded, not as given).
    """
    job = JobState()
    job.update_shared_data("items", [[]])
    job.update_routine_state("r", {"count": 0, "deep": {"d": {"x": 1}}})
    edits = [
        (lambda: job.get_shared_data("items").append(value), ev.SHARED_DATA_EDITED,
         {"key": "items", "path": [], "op": "append", "args": [value]}),
        (lambda: job.get_shared_data("items")[0].append(value), ev.SHARED_DATA_EDITED,
         {"key": "items", "path": [0], "op": "append", "args": [value]}),
        (lambda: job.get_routine_state("r").__setitem__("count", value), ev.ROUTINE_STATE_EDITED,
         {"routine_id": "r", "path": [], "op": "setitem", "args": ["count", value]}),
        (lambda: job.get_routine_state("r")["deep"]["d"].__setitem__("x", value), ev.ROUTINE_STATE_EDITED,
         {"routine_id": "r", "path": ["deep", "d"], "op": "setitem", "args": ["x", value]}),
    ]
    for edit, kind, payload in edits:
        before = job.version
        edit()
        assert job.version == before + 1
        last = job.events()[-1]
        assert last.kind == kind
        assert _typed(last.data) == _typed(as_decoded(payload))
    again = replayed(job)
    for read in (lambda j: j.get_shared_data("items"), lambda j: j.get_routine_state("r")):
        assert _typed(thaw(read(job))) == _typed(thaw(read(again)))
    assert_replays(job)


def as_decoded(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` as the codec gives it back (a str subclass comes back a str)."""
    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(plain(v) for v in value)
        return str(value) if isinstance(value, str) else value
    return {k: plain(v) for k, v in payload.items()}


def test_ten_thousand_appends_are_ten_thousand_events_and_replay() -> None:
    """A list grown by 10,000 in-place appends: 10,000 events; replay, snapshots and save/load agree."""
    job = JobState()
    job.snapshot_every = 1000
    job.update_shared_data("items", [])
    for i in range(10_000):
        job.get_shared_data("items").append(i)
    assert job.version == 10_002
    assert job.get_shared_data("items") == list(range(10_000))
    assert job.log.latest_snapshot() is not None  # a policy snapshot re-encoded the edited value
    assert job.at(version=5_002).get_shared_data("items") == list(range(5_000))
    assert_replays(job)


def test_no_change_records_nothing() -> None:
    """Mutations that change nothing record nothing (`+=` on an item re-assigns the same object)."""
    job = JobState()
    job.update_shared_data("l", [])
    job.update_shared_data("d", {"k": [1]})
    version = job.version
    job.get_shared_data("l").clear()
    job.get_shared_data("l").extend([])
    job.shared_data.update({})
    job.get_shared_data("d").setdefault("k", "unused")
    job.shared_data["d"] = job.shared_data["d"]
    assert job.version == version
    job.shared_data["d"]["k"] += [2]  # one event: the extend (the re-assignment is the same list)
    assert job.version == version + 1 and job.get_shared_data("d") == {"k": [1, 2]}


# -- the operations against plain Python -------------------------------------------------------
_LISTS = [[], [1], [3, 1, 2], [1, [2], {"a": 1}], ["b", "a", "c", "a"]]
_INDEXES = [-5, -1, 0, 1, 2, 4]
_SLICES = [slice(None), slice(1, None), slice(None, 2), slice(0, 3, 2), slice(None, None, -1), slice(3, 0, -1),
           slice(-2, None), slice(5, 1)]


def _list_calls() -> list[tuple[str, Any]]:
    calls: list[tuple[str, Any]] = [("append(9)", lambda x: x.append(9)), ("extend", lambda x: x.extend([7, [8]])),
                                    ("clear", lambda x: x.clear()), ("pop()", lambda x: x.pop()),
                                    ("sort", lambda x: x.sort()), ("sort(reverse)", lambda x: x.sort(reverse=True)),
                                    ("sort(key)", lambda x: x.sort(key=repr)), ("reverse", lambda x: x.reverse()),
                                    ("remove(a)", lambda x: x.remove("a")), ("remove(1)", lambda x: x.remove(1)),
                                    ("+=", lambda x: x.__iadd__([0])), ("*=2", lambda x: x.__imul__(2)),
                                    ("*=0", lambda x: x.__imul__(0))]
    for i in _INDEXES:
        calls += [(f"insert({i})", lambda x, i=i: x.insert(i, "n")), (f"pop({i})", lambda x, i=i: x.pop(i)),
                  (f"[{i}]=", lambda x, i=i: x.__setitem__(i, "s")), (f"del [{i}]", lambda x, i=i: x.__delitem__(i))]
    for s in _SLICES:
        calls += [(f"[{s}]=[]", lambda x, s=s: x.__setitem__(s, [])),
                  (f"[{s}]=[x, y]", lambda x, s=s: x.__setitem__(s, ["x", "y"])),
                  (f"del [{s}]", lambda x, s=s: x.__delitem__(s))]
    return calls


def _outcome(call: Any, target: Any) -> tuple[str, Any]:
    try:
        return "ok", thaw(call(target))
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        return "raised", type(exc).__name__


@pytest.mark.parametrize(("what", "call"), _list_calls(), ids=[c[0] for c in _list_calls()])
def test_list_edits_match_plain_lists(what: str, call: Any) -> None:
    """Each list operation on a live list (nested in shared data) does what it does to a plain list."""
    for start in _LISTS:
        job = JobState()
        job.update_shared_data("x", {"l": start})
        plain = thaw(start)
        version = job.version
        got = _outcome(call, job.get_shared_data("x")["l"])
        want = _outcome(call, plain)
        if want[0] == "raised" and what.startswith("sort"):
            plain = thaw(start)  # list.sort may leave a list half sorted when it fails; ours is unchanged
        assert got == want, (what, start)
        assert job.get_shared_data("x")["l"] == plain, (what, start)
        if got[0] == "raised":
            assert job.version == version  # a refused edit records nothing
        assert replayed(job).get_shared_data("x") == {"l": plain}


_DICTS = [{}, {"a": 1}, {"a": 1, 2: [3], "c": {"d": 4}}]


def _dict_calls() -> list[tuple[str, Any]]:
    return [("d[a]=", lambda d: d.__setitem__("a", 9)), ("d[2]=", lambda d: d.__setitem__(2, "two")),
            ("del d[a]", lambda d: d.__delitem__("a")), ("pop(a)", lambda d: d.pop("a")),
            ("pop(z, 0)", lambda d: d.pop("z", 0)), ("popitem", lambda d: d.popitem()),
            ("clear", lambda d: d.clear()), ("update", lambda d: d.update({"a": 5, "n": [1]}, k=2)),
            ("update(pairs)", lambda d: d.update([("p", 1)])), ("setdefault(a)", lambda d: d.setdefault("a", 7)),
            ("setdefault(z)", lambda d: d.setdefault("z", [7])), ("|=", lambda d: d.__ior__({"o": 1})),
            ("d[[1]]=", lambda d: d.__setitem__([1], 1))]


@pytest.mark.parametrize(("what", "call"), _dict_calls(), ids=[c[0] for c in _dict_calls()])
def test_dict_edits_match_plain_dicts(what: str, call: Any) -> None:
    """Each dict operation on a live dict (a routine's state) does what it does to a plain dict."""
    for start in _DICTS:
        job = JobState()
        job.update_routine_state("r", {"inner": start})
        plain = thaw(start)
        got = _outcome(call, job.get_routine_state("r")["inner"])
        want = _outcome(call, plain)
        assert got == want, (what, start)
        assert job.get_routine_state("r")["inner"] == plain
        assert replayed(job).routine_states == {"r": {"inner": plain}}


def test_the_fields_themselves_accept_dict_and_list_edits() -> None:
    """shared_data / routine_states / shared_log / execution_history: edits of the field, and assignment."""
    job = JobState()
    job.shared_data.update(a=1, b=[1])
    del job.shared_data["a"]
    assert job.shared_data.pop("b") == [1] and job.shared_data == {}
    job.routine_states.update({"r": {"n": 1}})
    with pytest.raises(TypeError, match="must be a dict"):
        job.routine_states["bad"] = 3
    with pytest.raises(TypeError, match="keys must be str"):
        job.shared_data[3] = "x"
    job.shared_log.extend([{"i": 1}, {"i": 2}])
    job.shared_log.insert(0, {"i": 0})
    with pytest.raises(ValueError, match="must be a dict"):
        job.shared_log.append("not a dict")
    assert [e["i"] for e in job.shared_log] == [0, 1, 2]
    job.record_execution("r", "b", {})
    job.execution_history.insert(0, ExecutionRecord("r", "a", {"x": 1}))
    job.execution_history.sort(key=lambda r: r.event_name, reverse=True)
    assert [r.event_name for r in job.execution_history] == ["b", "a"]
    with pytest.raises(TypeError, match="ExecutionRecord"):
        job.execution_history.append({"routine_id": "r"})
    job.shared_data = {"fresh": True}
    job.routine_states = {}
    job.shared_log = [{"only": 1}]
    job.shared_log += [{"two": 2}]  # extends, then re-assigns the same list: nothing more
    job.execution_history = []
    assert job.shared_data == {"fresh": True} and job.routine_states == {} and job.execution_history == []
    assert [thaw(e) for e in job.shared_log][0] == {"only": 1} and len(job.shared_log) == 2
    assert_replays(job)


def test_an_appended_record_keeps_its_timestamp_and_the_log_entry_gets_one() -> None:
    """execution_history.append(record) keeps the record (with its time); shared_log.append adds a time."""
    job = JobState()
    record = ExecutionRecord("r", "e", {"n": 1})
    job.execution_history.append(record)
    assert job.execution_history[-1] == record and job.execution_history[-1].timestamp == record.timestamp
    job.shared_log.append({"m": 1})
    assert set(job.shared_log[-1]) == {"m", "timestamp"}
    assert replayed(job).execution_history[-1] == record


# -- values that are no longer part of the job, read-only values -----------------------------------
def test_a_value_held_across_its_replacement_refuses_changes() -> None:
    """x = shared_data["a"]; update_shared_data("a", ...); x.append(1): a clear error, nothing changes.

    0.10 would change a list that is no longer in the job (silently, to no effect); here the
    held list keeps showing what it held and refuses the change.
    """
    job = JobState()
    job.update_shared_data("a", [1, {"in": [2]}])
    held, inner = job.shared_data["a"], job.shared_data["a"][1]
    job.update_shared_data("a", ["new"])
    version = job.version
    with pytest.raises(DetachedValueError, match=r"shared_data\['a'\] was replaced or removed"):
        held.append(1)
    with pytest.raises(DetachedValueError):
        inner["in"].append(3)
    assert held == [1, {"in": [2]}] and job.shared_data == {"a": ["new"]} and job.version == version
    popped_from = job.get_shared_data("a")
    job.update_routine_state("r", {"l": [1]})
    gone = job.get_routine_state("r")["l"]
    del job.routine_states["r"]
    with pytest.raises(DetachedValueError, match="routine_states"):
        gone.append(2)
    popped_from.append("still part of the job")
    assert job.get_shared_data("a") == ["new", "still part of the job"]


def test_a_held_value_follows_its_position_after_the_list_above_changes() -> None:
    """A dict inside a list stays editable when items are inserted before it (as a 0.10 object would)."""
    job = JobState()
    job.update_shared_data("rows", [{"id": 1}, {"id": 2}])
    second = job.get_shared_data("rows")[1]
    job.get_shared_data("rows").insert(0, {"id": 0})
    job.get_shared_data("rows").sort(key=lambda row: -row["id"])
    second["seen"] = True
    assert job.get_shared_data("rows") == [{"id": 2, "seen": True}, {"id": 1}, {"id": 0}]
    assert_replays(job)


def test_read_only_values_say_why() -> None:
    """Values of at(), from_events(), load(version=), open(readonly=True) and a closed job refuse, saying why."""
    job = JobState()
    job.update_shared_data("l", [1])
    job.update_shared_data("l2", [2])
    with pytest.raises(ReadOnlyJobStateError, match=r"at version 2 \(from at\(\)\)"):
        job.at(version=2).get_shared_data("l").append(2)
    with pytest.raises(ReadOnlyJobStateError, match=r"from_events\(\)"):
        replayed(job).shared_data["x"] = 1
    assert job.get_shared_data("l") == [1]


def test_read_only_values_of_files_and_closed_jobs(tmp_path: Any) -> None:
    """load(version=...) and open(readonly=True) values are read-only; a closed job's too."""
    path = tmp_path / "job"
    with JobState.open(path, flow_id="f") as job:
        job.update_shared_data("l", [1])
        job.save(tmp_path / "saved.rjob")
        kept = job.get_shared_data("l")
    with pytest.raises(ReadOnlyJobStateError, match="closed"):
        kept.append(2)
    with pytest.raises(ReadOnlyJobStateError, match="an earlier point"):
        JobState.load(tmp_path / "saved.rjob", version=1).shared_data["x"] = 1
    with JobState.open(path, readonly=True) as view, pytest.raises(ReadOnlyJobStateError, match="read-only"):
        view.get_shared_data("l").append(2)
    with JobState.open(path) as again:
        again.get_shared_data("l").append(2)  # reopened for writing: editable again
        assert again.get_shared_data("l") == [1, 2]


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_values_of_an_ended_job_are_read_only(status: str) -> None:
    """After the job ended, values read from it refuse edits (nothing recorded); explicit calls still record."""
    job = JobState()
    job.update_shared_data("summary", {"total": 1})
    job.update_routine_state("r", {"count": 0})
    job.status = status
    version = job.version
    with pytest.raises(ReadOnlyJobStateError, match="has ended"):
        job.get_shared_data("summary")["total"] = 3
    with pytest.raises(ReadOnlyJobStateError, match="has ended"):
        job.get_routine_state("r")["count"] += 1
    with pytest.raises(ReadOnlyJobStateError, match="has ended"):
        job.shared_log.append({"late": True})
    assert job.version == version and job.get_shared_data("summary") == {"total": 1}
    job.update_shared_data("summary", {"total": 3})  # on purpose: recorded
    job.shared_data = {"replaced": 1}  # a whole-field assignment: recorded
    assert job.shared_data == {"replaced": 1} and job.version == version + 2
    job.status = "running"  # resumed: editable again
    job.get_shared_data("replaced")
    job.shared_data["more"] = 2
    assert job.shared_data == {"replaced": 1, "more": 2}
    assert JobState.from_events(job.events()).serialize() == job.serialize()


def test_edits_inside_a_transaction_are_refused() -> None:
    """The engine's transaction batches events; an edit needs the current state, so it is refused there."""
    job = JobState()
    job.update_shared_data("l", [])
    with pytest.raises(RuntimeError, match="transaction"), job._transaction():
        job.get_shared_data("l").append(1)
    assert job.get_shared_data("l") == []


def test_concurrent_edits_lose_nothing() -> None:
    """Eight threads appending to one shared list: every append recorded, live == replay."""
    job = JobState()
    job.update_shared_data("items", [])
    job.update_routine_state("c", {"n": 0})

    def work(t: int) -> None:
        for i in range(250):
            job.get_shared_data("items").append((t, i))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(job.get_shared_data("items")) == sorted((t, i) for t in range(8) for i in range(250))
    assert job.version == 2 + 1 + 2000
    assert_replays(job)


def test_durable_job_edits_survive_reopen_and_snapshots(tmp_path: Any) -> None:
    """A durable job's edits come back on reopen (snapshot + tail) and in a saved file."""
    path = tmp_path / "job"
    with JobState.open(path, flow_id="f", durability="none") as job:
        job.snapshot_every = 7
        job.update_shared_data("items", [])
        for i in range(50):
            job.get_shared_data("items").append({"i": i})
            job.get_shared_data("items")[-1]["sq"] = i * i
        job.sync()
        want = job.serialize()
        job.save(tmp_path / "saved.rjob")
    with JobState.open(path) as again:
        assert again.serialize() == want
        assert again.log.snapshot_seqs()
        assert again.at(version=20).get_shared_data("items")[-1] == {"i": 8, "sq": 64}
    assert JobState.load(tmp_path / "saved.rjob").serialize() == want
