"""The one codec: the only place where values become bytes and bytes become values.

Every backend, snapshot, bundle, ``verify`` and the layers above use these functions
and nothing else. The encoding is msgpack (canonical: the same value always gives the
same bytes) with a few extension types for what msgpack has no word for.

What round-trips exactly, with the same types
=============================================

``None``, ``bool``, ``int`` of any size, ``float`` (NaN and infinities included),
``str``, ``bytes``, ``list``, ``tuple``, ``dict`` with keys of any of these hashable
types, ``set``, ``frozenset``, ``datetime.datetime`` (naive, or aware: the tzinfo comes
back as a fixed ``datetime.timezone`` with the same offset, UTC as ``timezone.utc``),
``datetime.date``, ``datetime.time``, ``datetime.timedelta``, ``decimal.Decimal``,
``uuid.UUID``, ``pathlib`` paths and members of registered ``enum.Enum`` classes.

Normalised on the way in (documented, stable): subclasses of the built-in containers
and scalars that are not enums or named tuples (``OrderedDict``, ``defaultdict``, a
``str`` subclass, read-only views...) are stored as their base type; ``bytearray`` and
``memoryview`` as ``bytes``.

User types
==========

Instances of dataclasses, attrs classes and named tuples are stored by class path
(``"module:QualName"``) and fields. A log is data, not code: a class is never imported
or instantiated because a log names it. Only a class registered in this process with
:func:`register_type` is rebuilt (without running its ``__init__``, like pickle); any
other comes back as a read-only :class:`StoredObject` that compares equal to the
original instance and prints like it. An enum member of an unregistered enum comes back
the same way. *Encoding an instance does not register its class*: what a decode gives is
a function of the bytes and the explicit registry only, never of what the process
happened to encode before.

A registered class carries a version. Decoding a value stored with an older version runs
the class's ``upcast(fields, stored_version) -> fields`` first, wherever the value comes
from (an event, a snapshot, a bundle); the stored bytes never change, so the hash chain
and ``verify`` are unaffected.

Personal values
===============

A value wrapped in :class:`~eventlog.personal.Personal` is stored as a commitment (an
extension value of 32 bytes) and sealed into the log's vault, apart from the events
(:mod:`eventlog.personal`). Only :func:`encode_event` given a ``sealed`` list can store
one (a log's append does this); anywhere else (a snapshot, a bare :func:`encode`) an
unsealed personal value is an :class:`~eventlog.errors.EventEncodingError` naming its
path. A sealed one (read back from a log) is stored as its commitment again.

Values nothing can represent
============================

A lock, a socket, a generator, a function, an object of a plain unregistered class...:
:func:`encode` raises :class:`~eventlog.errors.EventEncodingError` naming the value's
path and what to do, unless called with ``lenient=True`` (for stores that must accept
anything, as routilux 0.10's in-memory jobs did). Then the value is stored as an
:class:`Unrepresentable` placeholder (its type and ``repr``) and one
:class:`~eventlog.errors.UnrepresentableValueWarning` is issued per type.

Canonical bytes
===============

The bytes are a function of the value's types and contents: dict keys keep their
insertion order (it is part of a Python dict's value), set items are sorted by their
own encoded bytes (a set's iteration order is not), so two equal sets built in
different orders, or in two processes with different hash seeds, encode alike. Decoding
and re-encoding stored bytes gives the same bytes (except for a registered type read
through an upcaster, by design).

Decoding is hardened: lengths are bounded by the payload, nesting by :data:`MAX_DEPTH`,
unknown extension types and malformed extension payloads are refused; every failure is
one :class:`~eventlog.errors.RecordDecodeError`, never a hang, ``MemoryError`` or
``RecursionError``.
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import decimal
import enum
import pathlib
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import msgpack

from .errors import EventEncodingError, RecordDecodeError, RecordTooLargeError, UnrepresentableValueWarning
from .personal import COMMITMENT_SIZE, EXT_PERSONAL, Personal, SealedValue, seal
from .usertypes import (
    StoredObject,
    Unrepresentable,
    build,
    is_storable_object,
    object_fields,
    register_type,
    registered_types,
    registration_for,
    registration_named,
    type_path,
    unregister_type,
)

__all__ = [
    "MAX_DEPTH",
    "Containers",
    "MAX_RECORD_BYTES",
    "SNAPSHOT_MAX_BYTES",
    "SNAPSHOT_MAX_DEPTH",
    "StoredObject",
    "EventSplitter",
    "Personal",
    "Unrepresentable",
    "decode",
    "decode_event",
    "decode_state",
    "encode",
    "encode_event",
    "encode_state",
    "event_kind",
    "register_type",
    "registered_types",
    "split_event",
    "type_path",
    "unregister_type",
]

#: Deepest nesting of containers accepted in event data (the top-level value is depth 1).
MAX_DEPTH = 64
#: Largest encoded event accepted, in bytes.
MAX_RECORD_BYTES = 16 * 1024 * 1024
#: Snapshot states may nest a few levels deeper than event data (they wrap it).
SNAPSHOT_MAX_DEPTH = MAX_DEPTH + 8
#: Largest encoded snapshot state accepted, in bytes.
SNAPSHOT_MAX_BYTES = 1 << 30

# Extension type codes (msgpack reserves the negative ones; -1 is its Timestamp, used
# for aware UTC datetimes exactly as the first version of this codec wrote them).
EXT_TUPLE = 1
EXT_SET = 2
EXT_FROZENSET = 3
EXT_DATETIME = 4
EXT_DATE = 5
EXT_TIME = 6
EXT_TIMEDELTA = 7
EXT_DECIMAL = 8
EXT_UUID = 9
EXT_ENUM = 10
EXT_PATH = 11
EXT_BIGINT = 12
EXT_OBJECT = 13
EXT_UNREPRESENTABLE = 14
# EXT_PERSONAL = 15 (eventlog.personal): a personal value's 32-byte commitment.

# msgpack type bytes that open a container (fixmap, fixarray, array16/32, map16/32). The
# count of such bytes in a payload bounds its nesting depth (bytes inside strings only
# cause false alarms, which cost an exact check).
_CONTAINER_BYTES = bytes([*range(0x80, 0xA0), 0xDC, 0xDD, 0xDE, 0xDF])
# Maps those bytes to 0 and every other byte to 1: ``payload.translate(_CONTAINERS_TO_ZERO).count(0)``
# counts them (cheaper than deleting the others: no translation table is built per call).
_CONTAINERS_TO_ZERO = bytes(0 if b in _CONTAINER_BYTES else 1 for b in range(256))
_PATH_TAGS: tuple[type[pathlib.PurePath], ...] = (
    pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath, pathlib.PureWindowsPath)


# -- encoding ------------------------------------------------------------------------
class _Unencodable(Exception):
    """Raised inside the packer for a value that cannot be stored (strict mode)."""


class _NoVault(Exception):
    """Raised inside the packer for a personal value it cannot store: no vault takes it, or its value cannot be stored.

    Not one of the exceptions the lenient paths turn into placeholders: a personal value
    is never silently dropped or replaced.
    """


# Where a personal value met by the packer is sealed into: the list of the encode_event
# call running in this thread (or task), or None (no vault: refuse it). A ContextVar
# rather than a threading.local: it is read for every event appended, and reads cost a
# third as much.
_collector: contextvars.ContextVar[list[SealedValue] | None] = contextvars.ContextVar("eventlog_sealing",
                                                                                       default=None)
_current_collector = _collector.get


def _personal_ext(obj: Personal) -> msgpack.ExtType:
    """A personal value's commitment extension, sealing its value into this thread's collector."""
    commitment = obj.commitment
    if commitment is None:
        collector = _current_collector()
        if collector is None:
            raise _NoVault(obj)
        token = _collector.set(None)  # a personal value nested inside it is refused, not sealed
        try:
            sealed = seal(_encode(obj.value, "value", MAX_DEPTH, MAX_RECORD_BYTES, False))
        except EventEncodingError:
            raise _NoVault(obj) from None  # _find_problem names the value's own problem
        finally:
            _collector.reset(token)
        collector.append(sealed)
        commitment = sealed.commitment
    return msgpack.ExtType(EXT_PERSONAL, commitment)


_warned_types: set[type] = set()


def _placeholder(obj: Any) -> msgpack.ExtType:
    cls = type(obj)
    if cls not in _warned_types:
        _warned_types.add(cls)
        warnings.warn(
            f"a {type_path(cls)} value cannot be stored; a placeholder (its type and repr) is stored "
            "instead. Register its class with eventlog.register_type, or store plain data",
            UnrepresentableValueWarning, stacklevel=2)
    try:
        text = repr(obj)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not stop the caller
        text = f"<{cls.__qualname__} object>"
    return msgpack.ExtType(EXT_UNREPRESENTABLE, _pack_plain([type_path(cls), text[:200]]))


def _datetime_payload(value: _dt.datetime | _dt.time, offset: _dt.timedelta | None) -> int | None:
    if offset is None:
        return None
    return (offset.days * 86_400 + offset.seconds) * 1_000_000 + offset.microseconds


def _to_ext(obj: Any, lenient: bool) -> Any:
    """What the packer packs instead of ``obj`` (a non-native value): an ExtType or a plain value."""
    cls = type(obj)
    if cls is tuple:
        return msgpack.ExtType(EXT_TUPLE, _pack_nested(list(obj), lenient))
    if cls is set or cls is frozenset:
        items = sorted(_pack_nested(item, lenient) for item in obj)
        return msgpack.ExtType(EXT_SET if cls is set else EXT_FROZENSET, _array_header(len(items)) + b"".join(items))
    if cls is int:  # outside the 64-bit range msgpack has
        return msgpack.ExtType(EXT_BIGINT, obj.to_bytes((obj.bit_length() + 8) // 8, "big", signed=True))
    if cls is _dt.datetime:
        offset = obj.utcoffset()
        if offset is not None and not offset and not obj.fold:
            # UTC: msgpack's own Timestamp, byte for byte what the first codec wrote.
            return msgpack.Timestamp.from_datetime(obj)
        return msgpack.ExtType(EXT_DATETIME, _pack_plain(
            [obj.year, obj.month, obj.day, obj.hour, obj.minute, obj.second, obj.microsecond, obj.fold,
             _datetime_payload(obj, offset)]))
    if cls is _dt.date:
        return msgpack.ExtType(EXT_DATE, _pack_plain(obj.toordinal()))
    if cls is _dt.time:
        return msgpack.ExtType(EXT_TIME, _pack_plain(
            [obj.hour, obj.minute, obj.second, obj.microsecond, obj.fold, _datetime_payload(obj, obj.utcoffset())]))
    if cls is _dt.timedelta:
        return msgpack.ExtType(EXT_TIMEDELTA, _pack_plain([obj.days, obj.seconds, obj.microseconds]))
    if cls is decimal.Decimal:
        return msgpack.ExtType(EXT_DECIMAL, str(obj).encode("ascii"))
    if cls is uuid.UUID:
        return msgpack.ExtType(EXT_UUID, obj.bytes)
    if cls is StoredObject:  # re-stored exactly as it was read
        if obj.is_enum:
            return msgpack.ExtType(EXT_ENUM, _pack_nested([obj.type_path, obj.fields["name"], obj.fields["value"]],
                                                          lenient))
        return msgpack.ExtType(EXT_OBJECT, _pack_nested([obj.type_path, obj.version, dict(obj.fields)], lenient))
    if cls is Unrepresentable:
        return msgpack.ExtType(EXT_UNREPRESENTABLE, _pack_plain([obj.type_path, obj.text]))
    if cls is Personal:
        return _personal_ext(obj)
    entry = registration_for(cls)
    if isinstance(obj, enum.Enum):
        name = entry.name if entry is not None else type_path(cls)
        return msgpack.ExtType(EXT_ENUM, _pack_nested([name, obj.name, obj.value], lenient))
    if entry is not None or is_storable_object(obj):
        fields = object_fields(obj)
        name = entry.name if entry is not None else type_path(cls)
        version = entry.version if entry is not None else 1
        return msgpack.ExtType(EXT_OBJECT, _pack_nested([name, version, fields], lenient))
    if isinstance(obj, pathlib.PurePath):
        tag = next(i for i, flavour in enumerate(_PATH_TAGS) if isinstance(obj, flavour))
        return msgpack.ExtType(EXT_PATH, _pack_plain([tag, str(obj)]))
    # Subclasses of the built-in types are stored as their base type (documented).
    if isinstance(obj, dict):
        return dict(obj.items())
    if isinstance(obj, list):
        return list(obj)
    if isinstance(obj, str):
        return str.__str__(obj)
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int.__int__(obj)
    if isinstance(obj, float):
        return float.__float__(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj)
    if isinstance(obj, tuple):
        return msgpack.ExtType(EXT_TUPLE, _pack_nested(list(obj), lenient))
    # Subclasses of the standard value types: stored as the base type (the hook is asked
    # once per value by msgpack, so the base value is converted here, not returned).
    if isinstance(obj, _dt.datetime):
        return _to_ext(_dt.datetime(obj.year, obj.month, obj.day, obj.hour, obj.minute, obj.second,
                                    obj.microsecond, obj.tzinfo, fold=obj.fold), lenient)
    if isinstance(obj, _dt.date):
        return _to_ext(_dt.date(obj.year, obj.month, obj.day), lenient)
    if isinstance(obj, _dt.time):
        return _to_ext(_dt.time(obj.hour, obj.minute, obj.second, obj.microsecond, obj.tzinfo, fold=obj.fold),
                       lenient)
    if isinstance(obj, _dt.timedelta):
        return _to_ext(_dt.timedelta(obj.days, obj.seconds, obj.microseconds), lenient)
    if isinstance(obj, decimal.Decimal):
        return _to_ext(decimal.Decimal(obj), lenient)
    if isinstance(obj, uuid.UUID):
        return _to_ext(uuid.UUID(int=obj.int), lenient)
    if isinstance(obj, frozenset):
        return _to_ext(frozenset(obj), lenient)
    if isinstance(obj, set):
        return _to_ext(set(obj), lenient)
    if lenient:
        return _placeholder(obj)
    raise _Unencodable(obj)


def _strict_default(obj: Any) -> Any:
    return _to_ext(obj, False)


def _lenient_default(obj: Any) -> Any:
    return _to_ext(obj, True)


def _new_packer(lenient: bool) -> msgpack.Packer:
    # strict_types: only the exact built-in types are packed natively; everything else
    # (tuples, subclasses, datetimes, ...) goes through the default hook, so no value is
    # silently changed by msgpack's own conversions. datetime=False for the same reason.
    return msgpack.Packer(default=_lenient_default if lenient else _strict_default, use_bin_type=True,
                          strict_types=True, datetime=False, autoreset=True)


# Free lists of packers, one per mode. A packer is taken for one call and put back: the
# default hook runs Python code, so another thread may pack meanwhile and must not share
# the packer's buffer, and a nested call (a tuple's items) needs a packer of its own.
# list.pop() and list.append() are atomic, which is all the locking this needs.
_free_strict: list[msgpack.Packer] = []
_free_lenient: list[msgpack.Packer] = []


def _pack_nested(value: Any, lenient: bool) -> bytes:
    free = _free_lenient if lenient else _free_strict
    try:
        packer = free.pop()
    except IndexError:
        packer = _new_packer(lenient)
    try:
        packed: bytes = packer.pack(value)
    finally:
        free.append(packer)
    return packed


def _pack_plain(value: Any) -> bytes:
    """Pack a value made only of native types (extension payloads built here)."""
    return _pack_nested(value, False)


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def encode(value: Any, *, path: str = "data", max_depth: int = MAX_DEPTH, max_bytes: int = MAX_RECORD_BYTES,
           lenient: bool = False) -> bytes:
    """Encode ``value`` canonically.

    Args:
        path: how to name the value in error messages (``data`` gives ``data['x'][3]``).
        max_depth: deepest nesting accepted.
        max_bytes: largest encoding accepted.
        lenient: store values nothing can represent as :class:`Unrepresentable`
            placeholders (one warning per type) instead of raising.

    Raises:
        EventEncodingError: (a ``TypeError`` and ``ValueError``) a value cannot be
            stored, it contains itself, or it nests deeper than ``max_depth``; the
            message names its path and what to do.
        RecordTooLargeError: (a ``ValueError``) the encoding exceeds ``max_bytes``.
    """
    return _encode(value, path, max_depth, max_bytes, lenient)


class _Retry(Exception):
    """Raised by a probing :func:`_encode` instead of handling a problem (the caller takes the careful path)."""


def _encode(value: Any, path: str, max_depth: int, max_bytes: int, lenient: bool, probe: bool = False) -> bytes:
    """:func:`encode` with positional arguments (it runs once per event).

    ``probe``: raise :class:`_Retry` on any problem (a value that cannot be stored, a
    personal value, nesting too deep) instead of naming it or storing placeholders.
    """
    free = _free_lenient if lenient else _free_strict
    try:
        packer = free.pop()
    except IndexError:
        packer = _new_packer(lenient)
    try:
        payload: bytes = packer.pack(value)
    except (_Unencodable, ValueError, OverflowError, UnicodeEncodeError, TypeError) as exc:
        if probe:
            raise _Retry from None
        payload = _encode_with_care(value, path, max_depth, lenient, exc)
    except _NoVault:
        if probe:
            raise _Retry from None
        found = _find_problem(value, path, max_depth, False)
        raise EventEncodingError(*(found or (path, _PERSONAL_OUTSIDE))) from None
    finally:
        free.append(packer)
    # The count of container-opening bytes bounds the nesting depth: only when it could
    # exceed the limit is the value walked to be sure (a str holding such bytes is a
    # false alarm that costs the walk).
    if len(payload) > max_depth and payload.translate(_CONTAINERS_TO_ZERO).count(0) > max_depth \
            and _depth_exceeds(value, max_depth):
        # (The packer succeeded, so nesting is the only problem left; the walk that names
        # it builds a path string per value, hence the cheap check first.)
        if probe:
            raise _Retry
        found = _find_problem(value, path, max_depth, lenient)
        if found is not None:
            if not lenient:
                raise EventEncodingError(*found)
            payload = _pack_lenient(value, max_depth)
    if len(payload) > max_bytes:
        raise RecordTooLargeError(path, f"encodes to {len(payload)} bytes, more than the limit of {max_bytes} bytes")
    return payload


def _encode_with_care(value: Any, path: str, max_depth: int, lenient: bool, cause: BaseException) -> bytes:
    """The packer failed: name the problem (strict), or store placeholders for it (lenient)."""
    if lenient:
        return _pack_lenient(value, max_depth)
    found = _find_problem(value, path, max_depth, lenient)
    if found is None:
        raise EventEncodingError(path, f"cannot be encoded: {cause}") from cause
    raise EventEncodingError(*found) from None


def _children(value: Any) -> Iterator[tuple[str, Any]] | None:
    """``(path suffix, child)`` of a container the codec descends into; None for a leaf.

    One definition for the encoder's error paths, its depth check and the decoder's.
    """
    if isinstance(value, dict):
        return (item for key, child in value.items()
                for item in ((f"<key {key!r}>", key), (f"[{key!r}]", child)))
    if isinstance(value, (list, tuple)) and not is_storable_object(value):
        return ((f"[{i}]", child) for i, child in enumerate(value))
    if isinstance(value, (set, frozenset)):
        return ((f"<item {child!r}>", child) for child in value)
    if isinstance(value, StoredObject):
        return ((f".{name}", child) for name, child in value.fields.items())
    if isinstance(value, enum.Enum):
        return iter((("._value_", value.value),))
    if is_storable_object(value):
        fields = object_fields(value) or {}
        return ((f".{name}", child) for name, child in fields.items())
    return None


_PERSONAL_OUTSIDE = ("a personal value can only be stored in an event appended to a log (its vault keeps the "
                     "value); not in a snapshot or on its own")


def _leaf_problem(value: Any) -> str | None:
    """Why a leaf value cannot be stored, or None (asks the packer's own hook, so the two agree)."""
    cls = type(value)
    if cls is Personal:
        # Asked without sealing anything: only whether this call could store it.
        if value.is_sealed:
            return None
        if _current_collector() is None:
            return _PERSONAL_OUTSIDE
        inner = _find_problem(value.value, "value", MAX_DEPTH, False)
        return None if inner is None else f"the personal value's {inner[0]}: {inner[1]}"
    if cls is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"str is not valid unicode ({exc.reason} at index {exc.start}) and cannot be stored"
        return None
    if value is None or cls in _NATIVE_LEAVES:
        return None
    try:
        _to_ext(value, False)
    except _Unencodable:
        return (f"{type_path(cls)} cannot be stored: store plain data, or make its class a dataclass "
                "or attrs class and register it with eventlog.register_type")
    except Exception as exc:  # noqa: BLE001 - reported as the value's problem
        return f"{type_path(cls)} cannot be encoded ({type(exc).__name__}: {exc})"
    return None


_NATIVE_LEAVES = frozenset({bool, int, float, bytes, bytearray, memoryview})


def _find_problem(value: Any, root: str, max_depth: int, lenient: bool) -> tuple[str, str] | None:
    """Return ``(path, problem)`` for the first value that cannot be stored, or None.

    Iterative, so hostile depth cannot overflow the stack; cycles are found by tracking
    the ids of the containers on the current path.
    """
    stack: list[tuple[Any, str, int, frozenset[int]]] = [(value, root, 1, frozenset())]
    while stack:
        item, path, depth, on_path = stack.pop()
        children = _children(item)
        if children is None:
            if not lenient:
                problem = _leaf_problem(item)
                if problem is not None:
                    return path, problem
            continue
        if id(item) in on_path:
            return path, f"{type(item).__name__} contains itself (a cycle) and cannot be stored"
        if depth > max_depth:
            return path, f"nesting deeper than {max_depth} levels cannot be stored"
        inner = on_path | {id(item)}
        stack.extend(reversed([(child, path + suffix, depth + 1, inner) for suffix, child in children]))
    return None


def _sanitized(value: Any, max_depth: int) -> Any:
    """A copy of ``value`` with cycles, too-deep parts and unstorable strs replaced by placeholders.

    Only used in lenient mode after the packer failed (rare). Containers are copied;
    everything else is kept for the packer (whose hook stores placeholders for the rest).
    """
    def walk(item: Any, depth: int, on_path: frozenset[int]) -> Any:
        if type(item) is str:
            return item if _leaf_problem(item) is None else _placeholder(item)
        if not isinstance(item, (dict, list, tuple, set, frozenset)) or is_storable_object(item):
            return item
        if id(item) in on_path or depth > max_depth:
            return _placeholder(item)
        inner = on_path | {id(item)}
        if isinstance(item, dict):
            return {walk(k, depth + 1, inner): walk(v, depth + 1, inner) for k, v in item.items()}
        items = [walk(v, depth + 1, inner) for v in item]
        if isinstance(item, list):
            return items
        if isinstance(item, tuple):
            return tuple(items)
        return frozenset(items) if isinstance(item, frozenset) else set(items)

    return walk(value, 1, frozenset())


def _pack_lenient(value: Any, max_depth: int) -> bytes:
    """Lenient mode after a failure: placeholders for what cannot be stored, never an error."""
    try:
        return _pack_nested(_sanitized(value, max_depth), True)
    except Exception:  # noqa: BLE001 - e.g. a cycle inside a user object: the whole value
        return _pack_nested(_placeholder(value), True)


# -- decoding -------------------------------------------------------------------------
class Containers(NamedTuple):
    """What a decode builds in place of the plain ``dict``, ``list`` and ``set`` (see :func:`decode`).

    Each is called with the plain container just decoded (its items decoded already) and
    returns what takes its place: a read-only copy, typically. The layers above use this
    to build their own container types in one pass instead of copying a decoded value.
    """

    #: Called with each decoded ``dict``.
    make_dict: Callable[[dict[Any, Any]], Any]
    #: Called with each decoded ``list``.
    make_list: Callable[[list[Any]], Any]
    #: Called with each decoded ``set`` (never a ``frozenset``, which is immutable already).
    make_set: Callable[[set[Any]], Any]


class _DecodeState(threading.local):
    depth = 0
    # The containers of the running decode, for the extension types whose items are part
    # of the value (tuples, sets); None while decoding any other extension's payload.
    containers: Containers | None = None


_decode_state = _DecodeState()


def _unpack_inner(data: bytes, containers: Containers | None = None) -> Any:
    if containers is None:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, timestamp=3, ext_hook=_ext_hook)
    return msgpack.unpackb(data, raw=False, strict_map_key=False, timestamp=3, ext_hook=_ext_hook,
                           object_hook=containers.make_dict, list_hook=containers.make_list)


def _ints(value: Any, n: int, what: str) -> list[Any]:
    if type(value) is not list or len(value) != n:
        msg = f"malformed {what} extension"
        raise ValueError(msg)
    return value


def _offset(us: Any) -> _dt.tzinfo | None:
    if us is None:
        return None
    if type(us) is not int:
        msg = "malformed utc offset"
        raise ValueError(msg)
    return _dt.timezone.utc if us == 0 else _dt.timezone(_dt.timedelta(microseconds=us))


def _decode_ext(code: int, data: bytes) -> Any:
    if code == EXT_TUPLE:
        containers = _decode_state.containers
        items = _unpack_inner(data, containers)
        if not isinstance(items, list):
            raise ValueError("malformed tuple extension")
        return tuple(items)
    if code == EXT_SET or code == EXT_FROZENSET:
        containers = _decode_state.containers
        items = _unpack_inner(data, containers)
        if not isinstance(items, list):
            raise ValueError("malformed set extension")
        if code == EXT_FROZENSET:
            return frozenset(items)
        return set(items) if containers is None else containers.make_set(set(items))
    if code == EXT_BIGINT:
        if not data:
            raise ValueError("empty big int extension")
        return int.from_bytes(data, "big", signed=True)
    if code == EXT_DATETIME:
        y, mo, d, h, mi, s, us, fold, off = _ints(_unpack_inner(data), 9, "datetime")
        return _dt.datetime(y, mo, d, h, mi, s, us, tzinfo=_offset(off), fold=fold)
    if code == EXT_DATE:
        ordinal = _unpack_inner(data)
        if type(ordinal) is not int:
            raise ValueError("malformed date extension")
        return _dt.date.fromordinal(ordinal)
    if code == EXT_TIME:
        h, mi, s, us, fold, off = _ints(_unpack_inner(data), 6, "time")
        return _dt.time(h, mi, s, us, tzinfo=_offset(off), fold=fold)
    if code == EXT_TIMEDELTA:
        days, seconds, micro = _ints(_unpack_inner(data), 3, "timedelta")
        if not all(type(x) is int for x in (days, seconds, micro)):
            raise ValueError("malformed timedelta extension")
        return _dt.timedelta(days=days, seconds=seconds, microseconds=micro)
    if code == EXT_DECIMAL:
        return decimal.Decimal(data.decode("ascii"))
    if code == EXT_UUID:
        return uuid.UUID(bytes=data)
    if code == EXT_PATH:
        tag, text = _ints(_unpack_inner(data), 2, "path")
        if type(text) is not str or type(tag) is not int or not 0 <= tag < len(_PATH_TAGS):
            raise ValueError("malformed path extension")
        cls = _PATH_TAGS[tag]
        try:
            return cls(text)
        except NotImplementedError:  # a concrete path of another system: its pure flavour
            return _PATH_TAGS[tag + 2 if tag < 2 else tag](text)
    if code == EXT_ENUM:
        name, member, value = _ints(_unpack_inner(data), 3, "enum")
        if type(name) is not str or type(member) is not str:
            raise ValueError("malformed enum extension")
        entry = registration_named(name)
        if entry is not None:
            return build(entry, {"name": member, "value": value}, entry.version)
        return StoredObject(name, {"name": member, "value": value}, is_enum=True)
    if code == EXT_OBJECT:
        name, version, fields = _ints(_unpack_inner(data), 3, "object")
        if type(name) is not str or type(version) is not int or type(fields) is not dict \
                or not all(type(k) is str for k in fields):
            raise ValueError("malformed object extension")
        entry = registration_named(name)
        if entry is not None:
            return build(entry, fields, version)
        return StoredObject(name, fields, version)
    if code == EXT_PERSONAL:
        if len(data) != COMMITMENT_SIZE:
            raise ValueError("malformed personal value extension")
        return Personal.sealed(data)
    if code == EXT_UNREPRESENTABLE:
        name, text = _ints(_unpack_inner(data), 2, "placeholder")
        if type(name) is not str or type(text) is not str:
            raise ValueError("malformed placeholder extension")
        return Unrepresentable(name, text)
    msg = f"unknown msgpack extension type {code}"
    raise ValueError(msg)


def _ext_hook(code: int, data: bytes) -> Any:
    # Extensions nest by calling back into msgpack: bound that recursion (a hostile
    # payload could nest thousands deep) before it can exhaust the stack.
    state = _decode_state
    if state.depth >= MAX_DEPTH + 8:
        msg = "extension types nested too deep"
        raise ValueError(msg)
    state.depth += 1
    containers = state.containers
    try:
        if containers is None or code == EXT_TUPLE or code == EXT_SET or code == EXT_FROZENSET:
            return _decode_ext(code, data)
        # The payload of any other extension (a user object's fields, an enum's value...)
        # is that object's own data: it is decoded with the plain containers.
        state.containers = None
        try:
            return _decode_ext(code, data)
        finally:
            state.containers = containers
    finally:
        state.depth -= 1


# Leaves the depth walk skips without asking _children (the common scalars).
_SCALAR_TYPES = frozenset({str, int, float, bool, type(None), bytes})


def _depth_exceeds(value: Any, max_depth: int) -> bool:
    """Whether ``value`` nests containers deeper than ``max_depth`` (the top level is depth 1).

    The codec's one definition of nesting is :func:`_children` (which the encoder's error
    paths use too); this walk asks it for everything but plain dicts, lists and tuples,
    whose children it reads directly. It runs whenever the cheap byte count of a payload
    cannot rule the limit out -- for every large list of integers, whose bytes look like
    containers -- so it must not build the path strings :func:`_children` yields
    (tests/eventlog pins it to the generic walk).
    """
    scalars = _SCALAR_TYPES
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop = stack.pop
    push = stack.append
    while stack:
        item, depth = pop()
        cls = type(item)
        children: Any
        if cls is dict:
            children = (*item.keys(), *item.values())
        elif cls is list or cls is tuple:
            children = item
        else:
            found = _children(item)
            if found is None:
                continue
            children = [child for _, child in found]
        if depth > max_depth:
            return True
        depth += 1
        for child in children:
            if type(child) not in scalars:
                push((child, depth))
    return False


def decode(payload: bytes, *, where: str = "<bytes>", offset: int | None = None, seq: int | None = None,
           max_depth: int = MAX_DEPTH, containers: Containers | None = None) -> Any:
    """Decode bytes made by :func:`encode`, refusing anything hostile.

    Lengths inside the payload are bounded by its size, unknown or malformed extension
    types are refused, and nesting deeper than ``max_depth`` is refused.

    ``containers``: build every ``dict``, ``list`` and ``set`` of the value with these
    constructors instead (at every depth, inside tuples too; not inside the fields of a
    user object or other extension values, which keep the plain types). The result equals
    decoding plainly and converting each container afterwards, in one pass. ``make_list``
    must return a ``list`` (a subclass is fine); the constructors must not decode.

    Raises:
        RecordDecodeError: naming ``where``, ``offset`` and ``seq``.
    """
    if containers is not None:
        return _decode_into(payload, where, offset, seq, max_depth, containers)
    return _decode(payload, where, offset, seq, max_depth)


def _decode_into(payload: bytes, where: str, offset: int | None, seq: int | None, max_depth: int,
                 containers: Containers) -> Any:
    """:func:`decode` building the containers with ``containers``."""
    state = _decode_state
    outer = state.containers
    state.containers = containers
    try:
        value = msgpack.unpackb(payload, raw=False, strict_map_key=False, timestamp=3, ext_hook=_ext_hook,
                                object_hook=containers.make_dict, list_hook=containers.make_list)
    except Exception as exc:  # every msgpack or extension failure becomes one clear error
        raise RecordDecodeError(where, offset, seq, f"undecodable record payload ({exc})") from None
    finally:
        state.containers = outer
    return _depth_checked(value, payload, where, offset, seq, max_depth)


def _decode(payload: bytes, where: str, offset: int | None, seq: int | None, max_depth: int) -> Any:
    """:func:`decode` with positional arguments (it runs once per event read)."""
    # (Extension payloads that hold user code's data -- an upcaster may decode -- run
    # with no containers set: see _ext_hook.)
    try:
        value = msgpack.unpackb(payload, raw=False, strict_map_key=False, timestamp=3, ext_hook=_ext_hook)
    except Exception as exc:  # every msgpack or extension failure becomes one clear error
        raise RecordDecodeError(where, offset, seq, f"undecodable record payload ({exc})") from None
    return _depth_checked(value, payload, where, offset, seq, max_depth)


def _depth_checked(value: Any, payload: bytes, where: str, offset: int | None, seq: int | None,
                   max_depth: int) -> Any:
    """``value`` decoded from ``payload``, or the error for nesting deeper than ``max_depth``."""
    if len(payload) > max_depth and payload.translate(_CONTAINERS_TO_ZERO).count(0) > max_depth \
            and _depth_exceeds(value, max_depth):
        raise RecordDecodeError(where, offset, seq, f"record nested deeper than {max_depth} levels")
    return value


def encode_state(state: Any) -> bytes:
    """Encode a snapshot state (the snapshot limits: :data:`SNAPSHOT_MAX_DEPTH`, :data:`SNAPSHOT_MAX_BYTES`)."""
    return encode(state, path="state", max_depth=SNAPSHOT_MAX_DEPTH, max_bytes=SNAPSHOT_MAX_BYTES)


def decode_state(body: bytes, *, where: str = "<snapshot>") -> Any:
    """Decode a snapshot state made by :func:`encode_state`.

    Raises:
        RecordDecodeError: hostile or malformed bytes.
    """
    return decode(body, where=where, max_depth=SNAPSHOT_MAX_DEPTH)


# -- events: [kind, data] ---------------------------------------------------------------
_EVENT_DEPTH = MAX_DEPTH + 1  # the [kind, data] pair adds one level to the data's own
_packed_kinds: dict[str, bytes] = {}


def _kind_prefix(kind: Any) -> bytes:
    """``0x92`` (an array of two) and the packed kind: the first bytes of every event."""
    prefix = _packed_kinds.get(kind) if type(kind) is str else None
    if prefix is None:
        if not isinstance(kind, str) or not kind:
            raise EventEncodingError("kind", f"event kind must be a non-empty str, got {kind!r}")
        kind = str.__str__(kind)  # a str enum is stored as its plain value
        prefix = b"\x92" + _pack_plain(kind)
        if len(_packed_kinds) < 4096:
            _packed_kinds[kind] = prefix
    return prefix


def encode_event(kind: str, data: Mapping[str, Any], lenient: bool = False,
                 sealed: list[SealedValue] | None = None) -> bytes:
    """Return the canonical bytes of one event: msgpack ``[kind, data]``.

    These bytes are what the hash chain covers and what every backend stores.
    ``lenient``: see :func:`encode`. ``sealed``: personal values (:class:`Personal`) in
    ``data`` are stored as commitments and their secrets appended to this list, for the
    log's vault (pass it to the append with the bytes); without it they are refused.

    Raises:
        EventEncodingError: ``kind`` is not a non-empty str, ``data`` is not a dict, or a
            value cannot be stored; the message names the path (``data['items'][3]: ...``).
        RecordTooLargeError: the event exceeds :data:`MAX_RECORD_BYTES`.
    """
    try:
        prefix = _packed_kinds[kind] if type(kind) is str else _kind_prefix(kind)
    except KeyError:
        prefix = _kind_prefix(kind)
    if type(data) is not dict and not isinstance(data, dict):
        raise EventEncodingError("data", f"event data must be a dict, got {type(data).__name__}")
    if sealed is None:
        payload = _encode(data, "data", MAX_DEPTH, MAX_RECORD_BYTES, lenient)
    elif _current_collector() is None:
        # Most events hold no personal value and nothing to replace: packed strictly with
        # no vault, they give exactly the bytes of the careful path, which runs only when
        # this probe meets a problem (a personal value raises it, unsealed).
        try:
            payload = _encode(data, "data", MAX_DEPTH, MAX_RECORD_BYTES, False, True)
        except _Retry:
            payload = _encode_sealing(data, lenient, sealed)
    else:  # an encode running inside another's sealing (a hook that encodes): no probe
        payload = _encode_sealing(data, lenient, sealed)
    event = prefix + payload
    if len(event) > MAX_RECORD_BYTES:
        raise RecordTooLargeError("data", f"the event encodes to {len(event)} bytes, more than the limit "
                                          f"of {MAX_RECORD_BYTES} bytes")
    return event


def _encode_sealing(data: Mapping[str, Any], lenient: bool, sealed: list[SealedValue]) -> bytes:
    """Encode event data with its personal values sealed into ``sealed`` (the careful path)."""
    collector: list[SealedValue] = []
    token = _collector.set(collector)
    try:
        payload = _encode(data, "data", MAX_DEPTH, MAX_RECORD_BYTES, lenient)
    finally:
        _collector.reset(token)
    if collector:
        # A failed first packing attempt (retried with care) may have sealed values the
        # final bytes do not hold: keep only the commitments that are in them.
        sealed.extend(entry for entry in collector if entry.commitment in payload)
    return payload


def decode_event(event_bytes: bytes, *, where: str = "<memory>", offset: int | None = None,
                 seq: int | None = None) -> tuple[str, dict[str, Any]]:
    """Decode bytes made by :func:`encode_event` into ``(kind, data)``.

    Raises:
        RecordDecodeError: hostile or malformed bytes, or not a ``[kind, data]`` pair.
    """
    value = _decode(event_bytes, where, offset, seq, _EVENT_DEPTH)
    if type(value) is not list or len(value) != 2 or type(value[0]) is not str or type(value[1]) is not dict:
        raise RecordDecodeError(where, offset, seq, "record is not a [kind, data] pair")
    return value[0], value[1]


def _str_at(buf: bytes, pos: int) -> tuple[str, int] | None:
    """The msgpack str at ``buf[pos]`` and the position after it, or None if it is not one."""
    if pos >= len(buf):
        return None
    head = buf[pos]
    if 0xA0 <= head <= 0xBF:
        start, n = pos + 1, head & 0x1F
    elif head == 0xD9 and pos + 2 <= len(buf):
        start, n = pos + 2, buf[pos + 1]
    elif head == 0xDA and pos + 3 <= len(buf):
        start, n = pos + 3, int.from_bytes(buf[pos + 1 : pos + 3], "big")
    else:
        return None
    end = start + n
    if end > len(buf):
        return None
    try:
        return buf[start:end].decode("utf-8"), end
    except UnicodeDecodeError:
        return None


def event_kind(event_bytes: bytes) -> str | None:
    """The kind of an encoded event, read without decoding its data (None if malformed)."""
    if event_bytes[:1] != b"\x92":
        return None
    found = _str_at(event_bytes, 1)
    return None if found is None else found[0]


class EventSplitter:
    """Reads events whose data is ``{names[0]: str, ..., names[-1]: any}`` without decoding the last value.

    ``split(event_bytes)`` returns the str values of the leading fields and, last, the
    encoded bytes of the last one: a slice of ``event_bytes``, exactly what :func:`encode`
    gives for that value. It returns None when the event has another shape (the caller
    then decodes it whole), or, with ``kind``, another kind. Only the kind, the field
    names and the strs are looked at, and the names are packed once, here: a reader that
    keeps large values encoded (decoding them only when they are read) calls this for
    every such event.

    The leading fields of a job's events repeat (a few routine ids, a few event names), so
    an event's bytes up to the last name, once checked by the full parse, are remembered
    with the strs they hold (at most :attr:`KNOWN_LIMIT` of them): the next event that
    starts with the same bytes is split by a dict lookup. Where those bytes end is found
    without checking anything (the first place the packed last name occurs, or where it
    would be if every leading value were a fixstr): an end found in bytes of another
    shape gives bytes that were never remembered, and the full parse runs. A lookup that
    succeeds is the check, byte for byte (the bytes up to the last name parse the same
    way wherever they are followed by).
    """

    __slots__ = ("_head_limit", "_head_lens", "_heads", "_kind", "_known", "_last", "_last_len")

    #: Most leading-field byte strings remembered; the memory is emptied when it is full.
    KNOWN_LIMIT = 4096

    def __init__(self, *names: str, kind: str | None = None) -> None:
        if not 2 <= len(names) <= 15:
            msg = "an event splitter needs 2 to 15 field names"
            raise ValueError(msg)
        packed = [_pack_plain(name) for name in names]
        # The map header (fixmap of len(names)) goes with the first name.
        self._heads = (bytes((0x80 | len(names),)) + packed[0], *packed[1:-1])
        self._head_lens = tuple(len(head) for head in self._heads)
        self._last = packed[-1]
        self._last_len = len(self._last)
        self._kind = None if kind is None else b"\x92" + _pack_plain(kind)
        # Where a remembered head ends at the latest: 0x92, a fixstr kind, the names, a
        # fixstr per leading value (the only heads remembered). The search for the last
        # name stops there, so an event of another shape costs the same however large.
        self._head_limit = 2 + 31 + sum(self._head_lens) + 32 * len(self._heads) + self._last_len
        self._known: dict[bytes, tuple[str, ...]] = {}

    def split(self, event_bytes: bytes) -> tuple[Any, ...] | None:
        """The leading str values and the encoded last value, or None (see the class)."""
        # The first packed last name past 0x92 and the kind's head byte, within the
        # longest remembered head (-1 if there is none: a short end, never remembered).
        end = event_bytes.find(self._last, 2, self._head_limit) + self._last_len
        known = self._known.get(event_bytes[:end])
        if known is not None and end < len(event_bytes):
            return known + (event_bytes[end:],)
        if self._kind is not None and not event_bytes.startswith(self._kind):
            return None  # another kind (a remembered head holds its kind: no hit above)
        return self._split_slow(event_bytes)

    def _split_slow(self, event_bytes: bytes) -> tuple[Any, ...] | None:
        """:meth:`split` of an event whose leading fields are not remembered where the fast end says."""
        try:
            # Past 0x92 and a fixstr kind; then, per leading field, its name and a fixstr
            # (its head byte minus 0x9F is the fixstr's whole size). A leading str holding
            # the packed last name misleads the fast end: this one is right for them.
            end = event_bytes[1] - 0x9E
            for size in self._head_lens:
                end += size + event_bytes[end + size] - 0x9F
            end += self._last_len
        except IndexError:
            end = -1  # not that shape, or cut short: the full parse decides
        else:
            known = self._known.get(event_bytes[:end])
            if known is not None:
                return known + (event_bytes[end:],) if end < len(event_bytes) else None
        parts = self._parse(event_bytes)
        if parts is not None and 0 < end == len(event_bytes) - len(parts[-1]):
            if len(self._known) >= self.KNOWN_LIMIT:
                self._known.clear()
            self._known[event_bytes[:end]] = parts[:-1]
        return parts

    def _parse(self, event_bytes: bytes) -> tuple[Any, ...] | None:
        """:meth:`split` the long way, every byte of the kind, names and strs checked."""
        try:
            kind_head = event_bytes[1]
            if event_bytes[0] != 0x92 or not 0xA0 <= kind_head <= 0xBF:
                return None  # not [fixstr kind, ...]: every kind this library writes is a fixstr
            pos = kind_head - 0x9E  # 2 + the kind's length
            out: list[Any] = []
            for head in self._heads:
                if not event_bytes.startswith(head, pos):
                    return None
                pos += len(head)
                h = event_bytes[pos]
                if 0xA0 <= h <= 0xBF:  # a fixstr (field values are short ids): the common case
                    start = pos + 1
                    pos = start + (h & 0x1F)
                elif h == 0xD9:
                    start = pos + 2
                    pos = start + event_bytes[pos + 1]
                else:
                    found = _str_at(event_bytes, pos)
                    if found is None:
                        return None
                    pos = found[1]
                    start = pos - len(found[0].encode("utf-8"))
                out.append(event_bytes[start:pos].decode("utf-8"))
            last = self._last
            if not event_bytes.startswith(last, pos) or pos + len(last) >= len(event_bytes):
                return None
        except (IndexError, UnicodeDecodeError):
            return None  # cut short, or not utf-8: the caller's decode reports it
        out.append(event_bytes[pos + len(last):])
        return tuple(out)


_splitters: dict[tuple[str, ...], EventSplitter] = {}


def split_event(event_bytes: bytes, *names: str) -> tuple[Any, ...] | None:
    """``EventSplitter(*names).split(event_bytes)`` (splitters are cached by names)."""
    splitter = _splitters.get(names)
    if splitter is None:
        splitter = _splitters[names] = EventSplitter(*names)
    return splitter.split(event_bytes)
