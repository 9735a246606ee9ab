"""A small ``Serializable`` base with the original routilux (serilux) dict shape.

``serialize()`` returns ``{"_type": <class name>, <field>: <value>, ...}`` for the
fields listed in :attr:`Serializable.fields_to_serialize`; nested Serializable values
(also inside lists and dict values) are serialized recursively. ``deserialize(data)``
sets the fields back, rebuilding nested objects whose ``_type`` names a registered
subclass. Subclasses with special needs (datetimes, read-only state) override both.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["Serializable", "registered_type"]

_REGISTRY: dict[str, type[Serializable]] = {}


def registered_type(name: str) -> type[Serializable] | None:
    """Return the Serializable subclass registered under ``name`` (its class name), or None."""
    return _REGISTRY.get(name)


class Serializable:
    """Base class for objects that serialize to a plain dict tagged with ``_type``.

    Declare fields either as a class attribute ``serializable_fields = ("a", "b")`` or,
    like serilux, per instance with :meth:`add_serializable_fields` in ``__init__``.
    Subclasses are registered by class name when defined.
    """

    __slots__ = ()

    serializable_fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY.setdefault(cls.__name__, cls)

    @property
    def fields_to_serialize(self) -> list[str]:
        """The names of the fields :meth:`serialize` writes, in order."""
        extra = getattr(self, "_extra_serializable_fields", None)
        fields = list(type(self).serializable_fields)
        if extra:
            fields.extend(f for f in extra if f not in fields)
        return fields

    def add_serializable_fields(self, fields: list[str] | tuple[str, ...]) -> None:
        """Add field names to serialize for this instance (serilux compatible).

        Raises:
            TypeError: a field name is not a str.
        """
        for name in fields:
            if not isinstance(name, str):
                msg = f"serializable field names must be str, got {name!r}"
                raise TypeError(msg)
        current = list(getattr(self, "_extra_serializable_fields", ()))
        current.extend(f for f in fields if f not in current)
        self._extra_serializable_fields = current

    def serialize(self) -> dict[str, Any]:
        """Return a plain dict: ``{"_type": class name, field: value, ...}``."""
        data: dict[str, Any] = {"_type": type(self).__name__}
        for name in self.fields_to_serialize:
            data[name] = _to_plain(getattr(self, name, None))
        return data

    def deserialize(self, data: dict[str, Any]) -> None:
        """Set this object's fields from a dict made by :meth:`serialize`.

        Raises:
            ValueError: ``data`` is not a dict, or its ``_type`` names another class.
        """
        if not isinstance(data, dict):
            msg = f"deserialize needs a dict, got {type(data).__name__}"
            raise ValueError(msg)
        tag = data.get("_type")
        if tag is not None and tag != type(self).__name__:
            msg = f"cannot deserialize a {tag!r} dict into a {type(self).__name__}"
            raise ValueError(msg)
        for name, value in data.items():
            if name != "_type":
                setattr(self, name, _from_plain(value))


def _to_plain(value: Any) -> Any:
    if isinstance(value, Serializable):
        return value.serialize()
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def _from_plain(value: Any) -> Any:
    if isinstance(value, dict):
        cls = _REGISTRY.get(value.get("_type", "")) if isinstance(value.get("_type"), str) else None
        if cls is not None:
            factory = getattr(cls, "from_dict", None)
            if factory is not None:  # immutable types build themselves from the dict
                return factory(value)
            obj = cls()
            obj.deserialize(value)
            return obj
        return {k: _from_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_plain(v) for v in value]
    return value
