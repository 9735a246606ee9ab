"""compare_events: lanes, id renaming, ignore rules, missing and extra events, strictness."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay_tools.divergence import CompareRules, RuleSyntaxError, actions_of, compare_events, parse_rule
from replay_tools.divergence.script import Cancel, Execute, Pause, Resume, Wait
from replay_tools.paths import MISSING
from routilux.job_state import JobEvent


def stream(*events: tuple[str, dict[str, Any]], ts: int = 1000) -> list[JobEvent]:
    """Events numbered from 1 (a job_created first), each with its own timestamp."""
    out = [JobEvent(1, ts, "job_created", {"job_id": "J", "flow_id": "f", "schema": 2})]
    for kind, data in events:
        out.append(JobEvent(len(out) + 1, ts + len(out), kind, data))
    return out


def queued(tid: str, target: str, source: str | None = None) -> tuple[str, dict[str, Any]]:
    task: dict[str, Any] = {"routine_id": target, "slot": "in", "data": {}}
    if source is not None:
        task["source"] = [source, "out"]
    else:
        task["kind"] = "entry"
    return ("task_queued", {"task_id": tid, "task": task})


def rec(rid: str, name: str, data: Any) -> tuple[str, dict[str, Any]]:
    return ("execution_recorded", {"routine_id": rid, "event_name": name, "data": data})


def shared(key: str, value: Any) -> tuple[str, dict[str, Any]]:
    return ("shared_data_set", {"key": key, "value": value})


def test_identical_runs_with_other_ids_and_times_match() -> None:
    """Job ids, task ids and timestamps differ by nature: no divergence."""
    a = stream(queued("a-1", "src"), rec("src", "out", {"n": 1}), queued("a-2", "dst", "src"),
               ("task_started", {"task_id": "a-2"}), ("task_failed", {"task_id": "a-2", "error": {"e": 1}}))
    b = stream(queued("b-7", "src"), rec("src", "out", {"n": 1}), queued("b-9", "dst", "src"),
               ("task_failed", {"task_id": "b-9", "error": {"e": 1}}), ts=5000)
    b[0] = JobEvent(1, 5000, "job_created", {"job_id": "K", "flow_id": "f", "schema": 2})
    assert compare_events(a, b).ok


def test_task_ids_must_correspond_one_to_one() -> None:
    """A failure recorded for the other task is a divergence (ids are renamed, not ignored)."""
    a = stream(queued("a-1", "dst", "src"), queued("a-2", "dst", "src"),
               ("task_failed", {"task_id": "a-1", "error": {}}))
    b = stream(queued("b-1", "dst", "src"), queued("b-2", "dst", "src"),
               ("task_failed", {"task_id": "b-2", "error": {}}))
    div = compare_events(a, b).divergence
    assert div is not None and div.version == 4 and div.fields[0].path == "task_id"


def test_other_routines_may_interleave_differently() -> None:
    """Events of two routines in another order: same flow, other thread timing."""
    a = stream(rec("x", "e", 1), rec("y", "e", 2), rec("x", "e", 3))
    b = stream(rec("y", "e", 2), rec("x", "e", 1), rec("x", "e", 3))
    assert compare_events(a, b).ok


def test_order_within_one_routine_counts() -> None:
    """The same routine's events swapped: divergence at the first recorded one out of place."""
    a = stream(rec("x", "e", 1), rec("x", "e", 2))
    b = stream(rec("x", "e", 2), rec("x", "e", 1))
    div = compare_events(a, b).divergence
    assert div is not None and div.version == 2 and div.change == "changed" and div.routine_id == "x"


def test_shared_data_order_counts_unless_compared_by_key() -> None:
    """Shared-data writes in another order diverge; per key (an option) they do not."""
    a = stream(shared("a", 1), shared("b", 2))
    b = stream(shared("b", 2), shared("a", 1))
    assert not compare_events(a, b).ok
    assert compare_events(a, b, CompareRules(shared_data_by_key=True)).ok


def test_missing_and_extra_events() -> None:
    """A recorded event the new run lacks is 'missing'; one it adds at the end of a lane is 'extra'."""
    a = stream(rec("x", "e", 1), rec("x", "e", 2))
    b = stream(rec("x", "e", 1))
    div = compare_events(a, b).divergence
    assert div is not None and (div.change, div.version, div.actual) == ("missing", 3, None)
    div = compare_events(b, a).divergence
    assert div is not None and (div.change, div.version) == ("extra", 2)
    assert div.actual is not None and div.actual.data["data"] == 2


def test_the_earliest_divergence_wins_across_lanes() -> None:
    """An extra event early in one lane is reported before a later change in another lane."""
    a = stream(rec("x", "e", 1), rec("y", "e", 1), rec("y", "e", 2))
    b = stream(rec("x", "e", 1), rec("x", "e", 9), rec("y", "e", 1), rec("y", "e", 3))
    div = compare_events(a, b).divergence
    assert div is not None and (div.change, div.version) == ("extra", 2)


def test_values_compare_strictly() -> None:
    """1 vs 1.0 vs True, and the key order of a mapping, are differences."""
    for left, right in ((1, 1.0), (1, True), ({"a": 1, "b": 2}, {"b": 2, "a": 1})):
        div = compare_events(stream(rec("x", "e", left)), stream(rec("x", "e", right))).divergence
        assert div is not None, (left, right)
    div = compare_events(stream(rec("x", "e", {"a": 1, "b": 2})), stream(rec("x", "e", {"b": 2, "a": 1}))).divergence
    assert div is not None and div.fields[0].path == "data (key order)"


def test_default_rules_ignore_engine_times_and_tracebacks() -> None:
    """execution_time, error_time, pause timestamps and tracebacks may differ."""
    a = stream(("routine_state_set", {"routine_id": "x", "state": {"status": "completed", "execution_time": 0.1}}),
               rec("x", "error", {"error": "boom", "traceback": ["a.py:1 in f"]}),
               ("pause_point_added", {"point": {"timestamp": "2026-01-01T00:00:00", "reason": "r"}}))
    b = stream(("routine_state_set", {"routine_id": "x", "state": {"status": "completed", "execution_time": 0.7}}),
               rec("x", "error", {"error": "boom", "traceback": ["a.py:3 in f"]}),
               ("pause_point_added", {"point": {"timestamp": "2026-02-02T00:00:00", "reason": "r"}}))
    assert compare_events(a, b).ok
    b[-1] = JobEvent(4, 0, "pause_point_added", {"point": {"timestamp": "x", "reason": "other"}})
    div = compare_events(a, b).divergence
    assert div is not None and [f.path for f in div.fields] == ["point.reason"]


def test_aligned_payload_takes_ignored_fields_from_the_recording() -> None:
    """The new event, as the old run would have recorded it: ignored fields from the recording."""
    a = stream(("routine_state_set", {"routine_id": "x", "state": {"n": 1, "execution_time": 0.1}}))
    b = stream(("routine_state_set", {"routine_id": "x", "state": {"n": 2, "execution_time": 0.7}}))
    div = compare_events(a, b).divergence
    assert div is not None
    assert div.aligned == {"routine_id": "x", "state": {"n": 2, "execution_time": 0.1}}
    assert [(f.path, f.expected, f.actual) for f in div.fields] == [("state.n", 1, 2)]


@pytest.mark.parametrize(("rule", "kind", "where", "path"), [
    ("task_started", "task_started", (), ()),
    ("shared_data_set[key=at].value", "shared_data_set", (("key", "at"),), ("value",)),
    ("*.**.traceback", "*", (), ("**", "traceback")),
    ("execution_recorded[routine_id=_flow, event_name=forked]", "execution_recorded",
     (("routine_id", "_flow"), ("event_name", "forked")), ()),
])
def test_rules_parse(rule: str, kind: str, where: tuple[tuple[str, str], ...], path: tuple[str, ...]) -> None:
    """The rule grammar of the module docstring."""
    parsed = parse_rule(rule)
    assert (parsed.kind, parsed.where, parsed.path) == (kind, where, path)


@pytest.mark.parametrize("rule", ["", "a..b", "a.", "x[key]", "x[=1]"])
def test_bad_rules_are_refused_up_front(rule: str) -> None:
    """A bad rule fails when the rules are made, naming the rule."""
    with pytest.raises(RuleSyntaxError, match="bad comparison rule"):
        CompareRules(ignore=[rule])


def test_actions_are_read_back_from_a_log() -> None:
    """execute (with the start record's params), external pause, resume, cancel, and the user's waits."""
    events = stream(("status_set", {"status": "running"}), rec("e", "start", None), queued("t1", "e"),
                    ("status_set", {"status": "completed"}),
                    ("paused", {"reason": "why", "checkpoint": {"at": 1}}), ("resumed", {}),
                    ("cancelled", {"reason": "stop"}))
    # execute's batch shares one timestamp: the start record is found next to the entry task.
    events[2] = JobEvent(3, events[3].ts, *events[2][2:])
    assert actions_of(events) == [Execute("e", None), Wait(), Pause("why", {"at": 1}), Resume(), Cancel("stop")]


def test_a_pause_by_the_jobs_own_handler_is_not_an_input() -> None:
    """paused followed, in the same batch, by the end of the pausing task: the code's doing."""
    events = stream(queued("t1", "e"), ("paused", {"reason": "", "checkpoint": None}))
    events.append(JobEvent(len(events) + 1, events[-1].ts, "task_finished", {"task_id": "t1"}))
    assert actions_of(events) == [Execute("e", {})]


@given(st.lists(st.tuples(st.sampled_from(["x", "y", "z"]), st.integers(0, 3)), max_size=12), st.randoms())
def test_any_interleaving_of_routines_matches(items: list[tuple[str, int]], rnd: Any) -> None:
    """Property: shuffling events across routines (keeping each routine's order) never diverges."""
    a = stream(*(rec(r, "e", v) for r, v in items))
    lanes: dict[str, list[tuple[str, int]]] = {}
    for r, v in items:
        lanes.setdefault(r, []).append((r, v))
    merged: list[tuple[str, int]] = []
    while any(lanes.values()):
        r = rnd.choice([k for k, v in lanes.items() if v])
        merged.append(lanes[r].pop(0))
    assert compare_events(a, stream(*(rec(r, "e", v) for r, v in merged))).ok


@given(st.lists(st.integers(0, 3), min_size=1, max_size=10), st.data())
def test_any_changed_value_is_found_at_its_version(values: list[int], data: Any) -> None:
    """Property: changing one recorded value is reported at exactly that version."""
    i = data.draw(st.integers(0, len(values) - 1))
    changed = [*values[:i], values[i] + 1, *values[i + 1:]]
    div = compare_events(stream(*(rec("x", "e", v) for v in values)),
                         stream(*(rec("x", "e", v) for v in changed))).divergence
    assert div is not None and div.version == i + 2
    assert (div.fields[0].expected, div.fields[0].actual) == (values[i], values[i] + 1)
    assert div.fields[0].expected is not MISSING
