"""``Serializable``: serilux's base class, which routilux 0.10 is built on, with our field declarations.

routilux 0.10 depends on serilux (``serilux>=0.3.1``) and so do we, for one reason: user code
written for 0.10 mixes the two freely. It decorates routines with
``serilux.register_serializable``, subclasses ``serilux.Serializable`` for its own data, checks
``isinstance(x, serilux.Serializable)``, and passes ``strict=`` / ``registry=`` (a
``serilux.ObjectRegistry``) to ``deserialize``. Our :class:`Serializable` *is* a
``serilux.Serializable`` (a subclass), so all of that keeps working against whichever serilux
version is installed, and flow dicts are readable by both implementations (callables use
serilux's ``{"_type": "callable", ...}`` form).

What this subclass adds:

* fields can be declared once per class (``serializable_fields = ("a", "b")``) as well as per
  instance with :meth:`~Serializable.add_serializable_fields` (serilux's way);
* field order is kept (serilux 0.3 shuffles it through a ``set``);
* the constructor does not reset the field list (serilux's does), so subclasses need not call it.

Generic ``serialize``/``deserialize``/``deserialize_item`` are serilux's own, so their parameters
(``strict``, ``registry``, and serilux 0.5's ``max_depth``) behave as the installed serilux
documents. Classes are found by ``_type`` through serilux's registry: decorate your own classes
with ``@register_serializable``, as with 0.10. The framework's classes are registered in
``routilux/__init__.py``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ClassVar, cast

import serilux
from serilux import ObjectRegistry, SerializableRegistry, register_serializable

__all__ = ["ObjectRegistry", "Serializable", "check_dict", "check_known_fields", "deserialize_item",
           "register_serializable", "registered_type"]


def registered_type(name: str) -> type[Any] | None:
    """Return the class registered with serilux under ``name`` (its class name), or None."""
    return cast("type[Any] | None", SerializableRegistry.get_class(name))


def deserialize_item(item: Any, registry: Any = None) -> Any:
    """serilux's ``Serializable.deserialize_item``: rebuild registered objects (and callables) in ``item``."""
    return serilux.Serializable.deserialize_item(item, registry=registry)  # type: ignore[attr-defined]


def check_known_fields(obj: Any, data: dict[str, Any], known: list[str] | tuple[str, ...], strict: bool) -> None:
    """With ``strict``, refuse ``data`` keys that are neither ``_type`` nor in ``known``.

    The same rule as serilux's ``deserialize(strict=True)``, for classes that read their dict
    themselves.

    Raises:
        ValueError: ``strict`` and unknown keys are present (all of them are named).
    """
    if not strict:
        return
    unknown = [str(k) for k in data if k != "_type" and k not in known]
    if unknown:
        msg = (f"unknown field(s) for {type(obj).__name__}: {', '.join(unknown)}; "
               f"expected: {', '.join(known)}")
        raise ValueError(msg)


def check_dict(obj: Any, data: Any) -> dict[str, Any]:
    """Return ``data`` if it is a dict whose ``_type`` fits ``obj``'s class.

    A ``_type`` naming an unrelated registered class is refused; an unknown name is accepted
    (a 0.10 dict names the user's routine class, which ``Routine().deserialize`` may read).

    Raises:
        ValueError: ``data`` is not a dict, or its ``_type`` names an unrelated class.
    """
    if not isinstance(data, dict):
        msg = f"{type(obj).__name__}.deserialize needs a dict, got {type(data).__name__}"
        raise ValueError(msg)
    tag = data.get("_type")
    if isinstance(tag, str) and tag != type(obj).__name__:
        cls = registered_type(tag)
        if cls is not None and not (issubclass(type(obj), cls) or issubclass(cls, type(obj))):
            msg = f"cannot deserialize a {tag!r} dict into a {type(obj).__name__}"
            raise ValueError(msg)
    return data


def _takes_options(method: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind is p.VAR_KEYWORD or p.name == "max_depth" for p in params)


def _dropping_options(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def serialize(self: Any, *args: Any, **options: Any) -> Any:
        return method(self, *args)

    return serialize


#: Whether the installed serilux's serialize() takes options (0.5: max_depth; 0.3: none).
_SERILUX_OPTIONS = _takes_options(serilux.Serializable.serialize)


class Serializable(serilux.Serializable):
    """A ``serilux.Serializable`` whose fields can also be declared per class.

    Declare fields either as a class attribute ``serializable_fields = ("a", "b")`` or, like
    serilux, per instance with :meth:`add_serializable_fields` in ``__init__``.
    """

    #: Fields every instance serializes (instances may add or remove some).
    serializable_fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        method = cls.__dict__.get("serialize")
        if callable(method) and not _takes_options(method):
            # serilux 0.5 passes max_depth/_current_depth to the serialize() of nested objects;
            # classes written for serilux 0.3 (routilux 0.10's, users', some of ours) define
            # serialize(self). Let them be nested under either version.
            cls.serialize = _dropping_options(method)  # type: ignore[method-assign]

    def __init__(self) -> None:
        # serilux's constructor resets the field list to []; ours starts from the class's
        # declaration, lazily (see fields_to_serialize), so calling it is optional.
        pass

    @property
    def fields_to_serialize(self) -> list[str]:
        """The names of the fields :meth:`serialize` writes, in order (a live list, as in serilux)."""
        store = vars(self)
        fields: list[str] | None = store.get("_serialized_fields")
        if fields is None:
            fields = list(type(self).serializable_fields)
            # serilux 0.5's @register_serializable discovers annotated public class attributes
            # (ours included: skip the declaration itself).
            for name in getattr(type(self), "__serilux_fields__", ()):
                if name not in fields and name != "serializable_fields":
                    fields.append(name)
            store["_serialized_fields"] = fields
        return fields

    @fields_to_serialize.setter
    def fields_to_serialize(self, value: list[str]) -> None:
        vars(self)["_serialized_fields"] = list(value)

    def add_serializable_fields(self, fields: list[str] | tuple[str, ...]) -> None:
        """Add field names to serialize for this instance (kept in order, no duplicates).

        Raises:
            ValueError: a field name is not a str (as in serilux).
        """
        for name in fields:
            if not isinstance(name, str):
                msg = f"serializable field names must be str, got {name!r}"
                raise ValueError(msg)
        current = self.fields_to_serialize
        current.extend(f for f in dict.fromkeys(fields) if f not in current)

    def remove_serializable_fields(self, fields: list[str] | tuple[str, ...]) -> None:
        """Stop serializing the named fields for this instance."""
        drop = set(fields)
        self.fields_to_serialize = [f for f in self.fields_to_serialize if f not in drop]

    def serialize(self, max_depth: int = 100, _current_depth: int = 0) -> dict[str, Any]:
        """Return ``{"_type": class name, field: value, ...}`` by serilux's rules.

        ``max_depth`` (serilux 0.5's guard against runaway nesting) is passed on when the
        installed serilux takes it, and ignored by serilux 0.3.
        """
        if _SERILUX_OPTIONS:
            return super().serialize(max_depth=max_depth, _current_depth=_current_depth)
        return super().serialize()

    def deserialize(self, data: dict[str, Any], strict: bool = False, registry: Any = None) -> None:
        """Set the fields from a :meth:`serialize` dict (serilux's rules, plus a check of the dict).

        Args:
            data: the dict; keys that are not fields are ignored unless ``strict``.
            strict: refuse unknown keys.
            registry: a ``serilux.ObjectRegistry`` for callables that name their owner object.

        Raises:
            ValueError: ``data`` is not a dict or its ``_type`` names an unrelated class; (serilux
                0.3) an unknown key with ``strict`` or a nested class that is not registered.
        """
        check_dict(self, data)
        super().deserialize(data, strict=strict, registry=registry)
