"""Builtin routines in serialized flows: ours round-trip, 0.10's flow dicts load, callables by reference."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from builtin_support import send

import routilux.builtin_routines as builtins_package
from routilux import Flow
from routilux.builtin_routines import ConditionalRouter, DataTransformer, DataValidator
from routilux.builtin_routines.errors import CallableSerializationError
from routilux.builtin_routines.utils import time_provider

FIXTURE = Path(__file__).parent / "fixtures" / "flow_010.json"
THRESHOLD = 10


def outputs(routine, payloads, as_json=True):
    """What ``routine`` emits for each payload (as JSON-shaped lists, unless ``as_json`` is off)."""
    emitted = []
    routine.emit = lambda name, flow=None, **kw: emitted.append([name, kw])
    result = []
    for payload in payloads:
        del emitted[:]
        send(routine, payload)
        result.append(json.loads(json.dumps(emitted)) if as_json else list(emitted))
    return result


def test_flow_dicts_written_by_routilux_010_load_and_behave_the_same(monkeypatch):
    """Each routine of a 0.10 flow dict (fixture) loads here and emits what the live 0.10 routine did."""
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    frozen = datetime.fromisoformat(fixture["frozen_clock"])
    monkeypatch.setattr(time_provider, "_now", lambda: frozen)
    routines = fixture["flow"]["routines"]
    assert sorted(rd["_type"] for rd in routines.values()) == sorted(builtins_package.__all__)
    for rid, data in routines.items():
        routine = getattr(builtins_package, data["_type"])()
        routine.deserialize(data)
        assert routine._id == data["_id"]
        expected = fixture["outputs"][rid]
        if rid == "clock":  # the Unix time of the frozen local time depends on the machine's zone
            for (_, emitted), *_ in expected:
                emitted["timestamp"] = frozen.timestamp()
        assert outputs(routine, fixture["inputs"][rid]) == expected, rid


def test_a_flow_of_every_builtin_round_trips_through_json(monkeypatch):
    """Our own flow dicts: serialize -> JSON -> deserialize gives routines that emit the same."""
    monkeypatch.setattr(time_provider, "_now", lambda: datetime(2026, 1, 2, 3, 4, 5))
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    flow = Flow(flow_id="all-eight")
    for rid, data in fixture["flow"]["routines"].items():
        routine = getattr(builtins_package, data["_type"])()
        routine.deserialize(data)
        flow.add_routine(routine, rid)
    flow.connect("renderer", "output", "clipper", "input")
    copy = Flow()
    copy.deserialize(json.loads(json.dumps(flow.serialize())))
    assert sorted(copy.routines) == sorted(flow.routines) and len(copy.connections) == 1
    for rid, payloads in fixture["inputs"].items():
        assert copy.routines[rid].config().keys() == flow.routines[rid].config().keys()
        assert outputs(copy.routines[rid], payloads) == outputs(flow.routines[rid], payloads), rid


def is_high(data):
    """A module-level condition."""
    return data.get("priority") == "high"


def test_conditions_of_every_kind_round_trip():
    """Strings, dicts (with functions inside), module functions, builtins and lambdas come back."""
    router = ConditionalRouter()
    router.set_config(routes=[
        ("s", "data.get('n') == 1"), ("d", {"n": lambda n: n == 2}), ("f", is_high), ("b", callable),
        ("a", lambda v: v.get("n") == 3), ("c", lambda v: v.get("n") == 4),  # two lambdas on one line
    ], route_priority="all")
    written = router.serialize()["_config"]["routes"]
    assert written[4] == ["a", {"_type": "lambda_expression", "expression": "data.get('n') == 3"}]
    assert written[5] == ["c", {"_type": "lambda_expression", "expression": "data.get('n') == 4"}]
    assert written[2] == ["f", {"_type": "callable", "callable_type": "function", "module": __name__, "name": "is_high"}]
    again = ConditionalRouter()
    again.deserialize(json.loads(json.dumps(router.serialize())))
    for data, names in [({"n": 1}, ["s"]), ({"n": 2}, ["d"]), ({"priority": "high"}, ["f"]), ({"n": 3}, ["a"]),
                        ({"n": 4}, ["c"])]:
        assert [name for name, _ in outputs(again, [{"data": data}])[0]] == names
    assert [name for name, _ in outputs(again, [{"data": len}], as_json=False)[0]] == ["b"]


def test_lambdas_with_comprehensions_and_inner_lambdas_round_trip():
    """Nested code (a comprehension, an inner lambda) is found too, in a module with __future__ imports."""
    router = ConditionalRouter()
    router.set_config(routes=[("c", lambda d: [v for v in d if v] == d), ("n", lambda d: (lambda z: z)(d) == [0])],
                      route_priority="all")
    written = [condition["expression"] for _, condition in router.serialize()["_config"]["routes"]]
    assert written == ["[v for v in data if v] == data", "(lambda z: z)(data) == [0]"]
    again = ConditionalRouter()
    again.deserialize(router.serialize())
    assert [name for name, _ in outputs(again, [{"data": [1, 2]}, {"data": [0]}])[0]] == ["c"]
    assert [name for name, _ in outputs(again, [{"data": [0]}])[0]] == ["n"]


def test_methods_of_the_routine_itself_round_trip():
    """A condition that is a method of the router (a subclass) is written by name and found again."""

    class MyRouter(ConditionalRouter):
        def is_even(self, data):
            return data % 2 == 0

    router = MyRouter()
    router.set_config(routes=[("even", router.is_even)])
    written = router.serialize()["_config"]["routes"][0][1]
    assert written["callable_type"] == "method" and written["method_name"] == "is_even"
    again = MyRouter()
    again.deserialize(router.serialize())
    assert again.get_config("routes")[0][1] == again.is_even


@pytest.mark.parametrize(
    ("condition", "complaint"),
    [
        (lambda data: data > THRESHOLD, "THRESHOLD"),  # a global name the expression could not see
        (lambda data, limit=3: data > limit, "exactly one parameter"),
        (DataValidator()._check, "belongs to another object"),
    ],
)
def test_conditions_that_cannot_be_written_are_refused(condition, complaint):
    """Each refusal names the place in the configuration and what is wrong."""
    router = ConditionalRouter()
    router.set_config(routes=[("r", condition)])
    with pytest.raises(CallableSerializationError, match=complaint) as caught:
        router.serialize()
    assert caught.value.path == "_config['routes'][0][1]" and str(caught.value).startswith("_config['routes'][0][1]")


def test_closures_nested_functions_and_unsourced_lambdas_are_refused():
    """Closures, nested functions and lambdas without source cannot be written."""
    limit = 3

    def nested(data):
        return data > 1

    unsourced = eval("lambda data: data > 1")  # noqa: S307 - a lambda with no source file
    for condition, complaint in [(lambda data: data > limit, "closure variable"), (nested, "cannot be found again"),
                                 (unsourced, "source")]:
        router = ConditionalRouter()
        router.set_config(routes=[("r", condition)])
        with pytest.raises(CallableSerializationError, match=complaint):
            router.serialize()


def test_lambda_expressions_written_by_010_are_read_as_names_not_text():
    """0.10 kept the lambda's own parameter name; it becomes ``data``, but never inside strings."""
    router = ConditionalRouter()
    written = {"_type": "lambda_expression", "expression": "x.get('value') == 'x'  # a trailing comment"}
    router.deserialize({"_config": {"routes": [["hit", written]]}})
    assert [name for name, _ in outputs(router, [{"data": {"value": "x"}}])[0]] == ["hit"]
    # Written again, it keeps the expression (there is no source file to read it from).
    assert router.serialize()["_config"]["routes"][0][1] == {
        "_type": "lambda_expression", "expression": "data.get('value') == 'x'"}


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ({"_type": "lambda_expression", "expression": "data.get("}, "cannot restore the lambda expression"),
        ({"_type": "lambda_expression"}, "missing or empty"),
        ({"_type": "callable", "callable_type": "function", "module": "no_such_module", "name": "f"},
         "no_such_module.f"),
        ({"_type": "callable", "callable_type": "function", "module": "__main__", "name": "<lambda>"}, "<lambda>"),
        ({"_type": "callable", "callable_type": "method", "class_name": "Other", "method_name": "x"}, "method"),
    ],
)
def test_entries_that_cannot_be_read_are_errors(entry, complaint):
    """A condition that cannot be restored is a clear error naming it, never a silent None."""
    router = ConditionalRouter()
    with pytest.raises(CallableSerializationError, match=complaint) as caught:
        router.deserialize({"_config": {"routes": [["r", entry]]}})
    assert caught.value.path == "_config['routes'][0][1]"


def test_010_builtin_transformations_are_read_as_ours():
    """0.10 wrote its built-in transformations as unnamed lambdas of this module: they map to ours."""
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    data = fixture["flow"]["routines"]["transformer"]
    assert data["_config"]["transformation_map"]["lowercase"]["name"] == "<lambda>"
    transformer = DataTransformer()
    transformer.deserialize(data)
    assert transformer.get_config("transformation_map") == DataTransformer().get_config("transformation_map")
