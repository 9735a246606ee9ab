"""DataFlattener: turns nested dicts and lists into one flat dict with joined keys."""

from __future__ import annotations

from typing import Any

from routilux.routine import Routine
from routilux.serializable import Serializable

__all__ = ["DataFlattener"]

CIRCULAR = "[Circular Reference]"


class DataFlattener(Routine):
    """Flatten a nested value: ``{"a": {"b": 1, "c": [2, 3]}}`` becomes ``{"a.b": 1, "a.c.0": 2, "a.c.1": 3}``.

    Slot ``input`` (``self.input_slot``) takes the value as ``data`` or the single value it
    received (several keys: the received dict itself).

    Event ``output`` (``self.output_event``) carries ``flattened_data``, ``original_type``
    (the input's type name; ``"dict"`` for a Serializable object) and ``depth`` (the deepest
    nesting level reached; 0 for a flat value).

    Rules: dict keys are joined to their parent's key with ``separator``; a top-level key is
    used as it is (not converted to a string). List items are keyed by their index. A value
    that is not a container keeps its key, or ``"value"`` when it has none (a bare value, or
    a key that is the empty string). Serializable objects (routilux's) are flattened through
    ``serialize()``. A value nested ``max_depth`` deep is stored as ``str(value)`` without
    going further, and a container found inside itself as ``"[Circular Reference]"``. An empty
    dict or list contributes no key. When two paths give the same key, the later one wins.

    Configuration:
        separator (str, ``"."``).
        preserve_lists (bool, True): key list items by index; when False every item is
            flattened under the list's own key, so later items overwrite earlier ones.
        max_depth (int, 100).

    Records nothing in the job beyond the ``output`` emit.
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(separator=".", preserve_lists=True, max_depth=100)
        self.input_slot = self.define_slot("input", handler=self._handle_input)
        self.output_event = self.define_event("output", ["flattened_data", "original_type", "depth"])

    def _handle_input(self, data: Any = None, **kwargs: Any) -> None:
        value = self._extract_input_data(data, **kwargs)
        flat, original_type, depth = self._flatten(value, "", 0, set())
        self.emit("output", flattened_data=flat, original_type=original_type, depth=depth)

    def _flatten(self, value: Any, prefix: Any, depth: int, ancestors: set[int]) -> tuple[dict[Any, Any], str, int]:
        """Return ``(flat dict, type name, deepest level)`` for ``value`` found under ``prefix``."""
        if depth >= self.get_config("max_depth", 100):
            return {prefix or "value": str(value)}, type(value).__name__, depth
        if isinstance(value, (dict, list)):
            if id(value) in ancestors:
                return {prefix or "value": CIRCULAR}, type(value).__name__, depth
            ancestors.add(id(value))
            try:
                return self._flatten_container(value, prefix, depth, ancestors)
            finally:
                ancestors.discard(id(value))
        if isinstance(value, Serializable):
            return self._flatten(value.serialize(), prefix, depth + 1, ancestors)
        return {prefix or "value": value}, type(value).__name__, depth

    def _flatten_container(self, value: dict[Any, Any] | list[Any], prefix: Any, depth: int,
                           ancestors: set[int]) -> tuple[dict[Any, Any], str, int]:
        separator = self.get_config("separator", ".")
        kind = "dict" if isinstance(value, dict) else "list"  # also for subclasses (read-only job views)
        if isinstance(value, dict):
            children = [(f"{prefix}{separator}{key}" if prefix else key, item) for key, item in value.items()]
        elif self.get_config("preserve_lists", True):
            children = [(f"{prefix}{separator}{i}" if prefix else str(i), item) for i, item in enumerate(value)]
        else:
            children = [(prefix, item) for item in value]
        flat: dict[Any, Any] = {}
        deepest = depth
        for key, item in children:
            part, _, reached = self._flatten(item, key, depth + 1, ancestors)
            flat.update(part)
            deepest = max(deepest, reached)
        return flat, kind, deepest
