"""Routine: a unit of work with input slots and output events (ROUTILUX_API.md §1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from ._context import _current_job_state
from ._structure import qualified_name
from .error_handler import ErrorHandler, ErrorStrategy
from .event import Event
from .serializable import ObjectRegistry, Serializable, check_dict, check_known_fields, deserialize_item
from .slot import Slot

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .flow import Flow
    from .job_state import JobState

__all__ = ["ExecutionContext", "Routine", "_current_job_state"]



class ExecutionContext(NamedTuple):
    """Where a handler runs: its flow, its job and its id in that flow."""

    flow: Flow
    job_state: JobState
    routine_id: str


def _history_value(value: Any) -> Any:
    # The original replaces framework objects by their str() in the emit history record.
    if hasattr(value, "serialize") and hasattr(value, "deserialize") and not isinstance(value, (dict, list)):
        return str(value)
    return value


class Routine(Serializable):
    """Base class of workflow routines: define slots and events in ``__init__``.

    The constructor takes no arguments so that flows can be deserialized.
    """

    serializable_fields = ("_id", "_config", "_error_handler", "_slots", "_events")

    def __init__(self) -> None:
        self._id: str = hex(id(self))
        self._slots: dict[str, Slot] = {}
        self._events: dict[str, Event] = {}
        self._config: dict[str, Any] = {}
        self._error_handler: ErrorHandler | None = None
        self._current_flow: Flow | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}[{self._id}]"

    def __call__(self, **kwargs: Any) -> None:
        """Deprecated no-op kept for compatibility; define a ``trigger`` slot instead."""

    # -- definition ---------------------------------------------------------------------------
    def define_slot(
        self, name: str, handler: Callable[..., Any] | None = None,
        merge_strategy: str | Callable[[Any, Any], Any] = "override",
    ) -> Slot:
        """Define an input slot; ``ValueError`` if ``name`` is taken."""
        if name in self._slots:
            msg = f"slot {name!r} is already defined on {self!r}"
            raise ValueError(msg)
        slot = Slot(name, self, handler, merge_strategy)
        self._slots[name] = slot
        return slot

    def define_event(self, name: str, output_params: list[str] | None = None) -> Event:
        """Define an output event; ``ValueError`` if ``name`` is taken."""
        if name in self._events:
            msg = f"event {name!r} is already defined on {self!r}"
            raise ValueError(msg)
        event = Event(name, self, output_params)
        self._events[name] = event
        return event

    def get_slot(self, name: str) -> Slot | None:
        """Return the slot called ``name`` or None."""
        return self._slots.get(name)

    def get_event(self, name: str) -> Event | None:
        """Return the event called ``name`` or None."""
        return self._events.get(name)

    # -- configuration ------------------------------------------------------------------------
    def set_config(self, **kwargs: Any) -> None:
        """Update the configuration dict."""
        self._config.update(kwargs)

    def get_config(self, key: str, default: Any = None) -> Any:
        """Return one configuration value."""
        return self._config.get(key, default)

    def config(self) -> dict[str, Any]:
        """Return a shallow copy of the configuration."""
        return dict(self._config)

    def set_error_handler(self, error_handler: ErrorHandler | None) -> None:
        """Install a routine-level error handler (it wins over the flow's)."""
        self._error_handler = error_handler

    def get_error_handler(self) -> ErrorHandler | None:
        """Return the routine-level error handler or None."""
        return self._error_handler

    def set_as_optional(self, strategy: ErrorStrategy | str | None = None) -> None:
        """Mark the routine optional: its errors are tolerated (CONTINUE unless given)."""
        self._error_handler = ErrorHandler(strategy=strategy or ErrorStrategy.CONTINUE, is_critical=False)

    def set_as_critical(self, max_retries: int = 3, retry_delay: float = 1.0, retry_backoff: float = 2.0) -> None:
        """Mark the routine critical: retried, and failure fails the job."""
        self._error_handler = ErrorHandler(
            strategy=ErrorStrategy.RETRY, max_retries=max_retries, retry_delay=retry_delay,
            retry_backoff=retry_backoff, is_critical=True,
        )

    # -- execution ----------------------------------------------------------------------------
    def emit(self, event_name: str, flow: Flow | None = None, **kwargs: Any) -> None:
        """Emit ``event_name`` with ``kwargs`` as its data.

        In a flow with a known job, the history record and the queued tasks are recorded as one
        atomic batch; data that cannot be recorded raises ``EventEncodingError`` (a TypeError)
        naming the bad value's path, and nothing is queued.

        Raises:
            ValueError: the event is not defined on this routine.
        """
        event = self._events.get(event_name)
        if event is None:
            msg = f"event {event_name!r} is not defined on {self!r}; defined events: {sorted(self._events)}"
            raise ValueError(msg)
        if flow is None:
            flow = self._current_flow
        job_state = kwargs.pop("job_state", None)
        if job_state is None:
            job_state = _current_job_state.get(None)
        if flow is None:
            event.emit(None, **kwargs)
            return
        history = None
        if job_state is not None:
            rid = flow._routine_id_of(self)
            history = (rid if rid is not None else self._id, event_name,
                       {k: _history_value(v) for k, v in kwargs.items()})
        flow._emit_event(event, kwargs, job_state, history)
        if job_state is not None:
            slots = event.connected_slots
            target = slots[0].routine._id if slots and slots[0].routine is not None else None
            flow.execution_tracker.record_event(self._id, event_name, target, kwargs)

    def emit_deferred_event(self, event_name: str, **kwargs: Any) -> None:
        """Store an event in the job, to be emitted when the job is resumed.

        Raises:
            RuntimeError: called outside an execution context.
        """
        ctx = self._require_context("emit_deferred_event")
        ctx.job_state.add_deferred_event(ctx.routine_id, event_name, kwargs)

    def send_output(self, output_type: str, **data: Any) -> None:
        """Send output to the job's output log and handler.

        Raises:
            RuntimeError: called outside an execution context.
        """
        ctx = self._require_context("send_output")
        ctx.job_state.send_output(ctx.routine_id, output_type, data)

    def get_execution_context(self) -> ExecutionContext | None:
        """Return ``(flow, job_state, routine_id)`` while a handler of this routine runs, else None."""
        flow = self._current_flow
        if flow is None:
            return None
        job_state = _current_job_state.get(None)
        if job_state is None:
            return None
        rid = flow._routine_id_of(self)
        if rid is None:
            return None
        return ExecutionContext(flow, job_state, rid)

    def _require_context(self, what: str) -> ExecutionContext:
        ctx = self.get_execution_context()
        if ctx is None:
            msg = (f"{what}() needs an execution context: call it from a slot handler while the "
                   f"routine {self!r} runs in a flow execution")
            raise RuntimeError(msg)
        return ctx

    def _extract_input_data(self, data: Any = None, **kwargs: Any) -> Any:
        """Return ``data``, else ``kwargs['data']``, else the single value, else the dict, else ``{}``."""
        if data is not None:
            return data
        if "data" in kwargs:
            return kwargs["data"]
        if len(kwargs) == 1:
            return next(iter(kwargs.values()))
        if kwargs:
            return kwargs
        return {}

    # -- structure ----------------------------------------------------------------------------
    def serialize(self, max_depth: int = 100, _current_depth: int = 0) -> dict[str, Any]:
        """Return the routine's structure in routilux 0.10's shape, plus ``_class``.

        ``_type`` is the class name (0.10 looks it up in serilux's registry), the fields are
        ``_id``, ``_config``, ``_error_handler``, ``_slots``, ``_events`` and any added with
        :meth:`add_serializable_fields`; handlers are serilux callable dicts. ``_class``
        (``module.qualname``) lets :meth:`Flow.deserialize` import the class without a
        registration; 0.10 ignores it. ``max_depth`` is serilux 0.5's nesting guard.
        """
        data = super().serialize(max_depth, _current_depth)
        data["_class"] = qualified_name(type(self))
        return data

    def deserialize(self, data: dict[str, Any], strict: bool = False, registry: Any = None) -> None:
        """Restore the fields of a :meth:`serialize` dict (ours or routilux 0.10's) onto this routine.

        Slots and events defined by ``__init__`` are kept and updated, so their handlers stay
        bound even when a serialized handler cannot be looked up (a lambda); others are
        defined. ``registry`` (a ``serilux.ObjectRegistry``) resolves method handlers of other
        objects; this routine is registered in it under the dict's ``_id``.

        Raises:
            ValueError: ``data`` is not a routine dict; with ``strict``, it has unknown keys.
        """
        check_dict(self, data)
        fields = self.fields_to_serialize
        check_known_fields(self, data, [*fields, "_class"], strict)
        if registry is None:
            registry = ObjectRegistry()
        self._id = data.get("_id") or self._id
        registry.register(self, object_id=self._id)
        self._config = dict(deserialize_item(data.get("_config") or {}, registry=registry))
        for name, sdata in (data.get("_slots") or {}).items():
            slot = self._slots.get(name)
            if slot is None:
                slot = self.define_slot(name)
            slot.deserialize(sdata, strict=strict, registry=registry)
        for name, edata in (data.get("_events") or {}).items():
            event = self._events.get(name)
            if event is None:
                event = self.define_event(name)
            event.deserialize(edata, strict=strict, registry=registry)
        if "_error_handler" in data:
            eh = data["_error_handler"]
            handler = None
            if eh:
                handler = ErrorHandler()
                handler.deserialize(eh, strict=strict, registry=registry)
            self._error_handler = handler
        own = Routine.serializable_fields
        for name in fields:  # fields added by a subclass (add_serializable_fields)
            if name not in own and name in data:
                setattr(self, name, deserialize_item(data[name], registry=registry))
