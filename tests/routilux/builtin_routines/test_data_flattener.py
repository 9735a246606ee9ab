"""DataFlattener: keys, separators, lists, depth limit, cycles, Serializable objects, a real flow."""

from __future__ import annotations

import pytest
from builtin_support import assert_replays, history, run_flow, send
from hypothesis import given
from hypothesis import strategies as st

from routilux import ErrorHandler
from routilux.builtin_routines import DataFlattener

NESTED = {"a": {"b": 1, "c": [2, 3]}, "d": "x"}


def flatten(emits, payload, **config):
    flattener = DataFlattener()
    flattener.set_config(**config)
    out = emits(flattener)
    send(flattener, payload)
    assert [name for name, _ in out] == ["output"]
    return out[0][1]


def test_defaults_slots_and_events():
    """0.10's defaults, slot ``input`` and event ``output``."""
    flattener = DataFlattener()
    assert flattener.config() == {"separator": ".", "preserve_lists": True, "max_depth": 100}
    assert flattener.input_slot is flattener.get_slot("input")
    assert flattener.output_event.output_params == ["flattened_data", "original_type", "depth"]


def test_the_documented_example(emits):
    """{"a": {"b": 1, "c": [2, 3]}} flattens to dotted keys, list items by index."""
    assert flatten(emits, {"data": NESTED}) == {
        "flattened_data": {"a.b": 1, "a.c.0": 2, "a.c.1": 3, "d": "x"}, "original_type": "dict", "depth": 3}


def test_separator(emits):
    """The separator joins every level."""
    assert flatten(emits, {"data": NESTED}, separator="__")["flattened_data"] == {
        "a__b": 1, "a__c__0": 2, "a__c__1": 3, "d": "x"}


def test_lists_without_indices_overwrite(emits):
    """preserve_lists=False flattens every item under the list's key: the last one wins."""
    out = flatten(emits, {"data": {"xs": [1, 2, {"k": 3}], "ys": [4, 5]}}, preserve_lists=False)
    assert out["flattened_data"] == {"xs": 2, "xs.k": 3, "ys": 5}
    assert flatten(emits, {"data": [[1], [2]]}, preserve_lists=False)["flattened_data"] == {"value": 2}


def test_top_level_values_and_lists(emits):
    """A bare value is keyed 'value'; a top-level list keys its items '0', '1', ..."""
    assert flatten(emits, {"data": 5}) == {"flattened_data": {"value": 5}, "original_type": "int", "depth": 0}
    assert flatten(emits, {"data": ["a", ["b"]]}) == {
        "flattened_data": {"0": "a", "1.0": "b"}, "original_type": "list", "depth": 2}


def test_empty_containers_and_empty_keys(emits):
    """Empty dicts and lists add nothing; an empty key leaves the value under 'value'."""
    assert flatten(emits, {"data": {"a": {}, "b": [], "c": 1}})["flattened_data"] == {"c": 1}
    assert flatten(emits, {"data": {"": {"": 1}}})["flattened_data"] == {"value": 1}


def test_max_depth_stringifies_what_is_deeper(emits):
    """At max_depth the value is stored as str() and not descended into."""
    out = flatten(emits, {"data": {"a": {"b": {"c": 1}}, "n": 2}}, max_depth=2)
    assert out == {"flattened_data": {"a.b": "{'c': 1}", "n": 2}, "original_type": "dict", "depth": 2}
    assert flatten(emits, {"data": {"n": 2}}, max_depth=1)["flattened_data"] == {"n": "2"}
    assert flatten(emits, {"data": {"n": 2}}, max_depth=0)["flattened_data"] == {"value": "{'n': 2}"}


def test_a_cycle_is_marked_once(emits):
    """A container found inside itself is stored as [Circular Reference]."""
    loop: dict = {"a": 1}
    loop["again"] = loop
    assert flatten(emits, {"data": loop})["flattened_data"] == {"a": 1, "again": "[Circular Reference]"}


def leaves(value, path=()):
    """Every (path, leaf) of a value made of non-empty dicts and lists."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, (*path, str(i)))
    else:
        yield path, value


def test_serializable_objects_are_flattened_through_serialize(emits):
    """A routilux Serializable (here an ErrorHandler) is flattened as its serialize() dict."""
    handler = ErrorHandler(strategy="retry", max_retries=2)
    out = flatten(emits, {"data": {"handler": handler}})
    expected = {".".join(("handler", *path)): leaf for path, leaf in leaves(handler.serialize())}
    assert out["flattened_data"] == expected and out["original_type"] == "dict"


def test_several_keys_flatten_the_received_dict(emits):
    """Without a ``data`` key and with several keys, the received dict is flattened."""
    assert flatten(emits, {"x": 1, "y": {"z": 2}})["flattened_data"] == {"x": 1, "y.z": 2}


json_leaves = st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=3)
nested_data = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, min_size=1, max_size=3)
    | st.dictionaries(st.text(alphabet="abc", min_size=1, max_size=2), inner, min_size=1, max_size=3),
    max_leaves=12,
)


@given(nested_data.filter(lambda v: v is not None))  # {"data": None} means no input at all
def test_every_leaf_is_kept_under_its_joined_path(value):
    """Property: the flat dict holds exactly the leaves, each under its path joined with '/'."""
    flattener = DataFlattener()
    flattener.set_config(separator="/")
    out = []
    flattener.emit = lambda name, flow=None, **data: out.append(data)  # type: ignore[method-assign]
    send(flattener, {"data": value})
    expected = {"/".join(path) or "value": leaf for path, leaf in leaves(value)}
    assert out[0]["flattened_data"] == expected
    assert out[0]["depth"] == max(len(path) for path, _ in leaves(value))


def test_in_a_flow_the_emits_are_recorded_and_replay():
    """Through a real flow: the outputs reach the sink and the history, and replay."""
    _, job, got = run_flow(DataFlattener(), [{"data": NESTED}, {"data": [7]}])
    assert job.status == "completed"
    assert [r["flattened_data"] for r in got["output"]] == [{"a.b": 1, "a.c.0": 2, "a.c.1": 3, "d": "x"}, {"0": 7}]
    assert history(job) == [("output", r) for r in got["output"]]
    assert_replays(job)


def test_in_a_flow_a_bad_configuration_is_recorded_as_an_error():
    """A max_depth that is not a number fails each input; the flow records the error and goes on."""
    flattener = DataFlattener()
    flattener.set_config(max_depth=None)
    _, job, got = run_flow(flattener, [{"data": NESTED}])
    assert got["output"] == []
    ((name, data),) = history(job)
    assert name == "error" and data["error_type"] == "TypeError" and data["slot"] == "input"
    assert_replays(job)


@pytest.mark.parametrize("separator", [".", "::"])
def test_in_a_flow_the_separator_applies(separator):
    """The configuration reaches the flow run unchanged."""
    flattener = DataFlattener()
    flattener.set_config(separator=separator)
    _, job, got = run_flow(flattener, [{"data": {"a": {"b": 1}}}])
    assert got["output"][0]["flattened_data"] == {f"a{separator}b": 1}
    assert_replays(job)
