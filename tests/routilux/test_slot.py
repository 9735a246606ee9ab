"""Slot: merge strategies, handler dispatch, wiring and error swallowing (ROUTILUX_API.md §2)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routilux import Event, Routine, Slot

keys = st.text("abcxyz", min_size=1, max_size=3)


def test_override_replaces_data_and_passes_a_copy() -> None:
    """override: _data becomes the new dict and the handler gets the same keys."""
    got: list[Any] = []
    slot = Slot("s", handler=lambda data: got.append(data))
    slot.receive({"a": 1})
    slot.receive({"b": 2})
    assert slot._data == {"b": 2}
    assert got == [{"a": 1}, {"b": 2}]


def test_unknown_string_strategy_behaves_as_override() -> None:
    """Any other string merge strategy behaves like override."""
    slot = Slot("s", handler=lambda data: None, merge_strategy="whatever")
    slot.receive({"a": 1})
    slot.receive({"b": 2})
    assert slot._data == {"b": 2}


def test_append_accumulates_and_handler_sees_only_incoming_keys_live() -> None:
    """append: lists per key; the handler gets only incoming keys bound to the live lists."""
    seen: list[dict[str, Any]] = []
    slot = Slot("s", handler=lambda data: seen.append(data), merge_strategy="append")
    slot._data = {"a": 0}
    slot.receive({"a": 1})
    slot.receive({"b": 2})
    slot.receive({"a": 3})
    assert slot._data == {"a": [0, 1, 3], "b": [2]}
    assert set(seen[1]) == {"b"}
    assert seen[0]["a"] is slot._data["a"]  # same list object: later appends visible
    assert seen[0]["a"] == [0, 1, 3]


@given(st.lists(st.dictionaries(keys, st.integers(), max_size=3), max_size=8))
def test_append_keeps_every_value_in_order(batches: list[dict[str, int]]) -> None:
    """append: each key's list holds every value received for it, in order."""
    slot = Slot("s", merge_strategy="append")
    for b in batches:
        slot.receive(b)
    expected: dict[str, list[int]] = {}
    for b in batches:
        for k, v in b.items():
            expected.setdefault(k, []).append(v)
    assert slot._data == expected


def test_callable_strategy_result_becomes_data() -> None:
    """A callable strategy f(old, new) decides the merged data."""
    got: list[Any] = []

    def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        return {"total": old.get("total", 0) + new["n"]}

    slot = Slot("s", handler=lambda data: got.append(data), merge_strategy=merge)
    slot.receive({"n": 2})
    slot.receive({"n": 5})
    assert slot._data == {"total": 7}
    assert got[-1] == {"total": 7}


def test_dispatch_kwargs_handler_gets_keywords() -> None:
    """A handler with **kwargs is called with the merged keys as keywords."""
    got: list[Any] = []
    Slot("s", handler=lambda **kw: got.append(kw)).receive({"x": 1, "y": 2})
    assert got == [{"x": 1, "y": 2}]


def test_dispatch_single_named_parameter() -> None:
    """One parameter named like a key gets that value, else the whole dict."""
    got: list[Any] = []
    slot = Slot("s", handler=lambda value: got.append(value))
    slot.receive({"value": 5, "other": 1})
    slot.receive({"other": 1})
    assert got == [5, {"other": 1}]


def test_dispatch_several_parameters_match_keys_or_get_dict() -> None:
    """Several parameters: keywords for matching keys, else the dict positionally."""
    got: list[Any] = []

    def handler(a: Any = None, b: Any = None) -> None:
        got.append((a, b))

    slot = Slot("s", handler=handler)
    slot.receive({"b": 2, "zzz": 0})
    slot.receive({"q": 1})
    assert got == [(None, 2), ({"q": 1}, None)]


def test_dispatch_bound_method_data_parameter() -> None:
    """A method with one parameter named data receives the whole dict."""

    class R(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.got: list[Any] = []
            self.define_slot("in", self.on)

        def on(self, data: Any) -> None:
            self.got.append(data)

    r = R()
    r.get_slot("in").receive({"data": 1, "x": 2})  # type: ignore[union-attr]
    assert r.got == [{"data": 1, "x": 2}]


def test_receive_swallows_handler_errors() -> None:
    """Slot.receive never raises; the slot keeps working afterwards."""
    calls: list[int] = []

    def bad(x: int) -> None:
        calls.append(x)
        if x == 1:
            raise RuntimeError("boom")

    slot = Slot("s", handler=bad)
    slot.receive({"x": 1})
    slot.receive({"x": 2})
    assert calls == [1, 2]


def test_call_handler_propagates_only_when_asked() -> None:
    """call_handler raises the handler's error only with propagate_exceptions=True."""

    def bad(data: Any) -> None:
        raise KeyError("k")

    slot = Slot("s", handler=bad)
    slot.call_handler({"a": 1})
    with pytest.raises(KeyError):
        slot.call_handler({"a": 1}, propagate_exceptions=True)


def test_connect_disconnect_is_symmetric_without_duplicates() -> None:
    """connect/disconnect keep both sides in step and never duplicate."""
    slot, event = Slot("s"), Event("e")
    slot.connect(event)
    slot.connect(event)
    event.connect(slot)
    assert slot.connected_events == [event] and event.connected_slots == [slot]
    event.disconnect(slot)
    assert slot.connected_events == [] and event.connected_slots == []


def test_repr_names_routine_and_slot() -> None:
    """repr is Slot[<routine _id>.<name>]."""
    r = Routine()
    slot = r.define_slot("in")
    assert repr(slot) == f"Slot[{r._id}.in]"
