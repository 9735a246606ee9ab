"""User types in the log: the registry of classes a decode may rebuild, and read-only stand-ins.

A log is data, not code: a class is never imported or instantiated because a log names
it. Instances of dataclasses, attrs classes and named tuples (and of any class given to
:func:`register_type`) are stored by class path and fields; only a class registered in
the reading process is rebuilt (without running its ``__init__``, like pickle), through
its upcaster when the stored version is older. Anything else comes back as a read-only
:class:`StoredObject`; a value nothing can represent as an :class:`Unrepresentable`.
:mod:`eventlog.encoding` does the byte work and re-exports the public names.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, NoReturn, TypeVar, overload

import attrs

__all__ = [
    "Registration",
    "StoredObject",
    "Unrepresentable",
    "Upcaster",
    "build",
    "is_storable_object",
    "object_fields",
    "register_type",
    "registered_types",
    "registration_for",
    "registration_named",
    "type_path",
    "unregister_type",
]


def type_path(cls: type) -> str:
    """The name a class is stored under: ``"module:QualName"``."""
    return f"{cls.__module__}:{cls.__qualname__}"


class StoredObject:
    """A stored instance of a class that is not registered in this process (read-only).

    Attributes:
        type_path: the class as ``"module:QualName"``.
        fields: the stored fields (a read-only mapping); for an enum member,
            ``{"name": ..., "value": ...}``.
        version: the class version it was stored with.
        is_enum: True for an enum member.

    Fields read as attributes (``obj.x``). It compares equal to another record of the
    same class, version and fields, and to a live instance of a class with the same path
    and fields (for an enum member: the same name), so code comparing with the original
    keeps working. Register the class (:func:`register_type`) to get real instances.
    """

    __slots__ = ("_fields", "_is_enum", "_type_path", "_version")
    _fields: Mapping[str, Any]
    _is_enum: bool
    _type_path: str
    _version: int

    def __init__(self, type_path: str, fields: Mapping[str, Any], version: int = 1, *,
                 is_enum: bool = False) -> None:
        object.__setattr__(self, "_type_path", type_path)
        object.__setattr__(self, "_fields", MappingProxyType(dict(fields)))
        object.__setattr__(self, "_version", version)
        object.__setattr__(self, "_is_enum", is_enum)

    @property
    def type_path(self) -> str:
        """The stored class, ``"module:QualName"``."""
        return self._type_path

    @property
    def fields(self) -> Mapping[str, Any]:
        """The stored fields (read-only)."""
        return self._fields

    @property
    def version(self) -> int:
        """The class version the value was stored with."""
        return self._version

    @property
    def is_enum(self) -> bool:
        """True if this stands for an enum member."""
        return self._is_enum

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            msg = f"stored {self._type_path} object has no field {name!r}"
            raise AttributeError(msg) from None

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        msg = (f"a stored {self._type_path} object is read-only (its class is not registered; "
               "register it with eventlog.register_type to get real instances)")
        raise AttributeError(msg)

    __delattr__ = __setattr__  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StoredObject):
            return (self._type_path == other._type_path and self._version == other._version
                    and self._is_enum == other._is_enum and dict(self._fields) == dict(other._fields))
        if type_path(type(other)) != self._type_path:
            return NotImplemented
        if self._is_enum:
            return isinstance(other, enum.Enum) and other.name == self._fields.get("name")
        live = object_fields(other)
        return live is not None and live == dict(self._fields)

    def __hash__(self) -> int:
        if self._is_enum:
            return hash((self._type_path, self._fields.get("name")))
        return hash((self._type_path, tuple(self._fields.items())))

    def __repr__(self) -> str:
        name = self._type_path.rsplit(":", 1)[-1]
        if self._is_enum:
            return f"<{name}.{self._fields.get('name')}: {self._fields.get('value')!r} (stored {self._type_path})>"
        inner = ", ".join(f"{k}={v!r}" for k, v in self._fields.items())
        return f"{name}({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_stored_object, (self._type_path, dict(self._fields), self._version, self._is_enum))


def _stored_object(type_path: str, fields: dict[str, Any], version: int, is_enum: bool) -> StoredObject:
    return StoredObject(type_path, fields, version, is_enum=is_enum)


class Unrepresentable:
    """The placeholder stored for a value no codec can represent (read-only).

    Attributes:
        type_path: the value's class as ``"module:QualName"``.
        text: its ``repr`` when it was stored (truncated to 200 characters).
    """

    __slots__ = ("_text", "_type_path")
    _text: str
    _type_path: str

    def __init__(self, type_path: str, text: str) -> None:
        object.__setattr__(self, "_type_path", type_path)
        object.__setattr__(self, "_text", text)

    @property
    def type_path(self) -> str:
        """The class of the value that could not be stored."""
        return self._type_path

    @property
    def text(self) -> str:
        """Its ``repr`` at the time."""
        return self._text

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        msg = "an Unrepresentable placeholder is read-only"
        raise AttributeError(msg)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Unrepresentable):
            return NotImplemented
        return self._type_path == other._type_path and self._text == other._text

    def __hash__(self) -> int:
        return hash((self._type_path, self._text))

    def __repr__(self) -> str:
        return f"<unrepresentable {self._type_path}: {self._text}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Unrepresentable, (self._type_path, self._text))


# -- the registry of user types ------------------------------------------------------------
Upcaster = Callable[[dict[str, Any], int], dict[str, Any]]


class Registration(NamedTuple):
    """A registered class: the name it is stored under, its version and its upcaster."""

    cls: type
    name: str
    version: int
    upcast: Upcaster | None


_BY_TYPE: dict[type, Registration] = {}
_BY_NAME: dict[str, Registration] = {}
_registry_lock = threading.Lock()
_T = TypeVar("_T", bound=type)


@overload
def register_type(cls: _T, *, version: int = 1, upcast: Upcaster | None = None,
                  name: str | None = None) -> _T: ...


@overload
def register_type(cls: None = None, *, version: int = 1, upcast: Upcaster | None = None,
                  name: str | None = None) -> Callable[[_T], _T]: ...


def register_type(cls: _T | None = None, *, version: int = 1, upcast: Upcaster | None = None,
                  name: str | None = None) -> _T | Callable[[_T], _T]:
    """Let stored instances of ``cls`` be rebuilt as ``cls`` when they are decoded.

    Usable as a call (``register_type(Point, version=2, upcast=...)``) or a decorator
    (``@register_type`` or ``@register_type(version=2, upcast=...)``).

    Args:
        cls: a dataclass, an attrs class, a named tuple, an enum, or any class whose
            instances keep their state in ``__dict__``/``__slots__``.
        version: the current version of its fields (a positive int); stored with every
            instance encoded from now on.
        upcast: ``upcast(fields, stored_version) -> fields`` turns the fields of an older
            stored version into this version's; needed to read older versions.
        name: the name it is stored under (default ``"module:QualName"``); give one to
            keep reading old logs after moving or renaming the class.

    Returns:
        ``cls`` (so it works as a decorator).

    Raises:
        TypeError: ``cls`` is not a class, or ``version`` not a positive int.
        ValueError: another class is already registered under the same name.
    """
    if cls is None:
        def decorate(klass: _T) -> _T:
            return register_type(klass, version=version, upcast=upcast, name=name)
        return decorate
    if not isinstance(cls, type):
        msg = f"register_type needs a class, got {cls!r}"
        raise TypeError(msg)
    if type(version) is not int or version < 1:
        msg = f"version must be a positive int, got {version!r}"
        raise TypeError(msg)
    key = name if name is not None else type_path(cls)
    entry = Registration(cls, key, version, upcast)
    with _registry_lock:
        other = _BY_NAME.get(key)
        if other is not None and other.cls is not cls:
            msg = f"{key!r} is already registered for {other.cls!r}"
            raise ValueError(msg)
        old = _BY_TYPE.get(cls)
        if old is not None and old.name != key:
            del _BY_NAME[old.name]
        _BY_TYPE[cls] = entry
        _BY_NAME[key] = entry
    return cls


def unregister_type(cls: type) -> None:
    """Forget a registration (mostly for tests); unknown classes are ignored."""
    with _registry_lock:
        entry = _BY_TYPE.pop(cls, None)
        if entry is not None:
            _BY_NAME.pop(entry.name, None)


def registered_types() -> dict[str, tuple[type, int]]:
    """Every registration: stored name -> ``(class, version)``."""
    return {name: (e.cls, e.version) for name, e in _BY_NAME.items()}


def registration_for(cls: type) -> Registration | None:
    """The registration of ``cls``, or None."""
    return _BY_TYPE.get(cls)


def registration_named(name: str) -> Registration | None:
    """The registration stored under ``name``, or None."""
    return _BY_NAME.get(name)


def object_fields(obj: Any) -> dict[str, Any] | None:
    """The fields a dataclass, attrs, named-tuple or registered instance is stored with."""
    cls = type(obj)
    if isinstance(obj, enum.Enum):
        return {"name": obj.name, "value": obj.value}
    if dataclasses.is_dataclass(cls):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(cls)}
    if attrs.has(cls):
        return {a.name: getattr(obj, a.name) for a in attrs.fields(cls)}
    if isinstance(obj, tuple) and hasattr(cls, "_fields"):
        return dict(zip(cls._fields, obj, strict=True))
    if cls in _BY_TYPE:
        out = dict(getattr(obj, "__dict__", {}))
        for klass in cls.__mro__:
            for slot in klass.__dict__.get("__slots__", ()):
                if slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                    out[slot] = getattr(obj, slot)
        return out
    return None


def is_storable_object(obj: Any) -> bool:
    """True for an instance stored by class path and fields (dataclass, attrs, named tuple, registered)."""
    cls = type(obj)
    return (cls in _BY_TYPE or dataclasses.is_dataclass(cls) or attrs.has(cls)
            or (isinstance(obj, tuple) and hasattr(cls, "_fields")))


def build(entry: Registration, fields: dict[str, Any], stored_version: int) -> Any:
    """Rebuild a registered instance from its stored fields (no ``__init__`` runs)."""
    cls = entry.cls
    if stored_version > entry.version:
        msg = (f"{entry.name} was stored with version {stored_version}, newer than the registered "
               f"version {entry.version}; upgrade the code that registers it")
        raise ValueError(msg)
    if stored_version < entry.version:
        if entry.upcast is None:
            msg = (f"{entry.name} was stored with version {stored_version} but version {entry.version} "
                   "is registered without an upcaster")
            raise ValueError(msg)
        fields = entry.upcast(dict(fields), stored_version)
        if not isinstance(fields, dict):
            msg = f"the upcaster of {entry.name} returned {type(fields).__name__}, not a dict"
            raise TypeError(msg)
    if issubclass(cls, enum.Enum):
        return cls(fields["value"])
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return cls._make(fields[name] for name in cls._fields)  # type: ignore[attr-defined]
    expected: list[str] | None = None
    if dataclasses.is_dataclass(cls):
        expected = [f.name for f in dataclasses.fields(cls)]
    elif attrs.has(cls):
        expected = [a.name for a in attrs.fields(cls)]
    if expected is not None and sorted(expected) != sorted(fields):
        msg = (f"the stored fields of {entry.name} ({', '.join(sorted(fields))}) do not match the class's "
               f"({', '.join(sorted(expected))}); register it with a new version and an upcaster")
        raise ValueError(msg)
    obj = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(obj, name, value)
    return obj
