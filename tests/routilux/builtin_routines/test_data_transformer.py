"""DataTransformer: built-in and custom transformations, errors, serialization, a real flow."""

from __future__ import annotations

import json

import pytest
from builtin_support import assert_replays, history, run_flow, send

from routilux import Flow
from routilux.builtin_routines import DataTransformer
from routilux.builtin_routines.data_processing.data_transformer import BUILTIN_TRANSFORMATIONS
from routilux.builtin_routines.errors import CallableSerializationError


def double(value):
    """A module-level transformation (serializable by reference)."""
    return value * 2


def transform(emits, payload, **config):
    transformer = DataTransformer()
    transformer.set_config(**config)
    out = emits(transformer)
    send(transformer, payload)
    assert [name for name, _ in out] == ["output"]
    return out[0][1]


def test_defaults_slots_and_events():
    """0.10's configuration (the built-ins live in transformation_map), slot and event."""
    transformer = DataTransformer()
    assert transformer.get_config("transformations") == []
    assert transformer.get_config("chain_transformations") is True
    assert sorted(transformer.get_config("transformation_map")) == sorted(
        ["lowercase", "uppercase", "strip_whitespace", "to_string", "to_int", "to_float", "remove_none"])
    assert transformer.output_event.output_params == ["transformed_data", "transformation_applied", "errors"]
    assert transformer.get_config("transformation_map") is not DataTransformer().get_config("transformation_map")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("lowercase", "MiXed", "mixed"), ("lowercase", 5, 5),
        ("uppercase", "MiXed", "MIXED"), ("uppercase", ["a"], ["a"]),
        ("strip_whitespace", "  pad \n", "pad"), ("strip_whitespace", 1.5, 1.5),
        ("to_string", [1], "[1]"),
        ("to_int", "42", 42), ("to_int", 3.9, 3), ("to_int", True, 1), ("to_int", [1], [1]),
        ("to_float", "2.5", 2.5), ("to_float", 2, 2.0), ("to_float", None, None),
        ("remove_none", {"a": None, "b": 0}, {"b": 0}), ("remove_none", [None], [None]),
    ],
)
def test_builtin_transformations(name, value, expected):
    """Each built-in: what it changes, and which values it leaves alone."""
    result = BUILTIN_TRANSFORMATIONS[name](value)
    assert result == expected and type(result) is type(expected)


def test_transformations_chain_in_order(emits):
    """The configured transformations run one after the other; no errors gives errors=None."""
    out = transform(emits, {"data": "  Hello World  "}, transformations=["strip_whitespace", "uppercase"])
    assert out == {"transformed_data": "HELLO WORLD", "transformation_applied": ["strip_whitespace", "uppercase"],
                   "errors": None}
    assert transform(emits, {"data": "x"}) == {"transformed_data": "x", "transformation_applied": [], "errors": None}


def test_errors_are_collected_and_the_chain_goes_on(emits):
    """Unknown names, invalid entries and failing transformations are reported, not raised."""
    out = transform(emits, {"data": "abc"}, transformations=["to_int", "nope", 42, "uppercase", "strip"])
    assert out["transformed_data"] == "ABC"
    assert out["transformation_applied"] == ["uppercase"]
    assert out["errors"] == [
        "Error applying to_int: invalid literal for int() with base 10: 'abc'",
        "Unknown transformation: nope",
        "Invalid transformation: 42",
        "Unknown transformation: strip",  # the 0.10 docs list "strip"; the name is strip_whitespace
    ]


def test_functions_in_the_chain(emits):
    """A function is applied directly and reported by its __name__ ('custom' without one)."""

    class Callable:
        def __call__(self, value):
            return value + "!"

    out = transform(emits, {"data": "ab"}, transformations=[double, str.upper, Callable()])
    assert out["transformed_data"] == "ABAB!"
    assert out["transformation_applied"] == ["double", "upper", "custom"]
    failing = transform(emits, {"data": 1}, transformations=[str.upper])
    assert failing["errors"][0].startswith("Error applying <method 'upper' of 'str' objects>: ")


def test_register_transformation_adds_to_the_map(emits):
    """register_transformation makes a name usable next to the built-ins."""
    transformer = DataTransformer()
    transformer.register_transformation("double", double)
    transformer.set_config(transformations=["double", "uppercase"])
    out = emits(transformer)
    send(transformer, {"data": "ab"})
    assert out[0][1]["transformed_data"] == "ABAB"


def test_setting_the_map_replaces_the_builtins(emits):
    """set_config(transformation_map=...) replaces the whole map, built-ins included (0.10)."""
    out = transform(emits, {"data": "Ab"}, transformation_map={"double": double},
                    transformations=["double", "lowercase"])
    assert out["transformed_data"] == "AbAb" and out["errors"] == ["Unknown transformation: lowercase"]


def test_transformations_in_the_input_override_the_config(emits):
    """A non-empty ``transformations`` list in the input replaces the configured one."""
    config = {"transformations": ["uppercase"]}
    assert transform(emits, {"data": "a ", "transformations": ["strip_whitespace"]}, **config)["transformed_data"] == "a"
    assert transform(emits, {"data": "a", "transformations": []}, **config)["transformed_data"] == "A"


def test_a_flow_with_transformers_serializes_and_comes_back(emits):
    """Flow.serialize -> JSON -> Flow.deserialize keeps built-in, registered and lambda transformations."""
    flow = Flow(flow_id="t")
    transformer = DataTransformer()
    transformer.register_transformation("double", double)
    transformer.set_config(transformations=["strip_whitespace", "double", lambda v: v + "?", str.upper])
    flow.add_routine(transformer, "t")
    copy = Flow()
    copy.deserialize(json.loads(json.dumps(flow.serialize())))
    again = copy.routines["t"]
    assert again.get_config("transformation_map")["double"] is double
    out = emits(again)
    send(again, {"data": " ab "})
    assert out[0][1]["transformed_data"] == "ABAB?"
    assert out[0][1]["transformation_applied"] == ["strip_whitespace", "double", "<lambda>", "upper"]


def test_a_closure_cannot_be_serialized():
    """A lambda that captures a variable is refused with the place of the problem in the message."""
    suffix = "!"
    transformer = DataTransformer()
    transformer.set_config(transformations=[lambda v: v + suffix])
    with pytest.raises(CallableSerializationError, match=r"_config\['transformations'\]\[0\].*suffix") as caught:
        transformer.serialize()
    assert caught.value.path == "_config['transformations'][0]"


def test_in_a_flow_the_emits_are_recorded_and_replay():
    """Through a real flow: results reach the sink and the history, errors included; replay."""
    transformer = DataTransformer()
    transformer.set_config(transformations=["strip_whitespace", "to_int"])
    _, job, got = run_flow(transformer, [{"data": " 12 "}, {"data": "x"}])
    assert job.status == "completed"
    assert got["output"] == [
        {"transformed_data": 12, "transformation_applied": ["strip_whitespace", "to_int"], "errors": None},
        {"transformed_data": "x", "transformation_applied": ["strip_whitespace"],
         "errors": ["Error applying to_int: invalid literal for int() with base 10: 'x'"]},
    ]
    assert history(job) == [("output", r) for r in got["output"]]
    assert_replays(job)
