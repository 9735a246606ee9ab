"""Helpers for serializing flow structure: naming and finding classes and callables."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["qualified_name", "resolve_name"]


def qualified_name(obj: Any) -> str:
    """Return ``module.qualname`` for a class or function."""
    return f"{obj.__module__}.{obj.__qualname__}"


def resolve_name(name: str) -> Any:
    """Import ``module.qualname`` and return the object it names.

    Raises:
        ValueError: when no module prefix of ``name`` can be imported or the attribute is missing.
    """
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            break
        return obj
    msg = f"cannot find {name!r}: import the module that defines it before deserializing"
    raise ValueError(msg)
