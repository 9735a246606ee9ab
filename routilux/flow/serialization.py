"""Flow dicts: :func:`serialize_flow` and :func:`deserialize_flow` (0.10's ``routilux.flow.serialization``).

The dict has routilux 0.10's shape, so each version reads the other's:

* ``routines``: ``{flow routine id: routine dict}``; a routine dict's ``_type`` is its class
  name (0.10 finds the class in serilux's registry) and ours adds ``_class``
  (``module.qualname``), so no registration is needed to read it back here;
* ``connections``: ``param_mapping``, ``_source_event_name`` and ``_target_slot_name`` as in
  0.10, plus ``_source_routine_id`` and ``_target_routine_id`` (flow routine ids), which 0.10
  does not write. 0.10 links a connection to the *first* routine that has an event (or slot) of
  that name, which is wrong as soon as two routines share one ("output", "input"). We use the
  routine ids when present; for a 0.10 dict we use the only routine with that name, and when
  several have it we do what 0.10 does and warn that the dict cannot say which was meant.

Reading is all-or-nothing: the flow is changed only when every routine and connection of the
dict could be built.
"""

from __future__ import annotations

import inspect
import warnings
from typing import TYPE_CHECKING, Any

from .._structure import qualified_name, resolve_name
from ..connection import Connection
from ..error_handler import ErrorHandler
from ..execution_tracker import ExecutionTracker
from ..routine import Routine
from ..serializable import (
    ObjectRegistry,
    Serializable,
    check_dict,
    check_known_fields,
    deserialize_item,
    registered_type,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .flow import Flow

__all__ = ["deserialize_flow", "serialize_flow"]

#: Fields of a flow dict (0.10's, plus execution_timeout).
FLOW_FIELDS = ("flow_id", "max_workers", "execution_strategy", "execution_timeout", "connections", "routines",
               "error_handler", "_paused")


def serialize_flow(flow: Flow, max_depth: int = 100, _current_depth: int = 0) -> dict[str, Any]:
    """Return ``flow``'s structure (routines, connections, settings; never a job's state).

    ``max_depth`` is serilux 0.5's nesting guard (ignored by serilux 0.3).

    Raises:
        TypeError: a routine's class needs constructor arguments, so it could not be rebuilt
            from the dict (as in 0.10, checked before anything is written).
    """
    for rid, routine in flow.routines.items():
        _check_constructible(rid, routine)
    data = Serializable.serialize(flow, max_depth, _current_depth)
    ids = {id(r): rid for rid, r in flow.routines.items()}
    for conn, cdata in zip(flow.connections, data.get("connections") or [], strict=False):
        event, slot = conn.source_event, conn.target_slot
        if event is not None and event.routine is not None:
            cdata["_source_routine_id"] = ids.get(id(event.routine))
        if slot is not None and slot.routine is not None:
            cdata["_target_routine_id"] = ids.get(id(slot.routine))
    if flow.version is not None:  # only when declared: 0.10 reads the dict as before
        data["version"] = flow.version
    return data


def _check_constructible(rid: str, routine: Routine) -> None:
    cls = type(routine)
    try:
        params = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):  # no signature to inspect: assume it can be built
        return
    required = [p.name for p in params
                if p.name != "self" and p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if required:
        msg = (f"routine {rid!r} ({qualified_name(cls)}) cannot be serialized: its __init__ requires "
               f"{', '.join(required)}, but a deserialized flow builds routines without arguments; "
               "store such settings with set_config() instead")
        raise TypeError(msg)


def deserialize_flow(flow: Flow, data: dict[str, Any], strict: bool = False, registry: Any = None) -> None:
    """Replace ``flow``'s structure with that of a flow dict (ours or routilux 0.10's).

    Args:
        flow: the flow to fill in.
        data: the dict made by ``Flow.serialize()`` of either version.
        strict: refuse unknown keys (in the flow dict and the dicts inside it).
        registry: a ``serilux.ObjectRegistry`` for handlers that are methods of other objects;
            every routine is registered in it under its ``_id``.

    Raises:
        ValueError: a routine class cannot be found, a connection names an event or slot no
            routine has, or the dict is not a flow dict. The flow is then left unchanged.
    """
    check_dict(flow, data)
    own_fields = flow.fields_to_serialize
    check_known_fields(flow, data, [*own_fields, "version"], strict)
    if registry is None:
        registry = ObjectRegistry()
    rdicts: dict[str, Any] = data.get("routines") or {}
    routines: dict[str, Routine] = {}
    for rid, rdata in rdicts.items():
        routine = _routine_class(rid, rdata)()
        routines[rid] = routine
        # Registered before any routine is read: a handler may be a method of another routine.
        registry.register(routine, object_id=rdata.get("_id") or routine._id)
    for rid, rdata in rdicts.items():
        routines[rid].deserialize(rdata, strict=strict, registry=registry)
    links = [_link(i, cdata, routines, strict, registry) for i, cdata in enumerate(data.get("connections") or [])]
    handler = None
    if data.get("error_handler"):
        handler = ErrorHandler()
        handler.deserialize(data["error_handler"], strict=strict, registry=registry)
    extra = {name: deserialize_item(data[name], registry=registry)
             for name in own_fields if name not in FLOW_FIELDS and name in data}

    # Everything was built: now change the flow.
    flow.flow_id = data.get("flow_id", flow.flow_id)
    flow.version = data.get("version")
    flow._paused = bool(data.get("_paused", False))
    flow.execution_strategy = data.get("execution_strategy", "sequential")
    flow.max_workers = data.get("max_workers", 1)
    flow.execution_timeout = data.get("execution_timeout", 300.0)
    flow.execution_tracker = ExecutionTracker(flow.flow_id)
    flow.error_handler = handler
    flow.routines, flow.connections, flow._ids, flow._conn_index = {}, [], {}, {}
    for rid, routine in routines.items():
        flow.add_routine(routine, rid)
    for src, event, dst, slot, mapping in links:
        flow.connect(src, event, dst, slot, mapping or None)
    for name, value in extra.items():
        setattr(flow, name, value)
    if flow._scheduler is not None:
        flow._scheduler.max_workers = max(1, flow.max_workers)


def _routine_class(rid: str, rdata: Any) -> type[Routine]:
    """The class of a routine dict: ``_class`` if importable, else ``_type`` by name."""
    if not isinstance(rdata, dict):
        msg = f"routine {rid!r} must be a routine dict, got {type(rdata).__name__}"
        raise ValueError(msg)
    path = rdata.get("_class")
    if isinstance(path, str) and "<locals>" not in path:
        try:
            cls = resolve_name(path)
        except ValueError:
            cls = None
        if isinstance(cls, type) and issubclass(cls, Routine):
            return cls
    name = rdata.get("_type")
    if not isinstance(name, str):
        msg = f"routine {rid!r} has no class name (_type)"
        raise ValueError(msg)
    found = registered_type(name)
    if isinstance(found, type) and issubclass(found, Routine):
        return found
    candidates = [c for c in _subclasses(Routine) if c.__name__ == name]
    if len(candidates) == 1:
        return candidates[0]
    where = f" ({path})" if isinstance(path, str) else ""
    if candidates:
        msg = (f"routine {rid!r}: several classes are named {name!r} "
               f"({', '.join(qualified_name(c) for c in candidates)}); decorate the one to use with "
               "serilux's @register_serializable")
    else:
        msg = (f"routine {rid!r}: no routine class named {name!r}{where} is known; import the module "
               "that defines it (or decorate it with serilux's @register_serializable) before deserializing")
    raise ValueError(msg)


def _subclasses(cls: type[Routine]) -> list[type[Routine]]:
    found: list[type[Routine]] = []
    todo = list(cls.__subclasses__())
    while todo:
        sub = todo.pop()
        if sub not in found:
            found.append(sub)
            todo.extend(sub.__subclasses__())
    return found


def _link(index: int, cdata: Any, routines: dict[str, Routine], strict: bool,
          registry: Any) -> tuple[str, str, str, str, dict[str, str]]:
    """Resolve one connection dict to ``(source id, event, target id, slot, mapping)``."""
    conn = Connection()
    conn.deserialize(cdata, strict=strict, registry=registry)
    event_name = getattr(conn, "_source_event_name", None)
    slot_name = getattr(conn, "_target_slot_name", None)
    if not isinstance(event_name, str) or not isinstance(slot_name, str):
        msg = f"connection {index} names no source event or target slot: {cdata!r}"
        raise ValueError(msg)
    src = _endpoint(index, getattr(conn, "_source_routine_id", None), "event", event_name, routines)
    dst = _endpoint(index, getattr(conn, "_target_routine_id", None), "slot", slot_name, routines)
    return src, event_name, dst, slot_name, conn.param_mapping


def _endpoint(index: int, rid: Any, kind: str, name: str, routines: dict[str, Routine]) -> str:
    """The flow id of the routine at one end of connection ``index``."""
    def has(routine: Routine) -> bool:
        return (routine.get_event(name) if kind == "event" else routine.get_slot(name)) is not None

    if rid is not None:
        if rid in routines and has(routines[rid]):
            return str(rid)
        msg = f"connection {index}: routine {rid!r} has no {kind} {name!r} (routines: {', '.join(routines) or '(none)'})"
        raise ValueError(msg)
    matches = [key for key, routine in routines.items() if has(routine)]
    if not matches:
        msg = f"connection {index}: no routine has {'an' if kind == 'event' else 'a'} {kind} {name!r}"
        raise ValueError(msg)
    if len(matches) > 1:
        warnings.warn(
            f"connection {index} of this routilux 0.10 flow dict names {kind} {name!r}, which routines "
            f"{', '.join(repr(m) for m in matches)} all have; 0.10 dicts do not say which, so the first "
            f"({matches[0]!r}) is used, as 0.10 does. Serialize the flow again with this version to keep "
            "the routine ids", stacklevel=4)
    return matches[0]
