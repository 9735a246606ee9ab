"""The --where condition language: parses without eval, errors point at the bad token."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay_tools.condition import parse_condition
from replay_tools.errors import ConditionSyntaxError, FieldPathError
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
    ("shared_data.code == 007", True),
    ("shared_data.code == 7", False),
    ("shared_data.flag == 1", False),
    ("shared_data.flag == true", True),
    ("len(shared_data.items) == 3", True),
    ("len(execution_history) > 1 and execution_history.-1.event_name == out", True),
    ("shared_data.code > 5", False),
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
    ("__import__('os').system('true')", 11, "("),
    ("status in", 10, ""),
])
def test_syntax_errors_point_at_the_bad_token(text: str, column: int, token: str) -> None:
    """A bad condition raises ConditionSyntaxError with the column and token of the problem."""
    with pytest.raises(ConditionSyntaxError) as info:
        parse_condition(text)
    assert (info.value.column, info.value.token) == (column, token)
    assert f"column {column}" in str(info.value)


@given(st.text(max_size=40))
def test_any_text_parses_or_raises_a_syntax_error(text: str) -> None:
    """No input makes the parser fail any other way (and nothing is ever executed)."""
    try:
        cond = parse_condition(text)
    except ConditionSyntaxError:
        return
    assert cond(STATE) in (True, False)


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
