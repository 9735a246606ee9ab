"""DataValidator: rules, required and extra fields, strict mode, lists, values, a real flow."""

from __future__ import annotations

import json

import pytest
from builtin_support import assert_replays, history, run_flow, send

from routilux import Flow
from routilux.builtin_routines import DataValidator
from routilux.builtin_routines.data_processing.data_validator import BUILTIN_VALIDATORS

PERSON_RULES = {"name": "not_empty", "age": "is_positive"}


def validate(emits, payload, **config):
    validator = DataValidator()
    validator.set_config(**config)
    out = emits(validator)
    send(validator, payload)
    assert len(out) == 1
    return out[0]


def test_defaults_slots_and_events():
    """0.10's configuration, slot ``input``, events ``valid`` and ``invalid``."""
    validator = DataValidator()
    assert validator.config() == {"rules": {}, "strict_mode": False, "required_fields": [], "allow_extra_fields": True}
    assert validator.valid_event.output_params == ["validated_data"]
    assert validator.invalid_event.output_params == ["errors", "data"]
    assert sorted(validator._builtin_validators) == sorted(BUILTIN_VALIDATORS)


@pytest.mark.parametrize(
    ("name", "passes", "fails"),
    [
        ("not_empty", [0, [], "x", False], [None, ""]),
        ("is_string", ["", "s"], [1, None]),
        ("is_int", [1, True], [1.0, "1"]),
        ("is_float", [1.0], [1, "1.0"]),
        ("is_number", [1, 2.5], ["1", None]),
        ("is_dict", [{}], [[]]),
        ("is_list", [[]], [(), {}]),
        ("is_positive", [1, 0.5, True], [0, -1, "5"]),
        ("is_non_negative", [0, 3], [-0.1, "0"]),
    ],
)
def test_builtin_validators(name, passes, fails):
    """Each built-in validator on values it accepts and values it rejects."""
    check = BUILTIN_VALIDATORS[name]
    assert all(check(v) for v in passes) and not any(check(v) for v in fails)


def test_a_valid_dict_goes_to_valid(emits):
    """A dict that passes every rule and has the required fields is emitted on ``valid``."""
    data = {"name": "Bob", "age": 30, "extra": "kept"}
    assert validate(emits, {"data": data}, rules=PERSON_RULES, required_fields=["name", "age"]) == (
        "valid", {"validated_data": data})


def test_an_invalid_dict_goes_to_invalid_with_every_problem(emits):
    """Missing required fields come first, then failing rules in the order of the input's keys."""
    data = {"age": -1, "name": ""}
    assert validate(emits, {"data": data}, rules=PERSON_RULES, required_fields=["name", "id", "age", "zip"]) == (
        "invalid", {"errors": ["Required field 'id' is missing", "Required field 'zip' is missing",
                               "Field 'age' failed validation", "Field 'name' failed validation"], "data": data})


def test_extra_fields_can_be_refused(emits):
    """allow_extra_fields=False reports every field without a rule."""
    _, out = validate(emits, {"data": {"name": "a", "x": 1, "y": 2}}, rules={"name": "is_string"},
                      allow_extra_fields=False)
    assert out["errors"] == ["Unexpected field 'x'", "Unexpected field 'y'"]


def test_strict_mode_stops_each_check_at_its_first_error(emits):
    """strict_mode: one missing field at most, and one field problem at most (both checks run)."""
    _, out = validate(emits, {"data": {"a": 1, "b": 2, "c": 3}}, rules={"b": "is_string"},
                      required_fields=["x", "y"], allow_extra_fields=False, strict_mode=True)
    assert out["errors"] == ["Required field 'x' is missing", "Unexpected field 'a'"]


def test_rules_that_are_functions(emits):
    """A function may return a bool, a (bool, message) pair, or anything truthy; raising is an error."""
    rules = {
        "a": lambda v: (v > 0, f"a must be positive, got {v}"),
        "b": lambda v: v,  # truthiness
        "c": lambda v: 1 / v,
        "d": lambda v: (False, None),  # the rule's own message, even None
        "e": lambda v: (True, "ignored"),
    }
    _, out = validate(emits, {"data": {"a": -1, "b": 0, "c": 0, "d": 1, "e": 1}}, rules=rules)
    assert out["errors"] == ["a must be positive, got -1", "Field 'b' failed validation",
                             "Validation error for field 'c': division by zero", None]
    assert validate(emits, {"data": {"a": 1, "b": 1, "c": 1, "e": 0}}, rules=rules)[0] == "valid"


def test_unknown_and_invalid_rules(emits):
    """A rule name nobody registered, or a rule that is neither a name nor a function, is an error."""
    _, out = validate(emits, {"data": {"a": 1, "b": 2}}, rules={"a": "is_prime", "b": 42})
    assert out["errors"] == ["Unknown validator: is_prime", "Invalid validator for field 'b'"]


def test_register_validator(emits):
    """A registered validator is usable by name on that instance."""
    validator = DataValidator()
    validator.register_validator("even", lambda v: v % 2 == 0)
    validator.set_config(rules={"n": "even"})
    out = emits(validator)
    send(validator, {"data": {"n": 3}})
    send(validator, {"data": {"n": 4}})
    assert [name for name, _ in out] == ["invalid", "valid"]
    assert "even" not in DataValidator()._builtin_validators


def test_lists_are_checked_item_by_item(emits):
    """A list or tuple is checked with the rule 'items'; without it, anything passes."""
    _, out = validate(emits, {"data": [1, -2, "3"]}, rules={"items": "is_positive"})
    assert out["errors"] == ["Field 'items[1]' failed validation", "Field 'items[2]' failed validation"]
    _, strict = validate(emits, {"data": [1, -2, "3"]}, rules={"items": "is_positive"}, strict_mode=True)
    assert strict["errors"] == ["Field 'items[1]' failed validation"]
    assert validate(emits, {"data": [-1]}, rules={"value": "is_positive"})[0] == "valid"


def test_other_values_are_checked_with_the_value_rule(emits):
    """A value that is neither a dict nor a list is checked with the rule 'value'."""
    assert validate(emits, {"data": -5}, rules={"value": "is_positive"}) == (
        "invalid", {"errors": ["Field 'value' failed validation"], "data": -5})
    assert validate(emits, {"data": "anything"}, rules={"name": "is_int"})[0] == "valid"


def test_input_shapes_and_rule_override(emits):
    """Several keys validate the received dict; one key validates its value; ``rules`` overrides."""
    assert validate(emits, {"name": "Ann", "age": 0}, rules=PERSON_RULES)[1]["errors"] == ["Field 'age' failed validation"]
    # One key alone is the value itself (0.10's input rule): the string is checked as a value.
    assert validate(emits, {"name": "solo"}, rules={"value": "is_int"})[0] == "invalid"
    assert validate(emits, {"data": {"n": "x"}, "rules": {"n": "is_string"}}, rules={"n": "is_int"})[0] == "valid"


def test_a_flow_with_validators_serializes_and_comes_back(emits):
    """Rules that are lambdas or module-level functions survive serialize -> JSON -> deserialize."""
    flow = Flow(flow_id="v")
    validator = DataValidator()
    validator.set_config(rules={"age": lambda age: isinstance(age, int) and age > 17, "name": callable, "x": "is_int"})
    flow.add_routine(validator, "v")
    dumped = json.loads(json.dumps(flow.serialize()))
    assert dumped["routines"]["v"]["_config"]["rules"]["age"] == {
        "_type": "lambda_expression", "expression": "isinstance(data, int) and data > 17"}
    copy = Flow()
    copy.deserialize(dumped)
    out = emits(copy.routines["v"])
    send(copy.routines["v"], {"data": {"age": 12, "name": len, "x": 1}})
    assert out == [("invalid", {"errors": ["Field 'age' failed validation"], "data": {"age": 12, "name": len, "x": 1}})]


def test_in_a_flow_valid_and_invalid_reach_their_own_sinks_and_replay():
    """Through a real flow: each input reaches the sink of its event; the history replays."""
    validator = DataValidator()
    validator.set_config(rules=PERSON_RULES, required_fields=["name"])
    _, job, got = run_flow(validator, [{"data": {"name": "Bob", "age": 3}}, {"data": {"age": 3}}])
    assert job.status == "completed"
    assert got["valid"] == [{"validated_data": {"name": "Bob", "age": 3}}]
    assert got["invalid"] == [{"errors": ["Required field 'name' is missing"], "data": {"age": 3}}]
    assert [name for name, _ in history(job)] == ["valid", "invalid"]
    assert_replays(job)
