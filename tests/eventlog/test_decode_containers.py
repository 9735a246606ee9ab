"""``decode(..., containers=...)``: the one codec building the caller's container types in one pass.

A record's data read after a load is decoded straight into read-only containers; that
must equal decoding plainly and converting every dict/list/set afterwards, leaving the
fields of user objects (and every other extension value) exactly as a plain decode gives.
Also pins the depth walk's fast path to the generic definition of nesting.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from value_types import Box, Pair, Point, values  # noqa: E402  (tests/value_types.py)

from eventlog import encoding
from eventlog.encoding import Containers, StoredObject, decode, encode


class MyDict(dict):  # type: ignore[type-arg]
    """A marker dict type."""


class MyList(list):  # type: ignore[type-arg]
    """A marker list type."""


class MySet(set):  # type: ignore[type-arg]
    """A marker set type."""


MARKED = Containers(MyDict, MyList, MySet)


def convert(value: Any) -> Any:
    """What the containers must give: every plain dict/list/set of the value replaced, tuples kept."""
    kind = type(value)
    if kind is dict:
        return MyDict({k: convert(v) for k, v in value.items()})
    if kind is list:
        return MyList(convert(v) for v in value)
    if kind is set:
        return MySet(value)
    if kind is tuple:
        return tuple(convert(v) for v in value)
    return value  # frozensets, user objects (their fields untouched), scalars


def exact(value: Any) -> Any:
    """A comparable form naming the exact type of every container, inside user objects too."""
    kind = type(value)
    if isinstance(value, dict):
        return (kind.__name__, [(exact(k), exact(v)) for k, v in dict.items(value)])
    if isinstance(value, (list, tuple)) and kind not in (Point,):
        return (kind.__name__, [exact(v) for v in value])
    if isinstance(value, (set, frozenset)):
        return (kind.__name__, sorted(repr(exact(v)) for v in value))
    if kind is Box:
        return ("Box", exact(value.label), exact(value.items))
    if kind is Pair:
        return ("Pair", exact(value.a), exact(value.b))
    if kind is Point:
        return ("Point", exact(value.x), exact(value.y))
    if kind is StoredObject:
        return ("StoredObject", value.type_path, exact(dict(value.fields)))
    if kind is float:
        return ("float", repr(value))
    return (kind.__name__, repr(value))


@given(value=values)
def test_containers_equal_a_plain_decode_converted(value: Any) -> None:
    """Same value, same types everywhere: converted containers, user objects' fields plain."""
    payload = encode(value)
    assert exact(decode(payload, containers=MARKED)) == exact(convert(decode(payload)))


def test_user_object_fields_and_extension_values_keep_plain_containers() -> None:
    box = Box("b", [[1, 2], {"k": [3]}])
    value = {"box": box, "t": ([1], {"a": 1}), "s": {1, 2}, "f": frozenset({3}), "pair": Pair([1], (2, [3]))}
    got = decode(encode(value), containers=MARKED)
    assert type(got) is MyDict
    assert type(got["box"].items) is list and type(got["box"].items[1]) is dict
    assert type(got["t"]) is tuple and type(got["t"][0]) is MyList and type(got["t"][1]) is MyDict
    assert type(got["s"]) is MySet and type(got["f"]) is frozenset
    assert type(got["pair"].a) is list and type(got["pair"].b[1]) is list
    assert got == value


def test_a_plain_decode_after_a_container_decode_is_plain() -> None:
    payload = encode({"t": ([1],)})
    decode(payload, containers=MARKED)
    again = decode(payload)
    assert type(again) is dict and type(again["t"][0]) is list


nested = st.recursive(st.integers(0, 300) | st.text(max_size=3),
                      lambda inner: st.lists(inner, max_size=3) | st.tuples(inner)
                      | st.dictionaries(st.text(max_size=2), inner, max_size=3)
                      | st.builds(Box, st.just("b"), st.lists(inner, max_size=2)),
                      max_leaves=40)


def generic_depth_exceeds(value: Any, max_depth: int) -> bool:
    """Nesting by the codec's generic definition (``_children``), the walk the fast one stands for."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = encoding._children(item)
        if children is None:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for _, child in children)
    return False


@given(value=nested, max_depth=st.integers(1, 8))
def test_depth_walk_agrees_with_the_generic_definition(value: Any, max_depth: int) -> None:
    assert encoding._depth_exceeds(value, max_depth) == generic_depth_exceeds(value, max_depth)


def test_a_long_list_of_small_ints_encodes_and_decodes() -> None:
    """Its bytes look like containers (0x80-0x9f); the depth walk must still accept it."""
    value = {"items": list(range(300)) * 50}
    assert decode(encode(value)) == value
