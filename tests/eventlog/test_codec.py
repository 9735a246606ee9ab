"""Encoding rules: what may be stored, and the errors for what may not."""

from __future__ import annotations

import datetime as dt

import pytest

from eventlog import codec
from eventlog.errors import EventEncodingError, RecordDecodeError, RecordTooLargeError


def _recursive_dict() -> dict:
    d: dict = {}
    d["self"] = d
    return d


def _recursive_list() -> list:
    x: list = []
    x.append(x)
    return x


def _deep(n: int) -> list:
    root: list = []
    cur = root
    for _ in range(n - 1):
        nxt: list = []
        cur.append(nxt)
        cur = nxt
    return root


@pytest.mark.parametrize(
    ("value", "path", "words"),
    [
        (object(), "data", "object is not serializable"),
        ({"items": [0, 1, 2, {1, 2}]}, "data['items'][3]", "set is not serializable"),
        (float("nan"), "data", "not finite"),
        ({"x": float("inf")}, "data['x']", "not finite"),
        ({1: "a"}, "data[1]", "map key of type int"),
        ({b"k": 1}, "data[b'k']", "map key of type bytes"),
        (2**64, "data", "outside the storable range"),
        ("\ud800", "data", "not valid unicode"),
        (dt.datetime(2026, 1, 1), "data", "naive datetime"),
        (_recursive_dict(), "data['self']", "cycle"),
        (_recursive_list(), "data[0]", "cycle"),
        (_deep(65), "data" + "[0]" * 64, "deeper than 64"),
    ],
)
def test_bad_values_are_refused_with_their_path(value, path, words):
    """Each unstorable value raises EventEncodingError (a TypeError) naming its path."""
    with pytest.raises(EventEncodingError) as info:
        codec.encode(value)
    assert isinstance(info.value, TypeError)
    assert info.value.path == path
    assert words in str(info.value)


def test_too_large_is_a_value_error():
    """A record over the size limit raises RecordTooLargeError, a ValueError."""
    with pytest.raises(RecordTooLargeError) as info:
        codec.encode("x" * 100, max_bytes=50)
    assert isinstance(info.value, ValueError)


def test_round_trip_normalises_tuples_and_datetimes():
    """Tuples come back as lists, aware datetimes as the same instant in UTC."""
    when = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    payload, decoded = codec.encode_checked({"t": (1, 2), "when": when, "f": 1.5, "b": b"\x00"})
    assert decoded == {"t": [1, 2], "when": when, "f": 1.5, "b": b"\x00"}
    assert decoded["when"].tzinfo == dt.timezone.utc
    assert codec.decode(payload) == decoded


def test_depth_64_is_allowed():
    """Exactly MAX_DEPTH levels of nesting are accepted and read back."""
    value = _deep(64)
    assert codec.decode(codec.encode(value)) == value


def test_encoding_is_canonical():
    """Equal values (same key order) always give the same bytes."""
    assert codec.encode({"a": 1, "b": [1, 2]}) == codec.encode({"a": 1, "b": (1, 2)})


@pytest.mark.parametrize(
    "payload",
    [
        b"\xc1",  # never-used byte
        b"\xdd\xff\xff\xff\xff",  # array32 claiming 2**32-1 items
        b"\xc7\x01\x05\x00",  # ext type 5
        b"\x91" * 100 + b"\xc0",  # nesting 100
        b"\x91" * 100_000 + b"\xc0",  # nesting 100k
        b"\xa3ab",  # truncated str
        b"\xc0\xc0",  # trailing bytes
        b"\xa2\xff\xfe",  # invalid utf-8
        b"\x81\x01\x02",  # int map key
    ],
)
def test_hostile_payloads_give_a_decode_error(payload):
    """Hostile bytes raise RecordDecodeError naming where they were found."""
    with pytest.raises(RecordDecodeError) as info:
        codec.decode(payload, where="seg", offset=48, seq=7)
    assert info.value.segment == "seg" and info.value.offset == 48 and info.value.seq == 7
