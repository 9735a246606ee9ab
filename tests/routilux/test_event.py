"""Event and Connection: legacy delivery and the parameter mapping (ROUTILUX_API.md §3)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from routilux import Connection, Event, Routine, Slot

small = st.dictionaries(st.sampled_from("abcxyz"), st.integers(), max_size=5)
mapping = st.dictionaries(st.sampled_from("abcxyz"), st.sampled_from("abcxyz"), max_size=3)


def test_mapping_keeps_source_keys_as_observed() -> None:
    """{"a": "x"} on {"a":1,"b":2,"x":9} gives {"x":1,"a":1,"b":2} (the original's behaviour)."""
    conn = Connection(param_mapping={"a": "x"})
    assert conn._apply_mapping({"a": 1, "b": 2, "x": 9}) == {"x": 1, "a": 1, "b": 2}


@given(small, mapping.filter(lambda m: len(set(m.values())) == len(m)))
def test_mapping_rules(data: dict[str, int], m: dict[str, str]) -> None:
    """Mapped keys take their source's value; keys that are not targets pass through unchanged."""
    out = Connection(param_mapping=m)._apply_mapping(data)
    for src, dst in m.items():
        if src in data:
            assert out[dst] == data[src]
    for key, value in data.items():
        if key not in m.values():
            assert out[key] == value
    present_targets = {dst for src, dst in m.items() if src in data}
    assert set(out) == {k for k in data if k not in m.values()} | present_targets


def test_connection_links_on_construction_and_activate_maps() -> None:
    """Connection(event, slot) links both; activate maps then delivers."""
    got: list[Any] = []
    event, slot = Event("e"), Slot("s", handler=lambda **kw: got.append(kw))
    conn = Connection(event, slot, {"a": "b"})
    assert event.connected_slots == [slot] and slot.connected_events == [event]
    conn.activate({"a": 1})
    assert got == [{"b": 1, "a": 1}]
    conn.disconnect()
    assert event.connected_slots == []


def test_emit_without_flow_delivers_synchronously_unmapped() -> None:
    """Without a flow, Event.emit calls every connected slot at once, without mapping."""

    class R(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.got: list[Any] = []
            self.define_slot("in", lambda **kw: self.got.append(kw))

    r1, r2 = R(), R()
    event = Event("e")
    Connection(event, r1.get_slot("in"), {"v": "w"})
    event.connect(r2.get_slot("in"))  # type: ignore[arg-type]
    event.emit(v=3)
    assert r1.got == [{"v": 3}] and r2.got == [{"v": 3}]


def test_output_params_are_documentation_only() -> None:
    """output_params is never enforced."""
    got: list[Any] = []
    event = Event("e", output_params=["x"])
    event.connect(Slot("s", handler=lambda **kw: got.append(kw)))
    event.emit(y=1)
    assert got == [{"y": 1}]
