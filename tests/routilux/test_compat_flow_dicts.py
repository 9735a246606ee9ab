"""Flow dicts made by routilux 0.10 load here, and 0.10 loads ours (issue 12, "old flow dicts")."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from compat_support import assert_replays, fixture, manifest, needs_reference, run_reference
from fixture_routines import Collector, Doubler, Labeller, NumberSource
from hypothesis import given
from hypothesis import strategies as st
from make_fixtures import describe

from routilux import ErrorHandler, Flow, JobState, Routine

FLOWS = ["chain", "fan_out", "error_handlers", "configured", "ambiguous", "paused"]
UNAMBIGUOUS = [n for n in FLOWS if n != "ambiguous"]


def _same_as_expected(got: dict[str, Any], expected: dict[str, Any]) -> None:
    for key in ("flow_id", "execution_strategy", "max_workers", "connections"):
        assert got[key] == expected[key], key
    for handler_got, handler_expected in [(got["error_handler"], expected["error_handler"])] + [
            (got["routines"][rid]["error_handler"], r["error_handler"]) for rid, r in expected["routines"].items()]:
        if handler_expected is None:
            assert handler_got is None
        else:  # ours also writes retryable_exceptions
            assert {k: handler_got[k] for k in handler_expected} == handler_expected
    assert list(got["routines"]) == list(expected["routines"])
    for rid, routine in expected["routines"].items():
        mine = got["routines"][rid]
        for key in ("class", "_id", "config", "slots", "events"):
            assert mine[key] == routine[key], (rid, key)
        if "received" in routine:
            assert mine["received"] == routine["received"]


def test_fixtures_name_their_source() -> None:
    """Every committed fixture parses as JSON and the manifest names the generator and versions."""
    info = manifest()
    assert info["routilux"] == "0.10.0" and info["generator"].endswith("make_fixtures.py")
    assert info["serilux"].startswith("0.")
    assert sorted(info["flows"]) == sorted(FLOWS)
    for name, entry in info["flows"].items():
        assert fixture(entry["file"])["_type"] == "Flow", name
    for name, entry in info["saves"].items():
        data = fixture(entry["file"])
        assert data["_type"] == "JobState" and data["status"] == entry["status"], name
        assert len(data["execution_history"]) == entry["history"]
        assert len(data["pending_tasks"]) == entry["pending_tasks"]


@pytest.mark.parametrize("name", UNAMBIGUOUS)
def test_010_flow_dict_loads_with_the_same_structure(name: str) -> None:
    """Routines (class, _id, config, slots, events, handlers), connections and settings match 0.10's flow."""
    flow = Flow()
    flow.deserialize(fixture(f"flows/{name}.json"))
    _same_as_expected(describe(flow), manifest()["flows"][name]["expected"])


@pytest.mark.parametrize("name", UNAMBIGUOUS)
def test_our_flow_dict_round_trips_through_json(name: str) -> None:
    """serialize() -> JSON -> deserialize() rebuilds the same flow."""
    flow = Flow()
    flow.deserialize(fixture(f"flows/{name}.json"))
    again = Flow()
    again.deserialize(json.loads(json.dumps(flow.serialize())))
    _same_as_expected(describe(again), manifest()["flows"][name]["expected"])


def test_ambiguous_010_dict_warns_and_links_as_010_does() -> None:
    """Two routines share the event/slot names: 0.10 links the first of them; we warn and do the same."""
    flow = Flow()
    with pytest.warns(UserWarning, match="do not say which"):
        flow.deserialize(fixture("flows/ambiguous.json"))
    got = describe(flow)["connections"]
    assert got == [["source", "numbers", "first", "values", {}], ["first", "doubled", "first", "values", {}]]
    truth = manifest()["flows"]["ambiguous"]["expected"]["connections"]
    assert got != truth  # what the dict cannot tell; our own dicts name the routines:
    flow = Flow()
    with pytest.warns(UserWarning):
        flow.deserialize(fixture("flows/ambiguous.json"))
    flow.connections.clear()
    flow._conn_index.clear()
    for src, event, dst, slot, mapping in truth:
        flow.routines[src].get_event(event).connected_slots.clear()
        flow.connect(src, event, dst, slot, mapping)
    again = Flow()
    again.deserialize(json.loads(json.dumps(flow.serialize())))  # no warning: ids are written
    assert describe(again)["connections"] == truth


@needs_reference
def test_010_links_the_ambiguous_dict_like_we_do() -> None:
    """The real 0.10 builds the same (wrong) connections from the ambiguous dict."""
    script = """
import json, sys
import fixture_routines
from routilux import Flow
flow = Flow()
flow.deserialize(json.load(open("flows/ambiguous.json")))
print(json.dumps([[flow._get_routine_id(c.source_event.routine), c.source_event.name,
                   flow._get_routine_id(c.target_slot.routine), c.target_slot.name] for c in flow.connections]))
"""
    done = run_reference(script)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [["source", "numbers", "first", "values"],
                                       ["first", "doubled", "first", "values"]]


def test_loaded_010_chain_runs_like_010() -> None:
    """The chain loaded from 0.10's dict ends in the state 0.10's own run saved; replay equals live."""
    flow = Flow()
    flow.deserialize(fixture("flows/chain.json"))
    job = flow.execute("source")
    assert JobState.wait_for_completion(flow, job, timeout=10)
    saved = fixture("saves/completed.json")
    assert job.status == saved["status"] == "completed"
    assert job.shared_data == saved["shared_data"]
    assert job.routine_states == saved["routine_states"]
    assert [(r.routine_id, r.event_name, r.data) for r in job.execution_history] == [
        (r["routine_id"], r["event_name"], r["data"]) for r in saved["execution_history"]]
    assert [(o["routine_id"], o["output_type"], o["data"]) for o in job.output_log] == [
        (o["routine_id"], o["output_type"], o["data"]) for o in saved["output_log"]]
    assert [{k: v for k, v in e.items() if k != "timestamp"} for e in job.shared_log] == [
        {k: v for k, v in e.items() if k != "timestamp"} for e in saved["shared_log"]]
    assert_replays(job)
    flow.shutdown()


@needs_reference
@pytest.mark.parametrize("name", UNAMBIGUOUS)
def test_010_reads_our_flow_dicts(name: str, tmp_path: Any) -> None:
    """routilux 0.10.0 deserializes our serialize() output into the same flow."""
    flow = Flow()
    flow.deserialize(fixture(f"flows/{name}.json"))
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(flow.serialize()))
    script = """
import json, sys
from make_fixtures import describe
from routilux import Flow
flow = Flow()
flow.deserialize(json.load(open(sys.argv[1])))
print(json.dumps(describe(flow)))
"""
    done = run_reference(script, str(path))
    assert done.returncode == 0, done.stderr
    _same_as_expected(json.loads(done.stdout), manifest()["flows"][name]["expected"])


def test_strict_refuses_unknown_keys_and_changes_nothing() -> None:
    """strict=True names the unknown key; the flow keeps its routines."""
    flow = Flow(flow_id="keep")
    flow.add_routine(NumberSource(), "mine")
    data = fixture("flows/chain.json")
    data["bogus"] = 1
    with pytest.raises(ValueError, match="bogus"):
        flow.deserialize(data, strict=True)
    assert flow.flow_id == "keep" and list(flow.routines) == ["mine"]
    data = fixture("flows/chain.json")
    data["routines"]["doubler"]["_slots"]["values"]["extra"] = 2
    with pytest.raises(ValueError, match="extra"):
        flow.deserialize(data, strict=True)
    flow.deserialize(data)  # not strict: ignored, as in serilux
    assert list(flow.routines) == ["source", "doubler", "collector"]


def test_a_bad_connection_leaves_the_flow_unchanged() -> None:
    """A connection naming an event no routine has is an error, and nothing is half-loaded."""
    flow = Flow(flow_id="keep")
    data = fixture("flows/chain.json")
    data["connections"][1]["_source_event_name"] = "nope"
    with pytest.raises(ValueError, match="connection 1: no routine has an event 'nope'"):
        flow.deserialize(data)
    assert flow.flow_id == "keep" and flow.routines == {} and flow.connections == []


def test_unknown_routine_class_says_what_to_do() -> None:
    """A class that is neither registered nor defined is named, with the fix."""
    data = fixture("flows/chain.json")
    data["routines"]["doubler"]["_type"] = "NoSuchRoutine"
    with pytest.raises(ValueError, match="NoSuchRoutine.*register_serializable"):
        Flow().deserialize(data)


class Undecorated(Routine):
    """A routine class never registered with serilux (0.10 could not load it by name)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)

    def go(self, **_: Any) -> None:
        pass


def test_undecorated_class_is_found_by_its_unique_name() -> None:
    """A 0.10-style dict (``_type`` only) of an unregistered Routine subclass still loads."""
    flow = Flow()
    flow.add_routine(Undecorated(), "u")
    data = flow.serialize()
    del data["routines"]["u"]["_class"]
    again = Flow()
    again.deserialize(data)
    assert type(again.routines["u"]) is Undecorated


def test_handler_of_another_routine_is_resolved_through_the_registry() -> None:
    """A slot whose handler is a method of another routine is relinked to the rebuilt routine."""
    flow = Flow()
    source, collector = NumberSource(), Collector()
    flow.add_routine(source, "source")
    flow.add_routine(collector, "collector")
    source.define_slot("spy", handler=collector.collect)
    again = Flow()
    again.deserialize(json.loads(json.dumps(flow.serialize())))
    handler = again.routines["source"].get_slot("spy").handler
    assert handler.__self__ is again.routines["collector"]
    assert handler.__func__ is Collector.collect


class NeedsArgs(Routine):
    """A routine that cannot be rebuilt (its constructor needs an argument)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size


def test_serialize_refuses_routines_that_cannot_be_rebuilt() -> None:
    """As in 0.10, serialize() fails early naming the routine and the constructor parameter."""
    flow = Flow()
    flow.add_routine(NeedsArgs(3), "big")
    with pytest.raises(TypeError, match="routine 'big'.*requires size"):
        flow.serialize()


def test_flow_error_handler_and_settings_round_trip() -> None:
    """Handler fields (also retryable_exceptions) and flow settings survive JSON."""
    flow = Flow(flow_id="h", execution_strategy="concurrent", max_workers=4, execution_timeout=12.5)
    flow.set_error_handler(ErrorHandler("retry", max_retries=5, retryable_exceptions=(KeyError, OSError)))
    flow.add_routine(Doubler(), "d")
    again = Flow()
    again.deserialize(json.loads(json.dumps(flow.serialize())))
    assert (again.flow_id, again.execution_strategy, again.max_workers, again.execution_timeout) == (
        "h", "concurrent", 4, 12.5)
    assert again.error_handler.retryable_exceptions == (KeyError, OSError)
    assert again.error_handler.max_retries == 5


# -- property: any flow survives serialize -> JSON -> deserialize -------------------------------

_CLASSES = {"NumberSource": NumberSource, "Doubler": Doubler, "Collector": Collector, "Labeller": Labeller}
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def _flows(draw: Any) -> Flow:
    flow = Flow(flow_id=draw(st.text(min_size=1, max_size=6)),
                execution_strategy=draw(st.sampled_from(["sequential", "concurrent"])),
                max_workers=draw(st.integers(1, 8)))
    names = draw(st.lists(st.sampled_from(sorted(_CLASSES)), min_size=1, max_size=5))
    for i, name in enumerate(names):
        routine = _CLASSES[name]()
        routine.set_config(**draw(st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), _json_values,
                                                  max_size=3)))
        if draw(st.booleans()):
            routine.set_error_handler(ErrorHandler(draw(st.sampled_from(["stop", "continue", "retry", "skip"])),
                                                   max_retries=draw(st.integers(0, 5))))
        flow.add_routine(routine, f"r{i}-{name}")
    ports = [(rid, ev) for rid, r in flow.routines.items() for ev in r._events]
    slots = [(rid, sl) for rid, r in flow.routines.items() for sl in r._slots if sl != "trigger"]
    if ports and slots:
        for (src, event), (dst, slot) in draw(st.lists(st.tuples(st.sampled_from(ports), st.sampled_from(slots)),
                                                       max_size=5, unique=True)):
            mapping = draw(st.dictionaries(st.sampled_from(["values", "label", "tag"]),
                                           st.sampled_from(["values", "tag", "x"]), max_size=2))
            flow.connect(src, event, dst, slot, mapping)
    return flow


@given(_flows())
def test_any_flow_round_trips_and_reads_as_a_010_dict(flow: Flow) -> None:
    """Our dict rebuilds the same flow; without our extra keys (a 0.10 dict) too, unless names are shared."""
    expected = describe(flow)
    data = json.loads(json.dumps(flow.serialize()))
    again = Flow()
    again.deserialize(data)
    assert describe(again) == expected
    for routine in data["routines"].values():
        del routine["_class"]
    for conn in data["connections"]:
        del conn["_source_routine_id"], conn["_target_routine_id"]
    as_010 = Flow()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        as_010.deserialize(data)
    got = describe(as_010)
    assert {k: v for k, v in got.items() if k != "connections"} == {
        k: v for k, v in expected.items() if k != "connections"}
    if not caught:  # every connection was unambiguous: the very same links
        assert got["connections"] == expected["connections"]
    else:
        assert all("do not say which" in str(w.message) for w in caught)
