"""Canonical msgpack encoding with strict validation, and hardened decoding.

What may be stored: ``None``, ``bool``, ``int`` (-2**63 .. 2**64-1), finite ``float``,
``str``, ``bytes``, timezone-aware ``datetime`` (stored as a msgpack Timestamp and
read back in UTC), ``list``/``tuple`` (read back as ``list``) and ``dict`` with ``str``
keys, nested at most :data:`MAX_DEPTH` deep. Everything else is refused at the call
with :class:`~eventlog.errors.EventEncodingError` naming the path of the bad value.

Why so strict: msgpack itself packs NaN and integer map keys without complaint, and
the integer keys then fail to *unpack* -- the record would be written and become
unreadable. A log must refuse at the door what it cannot give back.

The fast path packs in C, then checks the packed bytes for anything that could hide
a problem (floats, bin values, deep nesting); only then does a slow Python walk run,
which either finds the exact path of the problem or proves there is none. The value
handed back is decoded from the bytes, so callers get exactly what a later read
returns (lists, not tuples; plain dicts; UTC datetimes).
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

import msgpack

from .errors import EventEncodingError, RecordDecodeError, RecordTooLargeError

__all__ = [
    "MAX_DEPTH",
    "MAX_RECORD_BYTES",
    "decode",
    "encode",
    "encode_checked",
    "pack_unchecked",
]

#: Deepest nesting of containers accepted (the top-level value is depth 1).
MAX_DEPTH = 64
#: Largest encoded record (one event) accepted, in bytes.
MAX_RECORD_BYTES = 16 * 1024 * 1024

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1

# msgpack type bytes that open a container: fixmap, fixarray, array16/32, map16/32.
_CONTAINER_BYTES = bytes([*range(0x80, 0xA0), 0xDC, 0xDD, 0xDE, 0xDF])
_NOT_CONTAINER = bytes(b for b in range(256) if b not in _CONTAINER_BYTES)
# bin8/16/32: bytes values are legal, but bytes *keys* are not, so their presence
# sends the value down the exact walk.
_BIN_BYTES = b"\xc4\xc5\xc6"
_NOT_INTERESTING = bytes(b for b in range(256) if b not in _CONTAINER_BYTES + _BIN_BYTES + b"\xcb")


class _Unserializable(Exception):
    """Raised by the packer's ``default`` hook; the slow walk then names the path."""


def _refuse(obj: Any) -> Any:
    raise _Unserializable(type(obj).__name__)


_packer = msgpack.Packer(datetime=True, use_bin_type=True, default=_refuse, autoreset=True)
_pack = _packer.pack


def _refuse_ext(code: int, data: bytes) -> Any:
    msg = f"unknown msgpack extension type {code}"
    raise ValueError(msg)


def _type_name(value: Any) -> str:
    return type(value).__name__


def _find_problem(value: Any, root: str, max_depth: int) -> tuple[str, str, bool] | None:
    """Walk ``value`` and return ``(path, problem, is_limit)`` for the first bad item.

    Iterative, so a hostile depth cannot overflow the Python stack; cycles are found
    by tracking the ids of the containers on the current path.
    """
    # Stack items: (value, path, depth, on_path frozenset of container ids)
    stack: list[tuple[Any, str, int, frozenset[int]]] = [(value, root, 1, frozenset())]
    while stack:
        item, path, depth, on_path = stack.pop()
        kind = type(item)
        if item is None or kind is bool or kind is str or kind is bytes:
            if kind is str:
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError as exc:
                    return path, f"str is not valid unicode ({exc.reason} at index {exc.start})", False
            continue
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not _INT_MIN <= item <= _INT_MAX:
                return path, f"int {item} is outside the storable range -2**63 .. 2**64-1", False
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return path, f"float {item!r} is not finite (NaN and infinity cannot be stored)", False
            continue
        if isinstance(item, str):
            continue
        if isinstance(item, (bytes, bytearray, memoryview)):
            continue
        if isinstance(item, _dt.datetime):
            if item.tzinfo is None or item.utcoffset() is None:
                return path, "naive datetime is not serializable (give it a timezone, e.g. tzinfo=timezone.utc)", False
            try:
                item.astimezone(_dt.timezone.utc)
            except OverflowError:
                return path, "datetime is out of range once converted to UTC (it is read back in UTC)", False
            continue
        if isinstance(item, (dict, list, tuple)):
            if id(item) in on_path:
                return path, f"{_type_name(item)} contains itself (a cycle) and is not serializable", False
            if depth > max_depth:
                return path, f"nesting deeper than {max_depth} levels is not allowed", True
            inner = on_path | {id(item)}
            if isinstance(item, dict):
                children = []
                for key, child in item.items():
                    # str subclasses (str enums) pack as plain str, as on the fast path.
                    if not isinstance(key, str):
                        return (
                            f"{path}[{key!r}]",
                            f"map key of type {_type_name(key)} is not allowed (keys must be str)",
                            False,
                        )
                    children.append((child, f"{path}[{key!r}]", depth + 1, inner))
            else:
                children = [(child, f"{path}[{i}]", depth + 1, inner) for i, child in enumerate(item)]
            stack.extend(reversed(children))
            continue
        return path, f"{_type_name(item)} is not serializable", False
    return None


def _raise_problem(value: Any, root: str, max_depth: int, cause: BaseException | None) -> None:
    found = _find_problem(value, root, max_depth)
    if found is None:
        # The walk found nothing yet packing failed: report the packer's reason.
        raise EventEncodingError(root, f"cannot be encoded: {cause}") from cause
    path, problem, is_limit = found
    err_cls = EventEncodingError
    raise err_cls(path, problem) from None


def _suspicious(payload: bytes, max_depth: int) -> bool:
    """True if the packed bytes might hide a problem the C packer let through.

    One C-speed ``translate`` keeps only container, float64 and bin type bytes (string
    contents can produce false alarms, which only cost the exact walk); the checks on
    that short result are int membership tests (memchr), the cheapest Python offers.
    """
    interesting = payload.translate(None, _NOT_INTERESTING)
    if len(interesting) > max_depth:
        return True  # could be nested too deep (only a count, so may be a false alarm)
    if 0xC4 in interesting or 0xC5 in interesting or 0xC6 in interesting:
        return True  # a bin value: fine unless it is a map key, which the walk decides
    if 0xCB in interesting:
        i = payload.find(b"\xcb")
        while i != -1:
            # float64: NaN/inf have all exponent bits set (0x7ff / 0xfff in the top 12 bits).
            if payload[i + 1 : i + 2] in (b"\x7f", b"\xff") and payload[i + 2 : i + 3] >= b"\xf0":
                return True
            i = payload.find(b"\xcb", i + 1)
    return False


def encode_checked(value: Any, *, path: str = "data", max_depth: int = MAX_DEPTH,
                   max_bytes: int = MAX_RECORD_BYTES) -> tuple[bytes, Any]:
    """Encode ``value`` canonically and return ``(payload, decoded_copy)``.

    ``decoded_copy`` is what any later read of ``payload`` returns; callers that keep
    state should keep it rather than ``value`` (which the caller may still mutate).

    Raises:
        EventEncodingError: (a ``TypeError`` and ``ValueError``) naming the bad value's path.
        RecordTooLargeError: (a ``ValueError``) the encoding exceeds ``max_bytes``.
    """
    try:
        payload = _pack(value)
    except (_Unserializable, TypeError, ValueError, OverflowError, UnicodeEncodeError) as exc:
        _raise_problem(value, path, max_depth, exc)
        raise AssertionError("unreachable") from exc  # pragma: no cover
    if len(payload) > max_bytes:
        raise RecordTooLargeError(
            path, f"encodes to {len(payload)} bytes, more than the limit of {max_bytes} bytes"
        )
    if _suspicious(payload, max_depth):
        found = _find_problem(value, path, max_depth)
        if found is not None:
            raise EventEncodingError(found[0], found[1])
    try:
        decoded = msgpack.unpackb(
            payload, raw=False, strict_map_key=True, timestamp=3, ext_hook=_refuse_ext
        )
    except (ValueError, OverflowError) as exc:  # an int map key packs but cannot be read back;
        # a datetime near year 9999 may overflow once read back in UTC
        _raise_problem(value, path, max_depth, exc)
        raise AssertionError("unreachable") from exc  # pragma: no cover
    return payload, decoded


#: Pack a value canonically with NO validation (the packer may still raise). Only for
#: hot paths whose caller has already proved the value storable: every map key a
#: ``str`` and every scalar one :func:`encode_checked` accepts (no NaN/inf, no bytes
#: keys, shallow nesting). The JobState's ``record_execution`` uses it for flat data;
#: anything else must go through :func:`encode_checked`. (The C method itself, not a
#: wrapper: a Python call frame would cost a tenth of the whole hot path.)
pack_unchecked = _pack


def encode(value: Any, *, path: str = "data", max_depth: int = MAX_DEPTH,
           max_bytes: int = MAX_RECORD_BYTES) -> bytes:
    """Encode ``value``; see :func:`encode_checked` for the rules and errors."""
    return encode_checked(value, path=path, max_depth=max_depth, max_bytes=max_bytes)[0]


def _depth_exceeds(value: Any, max_depth: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if type(item) is dict:
            if depth > max_depth:
                return True
            stack.extend((v, depth + 1) for v in item.values())
        elif type(item) is list:
            if depth > max_depth:
                return True
            stack.extend((v, depth + 1) for v in item)
    return False


def decode(payload: bytes, *, where: str = "<bytes>", offset: int | None = None,
           seq: int | None = None, max_depth: int = MAX_DEPTH) -> Any:
    """Decode bytes written by :func:`encode`, refusing anything hostile.

    Lengths inside the payload are bounded by its size (msgpack's default), unknown
    extension types are refused, map keys must be strings, and nesting deeper than
    ``max_depth`` is refused. Every failure is a :class:`RecordDecodeError` naming
    ``where``, ``offset`` and ``seq``; never a hang, ``MemoryError`` or ``RecursionError``.
    """
    try:
        value = msgpack.unpackb(
            payload, raw=False, strict_map_key=True, timestamp=3, ext_hook=_refuse_ext
        )
    except Exception as exc:  # every msgpack failure becomes one clear error
        raise RecordDecodeError(where, offset, seq, f"undecodable record payload ({exc})") from None
    if len(payload.translate(None, _NOT_CONTAINER)) > max_depth and _depth_exceeds(value, max_depth):
        raise RecordDecodeError(where, offset, seq, f"record nested deeper than {max_depth} levels")
    return value
