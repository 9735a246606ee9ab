"""The one codec: lossless round trips, canonical bytes, user types, placeholders, hostile input."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import decimal
import enum
import subprocess
import sys
import threading
import warnings
from typing import Any

import msgpack
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from value_types import Box, Pair, Point, typed, values  # noqa: E402  (tests/value_types.py)

from eventlog import encoding
from eventlog.encoding import (
    MAX_DEPTH,
    StoredObject,
    Unrepresentable,
    decode,
    decode_event,
    encode,
    encode_event,
    event_kind,
    register_type,
    split_event,
    unregister_type,
)
from eventlog.errors import (
    EventEncodingError,
    RecordDecodeError,
    RecordTooLargeError,
    UnrepresentableValueWarning,
)


@given(value=values)
@example(value={"when": dt.datetime(2026, 1, 1), "n": 2**70, "nan": float("nan"), 1: (1, 2), (1, "a"): {3}})
@example(value=[float("-inf"), -0.0, decimal.Decimal("-0.00"), decimal.Decimal("sNaN12"), dt.datetime(9999, 12, 31, 23, 59,
                                                                         tzinfo=dt.timezone(-dt.timedelta(hours=12)))])
def test_round_trip_keeps_values_and_types(value: Any) -> None:
    """decode(encode(x)) equals x with the same types (NaN-aware), and re-encodes to the same bytes."""
    payload = encode(value)
    back = decode(payload)
    assert typed(back) == typed(value)
    assert encode(back) == payload


@given(value=values)
def test_equal_values_built_differently_encode_alike(value: Any) -> None:
    """A deep copy (sets rebuilt, so their iteration order may differ) gives the same bytes."""
    assert encode(copy.deepcopy(value)) == encode(value)


def test_set_bytes_do_not_depend_on_insertion_order_or_hash_seed() -> None:
    """Set items are ordered by their encoded bytes: the same in any process."""
    items = [f"item-{i}" for i in range(40)]
    here = encode({"s": set(items), "f": frozenset(reversed(items))})
    assert encode({"s": set(reversed(items)), "f": frozenset(items)}) == here
    code = ("import sys; sys.path.insert(0, '.'); from eventlog.encoding import encode; "
            "items = [f'item-{i}' for i in range(40)]; "
            "sys.stdout.write(encode({'s': set(items), 'f': frozenset(reversed(items))}).hex())")
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout
        assert bytes.fromhex(out) == here


def test_old_bytes_decode_and_reencode_unchanged() -> None:
    """Bytes the first codec wrote (native types, aware datetimes as msgpack Timestamps) round-trip exactly."""
    old_packer = msgpack.Packer(datetime=True, use_bin_type=True)
    old = {"s": "x", "i": -5, "big": 2**64 - 1, "f": 1.5, "b": b"\x00", "l": [1, [2]], "n": None, "t": True,
           "when": dt.datetime(2026, 11, 28, 7, 13, 4, 123456, tzinfo=dt.timezone.utc)}
    payload = old_packer.pack(old)
    back = decode(payload)
    assert back == old and back["when"].tzinfo is dt.timezone.utc
    assert encode(back) == payload


def test_aware_datetimes_keep_their_offset() -> None:
    """An aware datetime comes back with a fixed timezone of the same offset (UTC as timezone.utc)."""
    ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
    value = dt.datetime(2026, 1, 1, 12, tzinfo=ist)
    back = decode(encode(value))
    assert back == value and back.utcoffset() == dt.timedelta(hours=5, minutes=30)
    assert decode(encode(dt.datetime(2026, 1, 1))).tzinfo is None


def test_builtin_subclasses_are_stored_as_their_base_type() -> None:
    """OrderedDict, a str subclass, bytearray: stored (and read back) as dict, str, bytes."""
    import collections

    class Name(str):
        pass

    value = {"o": collections.OrderedDict(a=1), "n": Name("x"), "ba": bytearray(b"ab")}
    back = decode(encode(value))
    assert back == {"o": {"a": 1}, "n": "x", "ba": b"ab"}
    assert [type(v) for v in back.values()] == [dict, str, bytes]


# -- user types ---------------------------------------------------------------------
@dataclasses.dataclass
class Unregistered:
    """A dataclass nobody registered; its __post_init__ must never run on decode."""

    a: int
    b: list[Any]

    def __post_init__(self) -> None:
        Unregistered.built += 1  # type: ignore[attr-defined]


Unregistered.built = 0  # type: ignore[attr-defined]


def test_unregistered_class_comes_back_as_a_read_only_record() -> None:
    """Never instantiated on decode: a StoredObject that compares equal to the original and prints like it."""
    original = Unregistered(1, [2, (3,)])
    payload = encode(original)
    built = Unregistered.built  # type: ignore[attr-defined]
    back = decode(payload)
    assert Unregistered.built == built  # type: ignore[attr-defined]
    assert isinstance(back, StoredObject) and not isinstance(back, Unregistered)
    assert back == original and original == back
    assert back.a == 1 and back.b == [2, (3,)]
    assert back.type_path == f"{__name__}:Unregistered"
    assert repr(back) == "Unregistered(a=1, b=[2, (3,)])"
    with pytest.raises(AttributeError, match="read-only"):
        back.a = 2  # type: ignore[misc]
    assert encode(back) == payload  # re-stored exactly as read


def test_a_class_named_by_a_log_is_never_imported() -> None:
    """A payload naming a module that is not loaded gives a record; the module stays unimported."""
    name = "eventlog_test_never_imported_module"
    payload = msgpack.packb(msgpack.ExtType(encoding.EXT_OBJECT, msgpack.packb([f"{name}:Boom", 1, {"x": 1}])))
    back = decode(payload)
    assert isinstance(back, StoredObject) and back.fields == {"x": 1}
    assert name not in sys.modules


def test_registered_types_are_rebuilt_without_running_init() -> None:
    box = Box("a", [Point(1, 2), Pair(1, (2,))])
    back = decode(encode(box))
    assert type(back) is Box and back == box
    assert type(back.items[0]) is Point and type(back.items[1]) is Pair


def test_unregistered_enum_member_is_a_record_equal_to_the_member() -> None:
    Mood = enum.Enum("Mood", {"HAPPY": 1})
    back = decode(encode(Mood.HAPPY))
    assert isinstance(back, StoredObject) and back.is_enum
    assert back == Mood.HAPPY and back.name == "HAPPY" and back.value == 1


def test_upcaster_runs_on_decode_and_stored_bytes_stay_as_written() -> None:
    """A value written with version 1 reads as version 2 through the upcaster."""

    @dataclasses.dataclass
    class Reading:
        value: float
        unit: str = "C"

    register_type(Reading, version=1, name="tests:Reading")
    old = dataclasses.replace(Reading(1.5))
    v1_bytes = encode({"r": old})
    try:
        # Version 2 renames "value" to "celsius" (a new class under the same stored name).
        @dataclasses.dataclass
        class Reading2:
            celsius: float
            unit: str = "C"

        def upcast(fields: dict[str, Any], version: int) -> dict[str, Any]:
            assert version == 1
            return {"celsius": fields.pop("value"), **fields}

        unregister_type(Reading)
        register_type(Reading2, version=2, upcast=upcast, name="tests:Reading")
        back = decode(v1_bytes)
        assert back == {"r": Reading2(1.5)}
        assert encode(back) != v1_bytes  # stored as version 2 from now on; the old bytes never change
        assert decode(encode(back)) == back
        unregister_type(Reading2)
        register_type(Reading2, version=2, name="tests:Reading")
        with pytest.raises(RecordDecodeError, match="without an upcaster"):
            decode(v1_bytes)
        unregister_type(Reading2)
        register_type(Reading2, version=1, name="tests:Reading")
        with pytest.raises(RecordDecodeError, match="do not match"):
            decode(v1_bytes)
    finally:
        for cls in (Reading, Reading2):
            unregister_type(cls)


def test_register_type_as_a_decorator() -> None:
    @register_type(version=3)
    @dataclasses.dataclass
    class Tagged:
        t: str

    try:
        assert decode(encode(Tagged("x"))) == Tagged("x")
        assert encoding.registered_types()[f"{__name__}:{Tagged.__qualname__}"] == (Tagged, 3)
    finally:
        unregister_type(Tagged)


# -- values nothing can represent ------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "path", "words"),
    [
        ({"x": object()}, "data['x']", "builtins:object cannot be stored"),
        ({"items": [0, 1, threading.Lock()]}, "data['items'][2]", "_thread:lock cannot be stored"),
        ({"f": len}, "data['f']", "register it with eventlog.register_type"),
        ({"g": (i for i in range(3))}, "data['g']", "generator cannot be stored"),
        ({"c": 1j}, "data['c']", "complex cannot be stored"),
        ({"s": "ok\ud800"}, "data['s']", "not valid unicode"),
    ],
)
def test_strict_encoding_names_the_path_and_what_to_do(value: Any, path: str, words: str) -> None:
    with pytest.raises(EventEncodingError) as info:
        encode(value)
    assert isinstance(info.value, TypeError)
    assert info.value.path == path
    assert words in str(info.value)


def test_lenient_encoding_stores_placeholders_and_warns_once_per_type() -> None:
    class Handle:
        def __repr__(self) -> str:
            return "<Handle 7>"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        back = decode(encode({"a": Handle(), "b": [Handle(), 1]}, lenient=True))
        decode(encode({"c": Handle()}, lenient=True))
    assert back["a"] == Unrepresentable(f"{__name__}:{Handle.__qualname__}", "<Handle 7>")
    assert back["b"][1] == 1 and isinstance(back["b"][0], Unrepresentable)
    assert repr(back["a"]) == f"<unrepresentable {__name__}:{Handle.__qualname__}: <Handle 7>>"
    mine = [w for w in caught if issubclass(w.category, UnrepresentableValueWarning)]
    assert len(mine) == 1 and "Handle" in str(mine[0].message)


def _recursive_dict() -> dict[str, Any]:
    d: dict[str, Any] = {}
    d["self"] = d
    return d


def _deep(n: int) -> list[Any]:
    root: list[Any] = []
    cur = root
    for _ in range(n - 1):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    return root


@pytest.mark.parametrize(
    ("value", "path", "words"),
    [
        (_recursive_dict(), "data['self']", "cycle"),
        (_deep(MAX_DEPTH + 1), "data" + "[0]" * MAX_DEPTH, f"deeper than {MAX_DEPTH}"),
        ((_deep(MAX_DEPTH),), "data[0]" + "[0]" * (MAX_DEPTH - 1), f"deeper than {MAX_DEPTH}"),
    ],
)
def test_cycles_and_depth_are_refused_with_their_path(value: Any, path: str, words: str) -> None:
    with pytest.raises(EventEncodingError) as info:
        encode(value)
    assert info.value.path == path and words in str(info.value)


def test_depth_at_the_limit_is_accepted() -> None:
    value = _deep(MAX_DEPTH)
    assert decode(encode(value)) == value


def test_too_large_is_a_value_error() -> None:
    with pytest.raises(RecordTooLargeError) as info:
        encode("x" * 100, max_bytes=50)
    assert isinstance(info.value, ValueError)


# -- events ----------------------------------------------------------------------------
def test_event_helpers_agree_with_the_encoder() -> None:
    """encode_event = [kind, data]; event_kind and split_event read it without decoding the value."""
    value = {"deep": [(1, 2), {3}], "when": dt.date(2026, 1, 2)}
    event = encode_event("shared_data_set", {"key": "k", "value": value})
    assert event == b"\x92" + msgpack.packb("shared_data_set") + b"\x82\xa3key\xa1k\xa5value" + encode(value)
    assert decode_event(event) == ("shared_data_set", {"key": "k", "value": value})
    assert event_kind(event) == "shared_data_set"
    assert split_event(event, "key", "value") == ("k", encode(value))
    assert split_event(event, "routine_id", "state") is None


@pytest.mark.parametrize("kind", ["", 7, None, b"k"])
def test_bad_kinds_are_refused(kind: Any) -> None:
    with pytest.raises(EventEncodingError, match="kind"):
        encode_event(kind, {})


# -- hostile bytes ----------------------------------------------------------------------
def _ext(code: int, inner: bytes) -> bytes:
    return msgpack.packb(msgpack.ExtType(code, inner))


def _nested_ext(depth: int) -> bytes:
    inner = msgpack.packb([])
    for _ in range(depth):
        inner = msgpack.packb([msgpack.ExtType(encoding.EXT_TUPLE, inner)])
    return _ext(encoding.EXT_TUPLE, inner)


@pytest.mark.parametrize(
    "payload",
    [
        b"\xc1",  # never-used byte
        b"\xdd\xff\xff\xff\xff",  # array32 claiming 2**32-1 items
        b"\xc7\x01\x63\x00",  # unknown ext type 99
        b"\x91" * 100 + b"\xc0",  # nesting 100
        b"\x91" * 100_000 + b"\xc0",  # nesting 100k
        b"\xa3ab",  # truncated str
        b"\xc0\xc0",  # trailing bytes
        b"\xa2\xff\xfe",  # invalid utf-8
        b"\x81\x91\x01\x02",  # a list as a map key (unhashable)
        _ext(encoding.EXT_TUPLE, b"\x01"),  # a tuple that is not an array
        _ext(encoding.EXT_DATETIME, msgpack.packb([2026, 13, 1, 0, 0, 0, 0, 0, None])),  # month 13
        _ext(encoding.EXT_DATETIME, msgpack.packb([2026, 1, 1])),  # wrong arity
        _ext(encoding.EXT_DECIMAL, b"not a number"),
        _ext(encoding.EXT_UUID, b"short"),
        _ext(encoding.EXT_OBJECT, msgpack.packb(["m:C", 1, {1: 2}])),  # non-str field name
        _ext(encoding.EXT_BIGINT, b""),
        _nested_ext(5000),  # extensions nested far beyond any limit
        _nested_ext(MAX_DEPTH + 2),
    ],
)
def test_hostile_payloads_give_a_decode_error(payload: bytes) -> None:
    with pytest.raises(RecordDecodeError) as info:
        decode(payload, where="seg", offset=48, seq=7)
    assert info.value.segment == "seg" and info.value.offset == 48 and info.value.seq == 7


def test_non_str_keys_are_legal_data() -> None:
    """Int, bytes, tuple and frozenset keys are stored and read back (they were refused before)."""
    value = {1: "a", b"k": 2, (1, "x"): 3, frozenset({1}): 4, None: 5, 1.5: 6}
    assert decode(encode(value)) == value


@given(first=st.text(max_size=300), second=st.text(max_size=40), value=values)
def test_event_splitter_gives_the_strs_and_the_encoded_last_value(first: str, second: str, value: Any) -> None:
    """split() reads the leading strs (any length) and slices the last value's exact encoding."""
    from eventlog.encoding import EventSplitter

    event = encode_event("execution_recorded", {"routine_id": first, "event_name": second, "data": value})
    assert EventSplitter("routine_id", "event_name", "data").split(event) == (first, second, encode(value))
    assert EventSplitter("routine_id", "data").split(event) is None  # another shape
    other = encode_event("execution_recorded", {"routine_id": 3, "event_name": second, "data": value})
    assert EventSplitter("routine_id", "event_name", "data").split(other) is None  # not a str


@given(first=st.text(max_size=40), second=st.text(max_size=40), value=values,
       flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=3),
       cut=st.integers(min_value=0, max_value=80))
def test_event_splitter_remembered_fields_give_what_the_full_parse_gives(
        first: str, second: str, value: Any, flips: list[tuple[int, int]], cut: int) -> None:
    """A splitter that has seen an event's leading fields splits the next ones with them exactly
    as a fresh splitter does (which parses every byte), whatever the bytes: same event, a
    damaged copy, a cut-short copy, the same fields with another value."""
    from eventlog.encoding import EventSplitter

    names = ("routine_id", "event_name", "data")
    event = encode_event("execution_recorded", {"routine_id": first, "event_name": second, "data": value})
    damaged = bytearray(event)
    for at, byte in flips:
        damaged[at % len(damaged)] = byte
    other = encode_event("execution_recorded", {"routine_id": first, "event_name": second, "data": [value]})
    seasoned = EventSplitter(*names)
    assert seasoned.split(event) == (first, second, encode(value))
    for candidate in (event, bytes(damaged), event[: len(event) - cut], other):
        assert seasoned.split(candidate) == EventSplitter(*names).split(candidate)
