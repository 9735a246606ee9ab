"""The --where condition language: typed, parsed without eval, errors point at the bad token."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay_tools.condition import parse_condition, parse_event_condition
from replay_tools.errors import ConditionSyntaxError, ConditionTypeError, FieldPathError, UnknownFieldError
from replay_tools.paths import MISSING, parse_path, resolve

STATE = {
    "status": "paused",
    "shared_data": {"limit": 0, "a.b": "dotted", "code": "007", "flag": True, "items": [1, 2, 3]},
    "routine_states": {"fetch": {"status": "failed"}},
    "execution_history": [{"event_name": "start"}, {"event_name": "out"}],
}


@pytest.mark.parametrize(("text", "expected"), [
    ("shared_data.limit == 0", True),
    ("shared_data.limit = 0", True),
    ("routine_states.fetch.status in failed,error", True),
    ("routine_states.fetch.status not in failed, error", False),
    ("status == paused", True),
    ("status != paused", False),
    ("shared_data.limit < 1 and shared_data.limit >= 0", True),
    ("shared_data.missing == 0", False),
    ("shared_data.missing != 0", True),
    ("shared_data.missing missing", True),
    ("shared_data.limit exists", True),
    ('shared_data."a.b" == dotted', True),
    ("shared_data.code == '007'", True),
    ('shared_data.code == "7"', False),
    ("shared_data.flag == true", True),
    ("shared_data.limit in [0, 1]", True),
    ("shared_data.limit in [1, 2]", False),
    ("shared_data.limit in {0}", True),
    ("shared_data.limit in (5, 0)", True),
    ("shared_data.limit in []", False),
    ("shared_data.limit not in [1, 2]", True),
    ("routine_states.fetch.status in [failed, 'error']", True),
    ("shared_data.limit == null", False),
    ("shared_data.limit != null", True),
    ("shared_data.limit == 0.0", True),
    ("shared_data.items == null", False),
    ("len(shared_data.items) == 3", True),
    ("len(execution_history) > 1 and execution_history.-1.event_name == out", True),
    ("shared_data.code > '006'", True),
    ("not (status == running or status == completed)", True),
    ("shared_data.limit", False),
    ("shared_data.flag", True),
])
def test_conditions_evaluate_on_a_state(text: str, expected: bool) -> None:
    """Each documented form evaluates as described in the module docstring."""
    assert parse_condition(text)(STATE) is expected


@pytest.mark.parametrize(("text", "column", "token"), [
    ("shared_data.limit ==", 21, ""),
    ("shared_data.limit === 0", 21, "="),
    ("status == paused extra", 18, "extra"),
    ("(status == paused", 18, ""),
    ("status ~ 3", 8, "~"),
    ("a..b == 1", 3, "a..b"),
    ("__import__('os').system('true')", 1, "__import__"),
    ("status in [a, b", 16, ""),
    ("status in [a b]", 14, "b"),
    ("status in", 10, ""),
])
def test_syntax_errors_point_at_the_bad_token(text: str, column: int, token: str) -> None:
    """A bad condition raises ConditionSyntaxError with the column and token of the problem."""
    with pytest.raises(ConditionSyntaxError) as info:
        parse_condition(text)
    assert (info.value.column, info.value.token) == (column, token)
    assert f"column {column}" in str(info.value)


@pytest.mark.parametrize(("text", "column", "message"), [
    # A number compared with text is an error pointing at the number, with a hint to quote it.
    ("shared_data.code == 007", 21, "cannot compare shared_data.code (text: 007) with 007 (number); "
                                    "quote it to compare text: '007'"),
    ("shared_data.limit > abc", 21, "cannot order shared_data.limit (number: 0) with abc (text)"),
    ("shared_data.flag == 1", 21, "cannot compare shared_data.flag (bool: true) with 1 (number)"),
    ("shared_data.items == 3", 22, "cannot compare shared_data.items (list: [1, 2, 3]) with 3 (number); "
                                   "use len(shared_data.items) or a path into it"),
    ("shared_data.limit in [a, b]", 22, "shared_data.limit is number (0) and the list holds text values"),
    ("status > 3", 10, "cannot order status (text: paused) with 3 (number)"),
    ("shared_data.flag > false", 20, "false (bool) has no order: use == or != with it"),
    ("len(status) == paused", 16, "cannot compare len(status) (number: 6) with paused (text)"),
])
def test_type_mismatches_are_errors_pointing_at_the_value(text: str, column: int, message: str) -> None:
    """Numbers and text are compared only as the same type; a mismatch names both sides."""
    with pytest.raises(ConditionTypeError) as info:
        parse_condition(text)(STATE)
    assert info.value.column == column
    assert message in str(info.value)


def test_a_type_mismatch_names_the_version() -> None:
    """Evaluated at a version, the error says at which one the field held the other type."""
    with pytest.raises(ConditionTypeError) as info:
        parse_condition("shared_data.limit > abc").evaluate(STATE, 8)
    assert info.value.version == 8 and "at version 8" in str(info.value)


@pytest.mark.parametrize(("text", "nearest"), [
    ("stauts == paused", ("status",)),
    ("shared == 1", ("shared_log", "shared_data")),
    ("nothing_like_it == 1", ()),
])
def test_unknown_top_level_fields_name_the_nearest(text: str, nearest: tuple[str, ...]) -> None:
    """A top-level field no job state has is refused at parse time, with the nearest names."""
    with pytest.raises(UnknownFieldError) as info:
        parse_condition(text)
    assert info.value.nearest == nearest and info.value.column == 1


def test_unknown_deeper_fields_are_found_against_a_state() -> None:
    """check_known: a field never seen and absent from the given state is an error naming its siblings."""
    cond = parse_condition("shared_data.limt == 0 or shared_data.gone missing")
    with pytest.raises(UnknownFieldError) as info:
        cond.check_known(set(), known_at=STATE)
    assert "did you mean shared_data.limit?" in str(info.value) and info.value.column == 1
    cond.check_known({parse_path("shared_data.limt")}, known_at=STATE)  # seen at some version: fine


def test_event_conditions_know_the_payload_fields() -> None:
    """events --where: event fields and payload keys of some kind are accepted; others are refused."""
    cond = parse_event_condition("kind == shared_data_set and data.key == limit and version > 3")
    assert cond({"kind": "shared_data_set", "version": 4, "data": {"key": "limit", "value": 0}})
    with pytest.raises(UnknownFieldError) as info:
        parse_event_condition("data.kee == limit")
    assert "data.key" in str(info.value)
    with pytest.raises(UnknownFieldError):
        parse_event_condition("versoin > 3")


@given(st.text(max_size=40))
def test_any_text_parses_or_raises_a_syntax_error(text: str) -> None:
    """No input makes the parser fail any other way (and nothing is ever executed)."""
    try:
        cond = parse_condition(text)
    except ConditionSyntaxError:
        return
    try:
        assert cond(STATE) in (True, False)
    except ConditionTypeError:
        pass


def test_paths_resolve_on_mappings_lists_and_attributes() -> None:
    """Paths index dicts by key, lists by (negative) index, objects by public attribute."""

    class Obj:
        status = "ok"
        _private = "hidden"

    assert resolve(STATE, parse_path("execution_history.-2.event_name")) == "start"
    assert resolve(STATE, parse_path("execution_history.5")) is MISSING
    assert resolve(Obj(), parse_path("status")) == "ok"
    assert resolve(Obj(), parse_path("_private")) is MISSING
    assert str(parse_path('shared_data."a.b"')) == 'shared_data."a.b"'
    with pytest.raises(FieldPathError):
        parse_path('shared_data."open')
