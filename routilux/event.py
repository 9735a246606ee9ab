"""Event: a routine's output. Emitting it delivers data to every connected slot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._context import _current_job_state
from .serializable import Serializable

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .flow import Flow
    from .routine import Routine
    from .slot import Slot

__all__ = ["Event"]


class Event(Serializable):
    """An output of a routine.

    Args:
        name: the event name (unique within its routine).
        routine: the routine owning the event.
        output_params: documentation of the emitted keys (never enforced).

    Serialized by serilux's generic rules as ``{"_type": "Event", "name", "output_params"}``.
    """

    serializable_fields = ("name", "output_params")

    def __init__(self, name: str = "", routine: Routine | None = None, output_params: list[str] | None = None) -> None:
        self.name = name
        self.routine = routine
        self.output_params = list(output_params or [])
        self.connected_slots: list[Slot] = []

    def __repr__(self) -> str:
        rid = self.routine._id if self.routine is not None else None
        return f"Event[{rid}.{self.name}]"

    def connect(self, slot: Slot, param_mapping: dict[str, str] | None = None) -> None:
        """Connect this event to ``slot`` (both sides, no duplicates); the mapping is ignored here."""
        slot.connect(self, param_mapping)

    def disconnect(self, slot: Slot) -> None:
        """Disconnect this event from ``slot`` (both sides)."""
        slot.disconnect(self)

    def emit(self, flow: Flow | None = None, **kwargs: Any) -> None:
        """Deliver ``kwargs`` to every connected slot.

        Without a flow (argument, else the routine's current flow) each slot receives the data
        synchronously, unmapped and unrecorded (legacy mode). With a flow, one task per slot is
        queued for the job (a ``job_state=`` keyword, else the context variable) and this returns
        at once.
        """
        if flow is None and self.routine is not None:
            flow = self.routine._current_flow
        if flow is None:
            for slot in list(self.connected_slots):
                slot.receive(dict(kwargs))
            return
        job_state = kwargs.pop("job_state", None)
        if job_state is None:
            job_state = _current_job_state.get(None)
        flow._emit_event(self, kwargs, job_state, None)
