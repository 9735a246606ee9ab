"""Encoding of one event (``[kind, data]``) shared by every backend."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import msgpack

from . import codec
from .errors import EventEncodingError, RecordDecodeError, RecordTooLargeError

__all__ = [
    "check_schema_version",
    "decode_event",
    "encode_batch",
    "encode_event",
    "encoded_batch",
    "next_ts",
    "refuse_too_large",
]

_kind_cache: dict[str, bytes] = {}
_time_ns = time.time_ns
_pack = codec._pack
_unpackb = msgpack.unpackb
_suspicious = codec._suspicious
_refuse_ext = codec._refuse_ext
_MAX_BYTES = codec.MAX_RECORD_BYTES
_MAX_DEPTH = codec.MAX_DEPTH


def _packed_kind(kind: str) -> bytes:
    # The type check comes first: an unhashable kind (a list) must give the clear error,
    # not a TypeError from the cache lookup.
    if type(kind) is not str or not kind:
        raise EventEncodingError("kind", f"event kind must be a non-empty str, got {kind!r}")
    packed = _kind_cache.get(kind)
    if packed is None:
        packed = codec.encode(kind, path="kind")
        if len(_kind_cache) < 4096:
            _kind_cache[kind] = packed
    return packed


#: Nesting levels :func:`_plain_copy` handles; deeper data takes the general path.
_PLAIN_DEPTH = 4
_PLAIN_SCALARS = frozenset((str, int, bool, type(None), bytes))


def _plain_copy(value: dict[Any, Any] | list[Any], depth: int) -> Any:
    """Copy plain data the C packer has already packed, or return ``None``.

    "Plain": dicts with exact-``str`` keys, lists, and exact ``str``/``int``/``bool``/
    ``None``/``bytes``/finite ``float`` values, at most ``depth`` levels of containers.
    For such data the copy equals what decoding the packed bytes gives (same types,
    same order, fresh containers) and no rule can be broken (packing already bounded
    ints and refused bad unicode), so the byte scan and the decode round trip --
    two thirds of an encode -- are skipped. Anything else (tuples, datetimes,
    subclasses, NaN/inf, non-str keys, deeper nesting) returns ``None``: the general
    path decides.
    """
    scalars = _PLAIN_SCALARS
    # Copy first (C speed), then check every item and replace the nested containers
    # with their copies (assigning existing keys while iterating is allowed).
    if type(value) is dict:
        out = value.copy()
        for k, v in out.items():
            if type(k) is not str:
                return None
            t = type(v)
            if t in scalars:
                continue
            if t is float:
                if v - v != 0.0:  # NaN or infinity
                    return None
            elif (t is dict or t is list) and depth > 1:
                c = _plain_copy(v, depth - 1)
                if c is None:
                    return None
                out[k] = c
            else:
                return None
        return out
    if type(value) is not list:
        return None  # a dict subclass, say: the general path decides
    items = value.copy()
    for i, v in enumerate(items):
        t = type(v)
        if t in scalars:
            continue
        if t is float:
            if v - v != 0.0:
                return None
        elif (t is dict or t is list) and depth > 1:
            c = _plain_copy(v, depth - 1)
            if c is None:
                return None
            items[i] = c
        else:
            return None
    return items


def encode_event(kind: str, data: Mapping[str, Any]) -> tuple[bytes, Any]:
    """Return ``(event_bytes, decoded_data)``; ``event_bytes`` is msgpack ``[kind, data]``.

    Raises:
        EventEncodingError: ``data`` is not a dict or holds a value that cannot be stored;
            the message names the path (``data['items'][3]: set is not serializable``).
    """
    if not isinstance(data, dict):
        raise EventEncodingError("data", f"event data must be a dict, got {type(data).__name__}")
    if type(kind) is not str or not kind:
        _packed_kind(kind)  # raises the clear error
    # codec.encode_checked's fast path, inlined (this runs once per append): pack
    # ``(kind, data)`` in C (a tuple packs as the two-item array), then either a plain
    # copy or a byte scan plus the round trip that gives the caller what a later read
    # returns. Anything unusual is handed to encode_checked itself, which finds and
    # names the exact problem.
    try:
        event_bytes = _pack((kind, data))
    except Exception:
        event_bytes = None
    if event_bytes is None or len(event_bytes) > _MAX_BYTES:
        return _encode_slowly(kind, data)
    decoded = _plain_copy(data, _PLAIN_DEPTH)
    if decoded is None:
        # One container more than the data's own nesting: the [kind, data] pair.
        if _suspicious(event_bytes, _MAX_DEPTH + 1):
            return _encode_slowly(kind, data)
        try:
            decoded = _unpackb(event_bytes, raw=False, strict_map_key=True, timestamp=3,
                               ext_hook=_refuse_ext)[1]
        except Exception:
            return _encode_slowly(kind, data)
    return event_bytes, decoded


def _encode_slowly(kind: str, data: dict[str, Any]) -> tuple[bytes, Any]:
    """:func:`encode_event` for data the fast path could not vouch for: exact errors."""
    payload, decoded = codec.encode_checked(data, path="data")
    # 0x92 is a msgpack fixarray of two items: the bytes equal packb([kind, data]).
    event_bytes = b"\x92" + _packed_kind(kind) + payload
    if len(event_bytes) > _MAX_BYTES:
        refuse_too_large(event_bytes)
    return event_bytes, decoded


def refuse_too_large(event_bytes: bytes) -> NoReturn:
    """Raise :class:`RecordTooLargeError` for an encoded event over the record limit.

    The limit covers the whole event, so whatever a reader accepts is what was written.
    Callers test ``len(event_bytes) > codec.MAX_RECORD_BYTES`` inline (on an append hot
    path a call costs more than the test) and call this only when it holds.
    """
    raise RecordTooLargeError(
        "data", f"the event encodes to {len(event_bytes)} bytes, more than the limit of "
        f"{codec.MAX_RECORD_BYTES} bytes"
    )


def _refuse_empty_batch() -> NoReturn:
    msg = "append_batch needs at least one event"
    raise ValueError(msg)


def encode_batch(events: Iterable[tuple[str, Mapping[str, Any]]]
                 ) -> tuple[list[tuple[str, Mapping[str, Any]]], list[tuple[bytes, Any]]]:
    """Return ``(events, encoded)`` for a batch: the events as a list (a one-shot iterator
    is read once) and :func:`encode_event` of each, in order.

    Everything is encoded before anything is written, so a bad value raises at the call.

    Raises:
        ValueError: the batch is empty.
        EventEncodingError: as :func:`encode_event`, naming the bad value's path.
    """
    events = list(events)
    if not events:
        _refuse_empty_batch()
    return events, [encode_event(kind, data) for kind, data in events]


def encoded_batch(events: Iterable[tuple[str, bytes, Any]]) -> list[tuple[str, bytes, Any]]:
    """Return a pre-encoded ``(kind, event_bytes, data)`` batch as a list, checked.

    Only what ``append_batch_encoded`` checks of its trusted input: not empty, and every
    event within the record limit.

    Raises:
        ValueError: the batch is empty.
        RecordTooLargeError: an ``event_bytes`` is over ``codec.MAX_RECORD_BYTES``.
    """
    events = list(events)
    if not events:
        _refuse_empty_batch()
    for _, event_bytes, _ in events:
        if len(event_bytes) > _MAX_BYTES:
            refuse_too_large(event_bytes)
    return events


def check_schema_version(schema_version: int) -> None:
    """Refuse a snapshot schema version that is not a signed 64-bit int."""
    if type(schema_version) is not int:
        msg = f"schema_version must be an int, got {schema_version!r}"
        raise TypeError(msg)
    if not -(2**63) <= schema_version < 2**63:
        msg = f"schema_version {schema_version} does not fit in a signed 64-bit integer"
        raise ValueError(msg)


def decode_event(event_bytes: bytes, *, where: str = "<memory>", offset: int | None = None,
                 seq: int | None = None) -> tuple[str, Any]:
    """Decode bytes made by :func:`encode_event`; hostile input gives RecordDecodeError."""
    # The [kind, data] wrapper adds one level to the data's own MAX_DEPTH.
    value = codec.decode(event_bytes, where=where, offset=offset, seq=seq, max_depth=codec.MAX_DEPTH + 1)
    if type(value) is not list or len(value) != 2 or type(value[0]) is not str or type(value[1]) is not dict:
        raise RecordDecodeError(where, offset, seq, "record is not a [kind, data] pair")
    return value[0], value[1]


def next_ts(head_ts: int, ts: int | None) -> int:
    """Return the timestamp for a new record: ``max(now, head_ts)`` or a checked explicit one."""
    if ts is None:
        now = _time_ns()
        return now if now > head_ts else head_ts
    if type(ts) is not int:
        msg = f"ts must be an int (nanoseconds since the epoch), got {type(ts).__name__}"
        raise TypeError(msg)
    if ts < head_ts:
        msg = f"ts {ts} is earlier than the log's last timestamp {head_ts}; timestamps must not decrease"
        raise ValueError(msg)
    return ts
