"""Connection: an event-to-slot link with an optional parameter mapping."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .serializable import Serializable, check_dict, check_known_fields

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .event import Event
    from .slot import Slot

__all__ = ["Connection"]


class Connection(Serializable):
    """Links ``source_event`` to ``target_slot``; ``param_mapping`` renames keys on the way.

    The mapping ``{event_key: slot_key}`` copies each present source key under its target name
    and keeps every other original key that is not a mapping target, so the source key is kept
    too: ``{"a": "x"}`` on ``{"a": 1, "b": 2, "x": 9}`` gives ``{"x": 1, "a": 1, "b": 2}``
    (the original's observed behaviour).
    """

    serializable_fields = ("param_mapping",)

    def __init__(
        self, source_event: Event | None = None, target_slot: Slot | None = None,
        param_mapping: dict[str, str] | None = None,
    ) -> None:
        self.source_event = source_event
        self.target_slot = target_slot
        self.param_mapping: dict[str, str] = dict(param_mapping or {})
        if source_event is not None and target_slot is not None:
            source_event.connect(target_slot)

    def __repr__(self) -> str:
        return f"Connection[{self.source_event!r} -> {self.target_slot!r}]"

    def _apply_mapping(self, data: dict[str, Any]) -> dict[str, Any]:
        mapping = self.param_mapping
        if not mapping:
            return dict(data)
        result: dict[str, Any] = {}
        for src, dst in mapping.items():
            if src in data:
                result[dst] = data[src]
        targets = set(mapping.values())
        for key, value in data.items():
            if key not in targets and key not in result:
                result[key] = value
        return result

    def activate(self, data: dict[str, Any]) -> None:
        """Map ``data`` and deliver it to the target slot (no job state)."""
        if self.target_slot is not None:
            self.target_slot.receive(self._apply_mapping(data))

    def disconnect(self) -> None:
        """Unlink the event and the slot (the connection stays in ``flow.connections``)."""
        if self.source_event is not None and self.target_slot is not None:
            self.source_event.disconnect(self.target_slot)

    def serialize(self, max_depth: int = 100, _current_depth: int = 0) -> dict[str, Any]:
        """Return routilux 0.10's connection dict: ``param_mapping``, ``_source_event_name``, ``_target_slot_name``.

        :meth:`Flow.serialize` adds ``_source_routine_id`` and ``_target_routine_id`` (the
        routines' ids in the flow), which 0.10's dicts lack.
        """
        data = super().serialize(max_depth, _current_depth)
        if self.source_event is not None:
            data["_source_event_name"] = self.source_event.name
        if self.target_slot is not None:
            data["_target_slot_name"] = self.target_slot.name
        return data

    def deserialize(self, data: dict[str, Any], strict: bool = False, registry: Any = None) -> None:
        """Restore the mapping and keep the endpoint names for :meth:`Flow.deserialize` to link.

        The names are kept as ``_source_routine_id``, ``_source_event_name``,
        ``_target_routine_id`` and ``_target_slot_name`` attributes (None when absent), as in 0.10.
        Dicts of earlier versions of this package (``source_event``, ``source_routine_id``, ...)
        are read too.

        Raises:
            ValueError: ``data`` is not a connection dict; with ``strict``, it has unknown keys.
        """
        check_dict(self, data)
        check_known_fields(self, data, [*self.fields_to_serialize, *_ENDPOINT_KEYS, *_LEGACY_KEYS.values()], strict)
        self.param_mapping = dict(data.get("param_mapping") or {})
        for key in _ENDPOINT_KEYS:
            value = data.get(key, data.get(_LEGACY_KEYS[key]))
            setattr(self, key, value)


#: Endpoint keys of a connection dict, and the names earlier versions of this package used.
_ENDPOINT_KEYS = ("_source_routine_id", "_source_event_name", "_target_routine_id", "_target_slot_name")
_LEGACY_KEYS = {"_source_routine_id": "source_routine_id", "_source_event_name": "source_event",
                "_target_routine_id": "target_routine_id", "_target_slot_name": "target_slot"}
