"""Connection: an event-to-slot link with an optional parameter mapping."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .serializable import Serializable

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

    def serialize(self) -> dict[str, Any]:
        """Return the connection's structure (routines named by their ``_id``)."""
        ev, slot = self.source_event, self.target_slot
        return {
            "_type": "Connection",
            "source_routine_id": ev.routine._id if ev is not None and ev.routine is not None else None,
            "source_event": ev.name if ev is not None else None,
            "target_routine_id": slot.routine._id if slot is not None and slot.routine is not None else None,
            "target_slot": slot.name if slot is not None else None,
            "param_mapping": dict(self.param_mapping),
        }

    def deserialize(self, data: dict[str, Any]) -> None:
        """Restore the mapping (linking is done by ``Flow.deserialize``)."""
        self.param_mapping = dict(data.get("param_mapping") or {})
