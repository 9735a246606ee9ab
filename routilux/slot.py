"""Slot: a routine's input. Merges incoming data and calls the routine's handler."""

from __future__ import annotations

import inspect
import logging
import threading
import traceback
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from serilux import deserialize_callable

from ._context import _current_job_state
from ._structure import resolve_name
from .serializable import Serializable, check_dict, check_known_fields, deserialize_item

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .event import Event
    from .flow import Flow
    from .routine import Routine

__all__ = ["Slot", "error_info"]

logger = logging.getLogger(__name__)

# Dispatch modes, computed once per handler from its signature (inspect.signature is slow).
_KWARGS, _WHOLE, _ONE, _MATCH, _NONE = range(5)


def error_info(error: BaseException, slot_name: str | None = None) -> dict[str, Any]:
    """Describe an exception for the history: message, type and a short traceback summary.

    The summary lists the innermost frames as ``file:line in function`` strings so the failing
    line is visible in the audit trail without storing whole tracebacks.
    """
    info: dict[str, Any] = {}
    if slot_name is not None:
        info["slot"] = slot_name
    info["error"] = str(error)
    info["error_type"] = type(error).__name__
    frames = traceback.extract_tb(error.__traceback__)[-5:]
    info["traceback"] = [f"{f.filename}:{f.lineno} in {f.name}" for f in frames]
    return info


# Signature analysis is cached per function (bound methods of every instance of a routine
# class share one entry); weak keys so handlers defined per instance are not kept alive.
_MODES_BOUND: weakref.WeakKeyDictionary[Any, tuple[int, Any]] = weakref.WeakKeyDictionary()
_MODES_PLAIN: weakref.WeakKeyDictionary[Any, tuple[int, Any]] = weakref.WeakKeyDictionary()


def _cached_dispatch_mode(handler: Callable[..., Any]) -> tuple[int, Any]:
    func = getattr(handler, "__func__", None)
    cache, key = (_MODES_BOUND, func) if func is not None else (_MODES_PLAIN, handler)
    try:
        return cache[key]
    except (KeyError, TypeError):  # TypeError: not weak-referenceable (some builtins)
        pass
    mode = _dispatch_mode(handler)
    try:
        cache[key] = mode
    except TypeError:
        pass
    return mode


def _dispatch_mode(handler: Callable[..., Any]) -> tuple[int, Any]:
    try:
        params = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature: pass the dict
        return _WHOLE, None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return _KWARGS, None
    if not params:
        return _NONE, None
    if len(params) == 1:
        name = params[0].name
        if name == "data" or params[0].kind is inspect.Parameter.VAR_POSITIONAL:
            return _WHOLE, None
        return _ONE, name
    names = tuple(p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL)
    return _MATCH, names


class Slot(Serializable):
    """An input of a routine: receives data from connected events.

    Args:
        name: the slot name (unique within its routine).
        routine: the routine owning the slot.
        handler: called with the merged data (see ROUTILUX_API.md §2 for the dispatch rules).
        merge_strategy: ``"override"``, ``"append"`` or a callable ``f(old, new) -> merged``.
    """

    serializable_fields = ("name", "_data", "handler", "merge_strategy")

    def __init__(
        self,
        name: str = "",
        routine: Routine | None = None,
        handler: Callable[..., Any] | None = None,
        merge_strategy: str | Callable[[Any, Any], Any] = "override",
    ) -> None:
        self.name = name
        self.routine = routine
        self.handler = handler
        self.merge_strategy = merge_strategy
        self.connected_events: list[Event] = []
        self._data: dict[str, Any] = {}
        # Concurrent flows may deliver to one slot from several threads: _data is merged under
        # this lock so "append" never loses an item.
        self._lock = threading.Lock()
        self._dispatch_handler: Any = None
        self._dispatch: tuple[int, Any] = (_WHOLE, None)

    def __repr__(self) -> str:
        rid = self.routine._id if self.routine is not None else None
        return f"Slot[{rid}.{self.name}]"

    # -- wiring ---------------------------------------------------------------------------
    def connect(self, event: Event, param_mapping: dict[str, str] | None = None) -> None:
        """Connect ``event`` to this slot (both sides, no duplicates); the mapping is ignored here."""
        if not any(e is event for e in self.connected_events):
            self.connected_events.append(event)
        if not any(s is self for s in event.connected_slots):
            event.connected_slots.append(self)

    def disconnect(self, event: Event) -> None:
        """Disconnect ``event`` from this slot (both sides)."""
        self.connected_events = [e for e in self.connected_events if e is not event]
        event.connected_slots = [s for s in event.connected_slots if s is not self]

    # -- merging and dispatch -----------------------------------------------------------------
    def _merge_data(self, new_data: dict[str, Any]) -> Any:
        strategy = self.merge_strategy
        with self._lock:
            if strategy == "append":
                for key, value in new_data.items():
                    current = self._data.get(key, _MISSING)
                    if current is _MISSING:
                        self._data[key] = current = []
                    elif not isinstance(current, list):
                        self._data[key] = current = [current]
                    current.append(value)
                # The handler sees only the incoming keys, each bound to the live accumulated
                # list (observed in the original: later appends are visible through it).
                return {key: self._data[key] for key in new_data}
            if callable(strategy):
                merged = strategy(self._data, new_data)
                self._data = dict(merged) if isinstance(merged, dict) else merged
                return merged
            merged = dict(new_data)
            self._data = merged
            return merged

    def _call(self, merged: Any) -> None:
        handler = self.handler
        if handler is None:
            return
        if self._dispatch_handler is not handler:
            self._dispatch = _cached_dispatch_mode(handler)
            self._dispatch_handler = handler
        mode, arg = self._dispatch
        if not isinstance(merged, dict):
            handler(merged)
        elif mode is _KWARGS:
            handler(**merged)
        elif mode is _WHOLE:
            handler(merged)
        elif mode is _ONE:
            handler(merged[arg]) if arg in merged else handler(merged)
        elif mode is _NONE:
            handler()
        else:
            matching = {k: merged[k] for k in arg if k in merged}
            handler(**matching) if matching else handler(merged)

    def call_handler(self, data: dict[str, Any], propagate_exceptions: bool = False) -> None:
        """Merge ``data`` and call the handler, without touching the execution context.

        Exceptions propagate when ``propagate_exceptions`` is true, else they are logged.
        """
        merged = self._merge_data(data)
        try:
            self._call(merged)
        except Exception as exc:
            if propagate_exceptions:
                raise
            # As in 0.10: an ERROR with the traceback (the job's history keeps a summary).
            logger.exception("Error in slot %r handler: %s", self, exc)

    def _deliver(self, data: dict[str, Any], job_state: Any) -> Exception | None:
        """Merge and call the handler with the context variable set; return the error, if any."""
        token = _current_job_state.set(job_state) if job_state is not None else None
        try:
            self._call(self._merge_data(data))
        except Exception as exc:
            # As in 0.10: an ERROR with the traceback (the job's history keeps a summary).
            logger.exception("Error in slot %r handler: %s", self, exc)
            return exc
        finally:
            if token is not None:
                _current_job_state.reset(token)
        return None

    def _record_error(self, error: Exception, job_state: Any, flow: Flow | None) -> None:
        """Record a handler error in the job: history ``error`` and, for a routine-level STOP, ``failed``."""
        routine = self.routine
        flow = flow if flow is not None else getattr(routine, "_current_flow", None)
        if flow is None or routine is None:
            return
        rid = flow._routine_id_of(routine)
        if rid is None:
            return
        job_state.record_execution(rid, "error", error_info(error, self.name))
        handler = routine._error_handler
        if handler is not None and handler.strategy.value == "stop":
            job_state.update_routine_state(rid, {"status": "failed", "error": str(error)})

    def receive(self, data: dict[str, Any], job_state: Any = None, flow: Flow | None = None) -> None:
        """Deliver ``data``: merge, call the handler with ``job_state`` as the context.

        Every exception is swallowed; with a ``job_state`` it is recorded in the job's history.
        """
        error = self._deliver(data, job_state)
        if error is not None and job_state is not None:
            self._record_error(error, job_state, flow)

    # -- structure ----------------------------------------------------------------------------
    def deserialize(self, data: dict[str, Any], strict: bool = False, registry: Any = None) -> None:
        """Restore a :meth:`serialize` dict (ours or routilux 0.10's): name, data, handler, merge strategy.

        ``serialize`` is serilux's: handlers and callable merge strategies become serilux
        callable dicts. Here they are looked up through ``registry`` (method owners by ``_id``)
        or by module; when that fails (a lambda, a function defined inside another), the
        handler the routine's ``__init__`` installed is kept.

        Raises:
            ValueError: ``data`` is not a slot dict; with ``strict``, it has unknown keys.
        """
        check_dict(self, data)
        check_known_fields(self, data, self.fields_to_serialize, strict)
        self.name = data.get("name", self.name)
        self._data = dict(deserialize_item(data.get("_data") or {}, registry=registry))
        strategy = data.get("merge_strategy", "override")
        if isinstance(strategy, str) and not strategy.startswith("function:"):
            if strategy != "_custom":  # 0.10's legacy marker of an unrestorable callable
                self.merge_strategy = strategy
        elif not callable(self.merge_strategy):
            found = _resolve_callable(strategy, self.routine, registry)
            self.merge_strategy = found if found is not None else "override"
        ref = data.get("handler")
        if ref is not None:
            found = _resolve_callable(ref, self.routine, registry)
            if found is not None:
                self.handler = found


_MISSING = object()


def _resolve_callable(ref: Any, routine: Any, registry: Any) -> Any:
    """The callable a serialized handler names, or None when it cannot be found.

    ``ref`` is a serilux callable dict (routilux 0.10 and this version) or, from flow dicts
    written by earlier versions of this package, ``"method:<name>"`` / ``"function:<module.qualname>"``.
    A method of the slot's own routine is always found, even without a registry.
    """
    if isinstance(ref, dict):
        if ref.get("callable_type") == "method" and routine is not None and (
                ref.get("object_id") in (None, getattr(routine, "_id", None))):
            return getattr(routine, str(ref.get("method_name")), None)
        try:
            return deserialize_callable(ref, registry=registry)
        except Exception:  # serilux raises for a bad lambda expression: keep __init__'s handler
            logger.warning("slot handler %r could not be restored; keeping the routine's own", ref)
            return None
    if not isinstance(ref, str):
        return None
    kind, _, name = ref.partition(":")
    if kind == "method":
        return getattr(routine, name, None)
    try:
        return resolve_name(name)
    except ValueError:
        return None
