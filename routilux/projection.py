"""The JobState projection: a plain state container and the one apply step.

:func:`apply_event` folds one encoded event into a :class:`JobProjection`. It is the only
code that changes a projection, used by a live JobState right after the event is in its
log and by every rebuild, so a live state and a replay of its log are equal, types
included: both take every value from the event's bytes (DESIGN.md, rule 2). It never
reads the clock, does I/O or draws random numbers: every timestamp comes from the
event's ``ts``.

Storage choices that keep a mutation's cost independent of the size of the state:

* routine states and shared-data values are kept as their encoded bytes (a slice of the
  event that set them) and decoded only when read (:class:`PackedMap`); a snapshot is
  assembled from those bytes without re-encoding anything;
* the append-only history lists (execution history, shared log, output log, pause
  points) are not built by apply when the projection has a log to read them from: they
  are folded from the log on first access and extended from there
  (:func:`ensure_history`), so a rebuild, ``load`` or ``at()`` only counts those events.
  A projection without a log (``JobProjection()`` folded record by record) builds them as
  it goes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol, cast

from eventlog.encoding import EventSplitter, decode, decode_event, encode, encode_event, event_kind

from . import edit_ops
from . import job_events as ev
from .errors import ReadOnlyJobStateError, ReplayError, SchemaVersionError, UnknownEventKindError
from .execution_record import HINT_HISTORY, ExecutionRecord
from .frozen import (
    FrozenDict,
    FrozenList,
    LiveDict,
    LiveList,
    SyncedFrozenDict,
    SyncedFrozenList,
    freeze,
    freeze_live,
    thaw,
)
from .gc_pause import gc_paused
from .timestamps import iso_to_datetime, stamp_to_datetime, ts_to_datetime, ts_to_iso

__all__ = [
    "ExecutionRecord",
    "FieldAnchor",
    "HistorySource",
    "JobProjection",
    "LoggedEvent",
    "PackedMap",
    "apply",
    "apply_event",
    "complete_history",
    "ensure_history",
    "fold",
    "fold_raw",
    "from_snapshot",
    "iso_to_datetime",
    "snapshot_state",
    "ts_to_datetime",
    "ts_to_iso",
]

# Hints shown by the read-only containers: what to call instead of mutating them.
HINT_ROUTINE_STATES = "job_state.update_routine_state(routine_id, state)"
HINT_SHARED_DATA = "job_state.update_shared_data(key, value)"
HINT_SHARED_LOG = "job_state.append_to_shared_log(entry)"
#: The fields whose values accept in-place edits (each recorded as an event).
EDITABLE_FIELDS = ("routine_states", "shared_data", "shared_log", "execution_history")
HINT_OUTPUT_LOG = "job_state.send_output(routine_id, output_type, data)"
HINT_DEFERRED = "job_state.add_deferred_event(routine_id, event_name, data), or assign job_state.deferred_events"
HINT_PENDING = "an assignment: job_state.pending_tasks = [...]"
HINT_PAUSE = "flow.pause(job_state, ...) (or job_state._set_paused(reason, checkpoint))"
HINT_OPEN_TASKS = "the engine's task hooks (job_state._task_queued/_task_started/_task_finished/_task_failed)"

#: The history lists, in the order they are reported.
HISTORY_LISTS = ("execution_history", "shared_log", "output_log", "pause_points")


class LoggedEvent(NamedTuple):
    """An event as read from a log: a decoded record plus the bytes it was decoded from.

    :func:`apply` folds it without encoding it again (a plain ``Record`` is encoded first).
    """

    seq: int
    ts: int
    kind: str
    data: Any
    event_bytes: bytes


class HistorySource(Protocol):
    """Where a projection reads its history events from (an :class:`eventlog.EventLog`)."""

    def read_raw(self, start: int = 1, stop: int | None = None) -> Iterable[tuple[int, int, bytes]]:
        """``(seq, ts, event_bytes)`` for ``start..stop``."""
        ...  # pragma: no cover


class FieldAnchor:
    """Where the live containers of one field of a projection send their in-place edits.

    The projection's ``editor`` (set by a writable JobState) records the edit as an event;
    a projection without one (a view from ``at()``, a replay) refuses with its
    ``readonly_reason``.
    """

    __slots__ = ("field", "projection")

    def __init__(self, field: str, projection: JobProjection) -> None:
        self.field = field
        self.projection = projection

    def edit(self, container: Any, method: str, args: tuple[Any, ...]) -> Any:
        """Record ``container.<method>(*args)`` through the projection's editor."""
        p = self.projection
        editor = p.editor
        if editor is None:
            reason = p.readonly_reason or f"a replay of job {p.job_id!r} at version {p.version}"
            msg = f"this value is read-only: it belongs to {reason}; change the live JobState instead"
            raise ReadOnlyJobStateError(msg)
        return editor(self.field, container, method, args)


class PackedMap:
    """A map whose values are kept encoded (the truth), with a live view decoded lazily.

    ``packed`` maps each key to the encoded bytes of its value, or to ``None`` once the
    value was edited in place (the decoded value in the view is then the truth, and is
    encoded again only when a snapshot needs it: :meth:`encoded`). ``view`` (a
    :class:`~routilux.frozen.SyncedFrozenDict`) holds the decoded values as live
    containers; keys set since the last read wait in ``stale`` and are decoded by the
    view's next read, under ``lock``. Writers (apply) are serialised by the projection's owner.
    """

    __slots__ = ("anchor", "dirty", "hint", "lock", "packed", "stale", "view")

    def __init__(self, hint: str, lock: Any, anchor: FieldAnchor) -> None:
        self.hint = hint
        self.lock = lock
        self.anchor = anchor
        self.packed: dict[Any, bytes | None] = {}
        self.stale: dict[Any, bytes] = {}
        self.dirty: set[Any] = set()  # the keys whose ``packed`` entry is None (edited in place)
        self.view = SyncedFrozenDict(hint=hint, anchor=anchor)
        self.view.sync = self.sync

    def set(self, key: Any, value_bytes: bytes) -> None:
        """Set ``key`` to the value encoded as ``value_bytes``."""
        self.packed[key] = value_bytes
        self.stale[key] = value_bytes
        if self.dirty:
            self.dirty.discard(key)

    def replace(self, items: dict[Any, bytes]) -> None:
        """Replace every entry."""
        with self.lock:
            dict.clear(self.view)
            self.packed = dict(items)
            self.stale = dict(items)
            self.dirty = set()

    def delete(self, key: Any) -> None:
        """Remove ``key`` (KeyError if absent)."""
        del self.packed[key]
        self.stale.pop(key, None)
        self.dirty.discard(key)
        dict.pop(self.view, key, None)

    def value(self, key: Any) -> Any:
        """The live value at ``key`` (decoded now if needed), or KeyError."""
        if self.stale:
            self.sync()
        return dict.__getitem__(self.view, key)

    def touch(self, key: Any) -> None:
        """The value at ``key`` was edited in place: its bytes are stale."""
        self.packed[key] = None
        self.dirty.add(key)

    def encoded(self) -> dict[Any, bytes]:
        """Every entry as encoded bytes (values edited in place are encoded again, once)."""
        packed = self.packed
        for key in self.dirty:
            packed[key] = encode(thaw(dict.__getitem__(self.view, key)), path="state")
        self.dirty.clear()
        return cast("dict[Any, bytes]", dict(packed))  # (no None left: every dirty key was encoded above)

    def sync(self) -> None:
        """Decode the values set since the last read into the view."""
        if self.stale:
            with self.lock:
                stale = self.stale
                view = self.view
                hint = self.hint
                anchor = self.anchor
                for key, value_bytes in stale.items():
                    dict.__setitem__(view, key, freeze_live(decode(value_bytes, where="<state>"), hint, anchor, (key,)))
                stale.clear()


class JobProjection:
    """The state of one job after folding events ``1..version``.

    Plain attributes; the containers are the types of :mod:`routilux.frozen` (only
    :func:`apply_event` changes them: the live ones of the editable fields hand a
    mutation to the projection's ``editor``, which records it as an event that apply
    then folds). ``created``/``updated`` are the event ts (int ns) that set them, or an
    ISO string restored by ``deserialize``.

    The history lists hold the items of events ``history_from+1 .. history_upto``.
    Without a ``history_source`` the projection builds them as events are applied
    (``history_upto == version``); :func:`complete_history` adds the part before a
    snapshot. With one, :func:`ensure_history` reads what is missing from it.

    Args:
        lock: the lock guarding lazy decoding (a JobState passes its own).
        history_source: the log to read history events from (lazy history), or None.
    """

    __slots__ = (
        "_routine_states", "_shared_data", "anchors", "created", "current_routine_id", "deferred_events", "editor",
        "execution_history", "flow_id", "history_from", "history_routine", "history_source", "history_upto",
        "job_id", "kind_counts", "last_ts", "lock", "open_tasks", "output_log", "pause_points", "pending_tasks",
        "readonly_reason", "schema", "shared_log", "status", "updated", "version",
    )

    def __init__(self, lock: Any = None, history_source: HistorySource | None = None) -> None:
        self.lock = lock if lock is not None else threading.RLock()
        self.job_id = ""
        self.flow_id = ""
        self.schema = ev.SCHEMA_VERSION
        self.status = "pending"
        self.current_routine_id: str | None = None
        # In-place edits of the editable fields go to ``editor`` (a writable JobState sets
        # it); without one they are refused, naming ``readonly_reason``.
        self.editor: Any = None
        self.readonly_reason = ""
        self.anchors = {name: FieldAnchor(name, self) for name in EDITABLE_FIELDS}
        self._routine_states = PackedMap(HINT_ROUTINE_STATES, self.lock, self.anchors["routine_states"])
        self._shared_data = PackedMap(HINT_SHARED_DATA, self.lock, self.anchors["shared_data"])
        self.deferred_events = FrozenList(hint=HINT_DEFERRED)
        self.pending_tasks = FrozenList(hint=HINT_PENDING)
        self.open_tasks = FrozenDict(hint=HINT_OPEN_TASKS)
        self.created: int | str | None = None
        self.updated: int | str | None = None
        self.version = 0
        self.last_ts = 0
        self.execution_history = SyncedFrozenList(hint=HINT_HISTORY, anchor=self.anchors["execution_history"])
        self.shared_log = LiveList(hint=HINT_SHARED_LOG, anchor=self.anchors["shared_log"])
        self.output_log = FrozenList(hint=HINT_OUTPUT_LOG)
        self.pause_points = FrozenList(hint=HINT_PAUSE)
        self.history_from = 0
        self.history_upto = 0
        self.history_routine: str | None = None  # current_routine_id as of history_upto
        self.history_source = history_source
        self.kind_counts: dict[str, int] = {}

    @property
    def routine_states(self) -> FrozenDict:
        """routine id -> state (read-only, decoded on first read)."""
        return self._routine_states.view

    @property
    def shared_data(self) -> FrozenDict:
        """Shared data (read-only, values decoded on first read)."""
        return self._shared_data.view

    @property
    def created_at(self) -> Any:
        """``created`` as a naive local datetime."""
        return stamp_to_datetime(self.created)

    @property
    def updated_at(self) -> Any:
        """``updated`` as a naive local datetime."""
        return stamp_to_datetime(self.updated)

    @property
    def history_complete(self) -> bool:
        """True when the history lists hold every item up to :attr:`version`."""
        return self.history_from == 0 and self.history_upto == self.version


# -- the one apply ------------------------------------------------------------------
_list_append = list.append
_dict_set = dict.__setitem__
_dict_pop = dict.pop


def _replace_list(target: FrozenList, items: Iterable[Any]) -> None:
    list.__setitem__(target, slice(None), list(items))


# The events whose last value stays encoded: routine states, shared data, execution records.
_ROUTINE_STATE = EventSplitter("routine_id", "state")
_SHARED_VALUE = EventSplitter("key", "value")
_EXECUTION = EventSplitter("routine_id", "event_name", "data", kind=ev.EXECUTION_RECORDED)
# A record with its own time.
_EXECUTION_AT = EventSplitter("routine_id", "event_name", "timestamp", "data", kind=ev.EXECUTION_RECORDED)
# First bytes of an encoded map (fixmap, map16, map32): a routine state or a record's data
# kept encoded is checked to be a dict by its first byte, without decoding it.
_MAP_HEADS = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])
_SHAPE_CHECKS = ev.SHAPE_CHECKS


def _shape_error(kind: str, data: Any, seq: int | None = None) -> ReplayError:
    """The ReplayError for a payload without its kind's declared shape (naming the field)."""
    found = ev.payload_problem(kind, data)
    field, problem = found if found is not None else (None, "does not have the declared shape")
    where = f"field {field!r}" if field is not None else "payload"
    return ReplayError(f"malformed {kind!r} event: {where} {problem}", seq, field)


def _decoded(kind: str, event_bytes: bytes) -> dict[str, Any]:
    """The payload of an event, decoded and checked against its kind's shape."""
    data = decode_event(event_bytes)[1]
    if not _SHAPE_CHECKS[kind](data):
        raise _shape_error(kind, data)
    return data


def _keyed(event_bytes: bytes, data: dict[str, Any] | None, kind: str, splitter: EventSplitter, first: str,
           last: str) -> tuple[Any, ...]:
    """The key and the encoded value of a ``{first: key, last: value}`` event, value not decoded.

    The splitter reads the writer's layout and checks that the key is a str; any other
    layout is decoded, checked against the kind's shape and its value encoded again.
    """
    parts = splitter.split(event_bytes)
    if parts is not None:
        return parts
    d = _decoded(kind, event_bytes)
    return d[first], encode(d[last], path="state")


def _job_created(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    schema = d.get("schema", 1)
    if schema > ev.SCHEMA_VERSION:
        msg = (f"the job was written with event schema version {schema!r}, newer than the "
               f"{ev.SCHEMA_VERSION} this routilux reads; upgrade routilux")
        raise SchemaVersionError(msg)
    p.job_id = d["job_id"]
    p.flow_id = d["flow_id"]
    p.schema = schema
    p.created = ts


def _check_status(status: Any) -> None:
    # 0.10 lets a job have a custom status; an empty one is never meaningful.
    if type(status) is not str or not status:
        msg = f"status must be a non-empty str, got {status!r}"
        raise ReplayError(msg, field="status")


def _status_set(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    status = d["status"]
    _check_status(status)
    p.status = status


def _current_routine_set(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    p.current_routine_id = d["routine_id"]


def _job_id_set(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    p.job_id = d["job_id"]


def _flow_id_set(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    p.flow_id = d["flow_id"]


def _routine_state_set(p: JobProjection, ts: int, b: bytes, data: dict[str, Any] | None) -> None:
    routine_id, state = _keyed(b, data, ev.ROUTINE_STATE_SET, _ROUTINE_STATE, "routine_id", "state")
    if state[0] not in _MAP_HEADS:
        msg = "malformed 'routine_state_set' event: field 'state' must be a dict"
        raise ReplayError(msg, field="state")
    p._routine_states.set(routine_id, state)


def _shared_data_set(p: JobProjection, ts: int, b: bytes, data: dict[str, Any] | None) -> None:
    key, value = _keyed(b, data, ev.SHARED_DATA_SET, _SHARED_VALUE, "key", "value")
    p._shared_data.set(key, value)


def _deferred_event_added(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    entry = {"routine_id": d["routine_id"], "event_name": d["event_name"], "data": d["data"],
             "timestamp": ts_to_iso(ts)}
    _list_append(p.deferred_events, freeze(entry, HINT_DEFERRED))


def _deferred_events_set(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    _replace_list(p.deferred_events, freeze(d["events"], HINT_DEFERRED))


def _resumed(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    if p.status == "paused":
        p.status = "running"


def _paused(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    p.status = "paused"


def _cancelled(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    p.status = "cancelled"
    reason = d["reason"]
    if reason:
        p._routine_states.set("_cancellation", encode({"reason": reason}, path="state"))


def _pending_tasks_set(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    _replace_list(p.pending_tasks, freeze(d["tasks"], HINT_PENDING))


def _task_queued(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    _dict_set(p.open_tasks, d["task_id"], freeze({"task": d["task"], "state": "queued"}, HINT_OPEN_TASKS))


def _task_started(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    task_id = d["task_id"]
    entry = p.open_tasks.get(task_id)
    if entry is not None:
        _dict_set(p.open_tasks, task_id, freeze({"task": entry["task"], "state": "started"}, HINT_OPEN_TASKS))


def _task_closed(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    _dict_pop(p.open_tasks, d["task_id"], None)


def _deserialized(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    state = d["state"]
    for name in ("flow_id", "job_id", "status", "current_routine_id"):
        if name in state:
            setattr(p, name, state[name])
    _check_status(p.status)
    for name, packed in (("routine_states", p._routine_states), ("shared_data", p._shared_data)):
        if name in state:
            packed.replace({k: encode(v, path="state") for k, v in state[name].items()})
    for name, hint in (("deferred_events", HINT_DEFERRED), ("pending_tasks", HINT_PENDING)):
        if name in state:
            _replace_list(getattr(p, name), freeze(state[name], hint))
    if state.get("created_at") is not None:
        p.created = state["created_at"]


# -- in-place edits of routine_states / shared_data (history lists: in the history fold)
def _keyed_edit(p: JobProjection, packed: PackedMap, d: dict[str, Any], key: Any) -> None:
    """Apply an edit event of a keyed field: inside the value at ``key``, or (key None) of the map itself."""
    op, args, path = d["op"], d["args"], d["path"]
    if key is None:
        _map_edit(packed, op, args, path)
        return
    stored = packed.packed
    if not dict.__contains__(stored, key):
        msg = f"no value at key {key!r} to edit"
        raise ReplayError(msg, field="key")
    if packed.stale:
        packed.sync()
    root = dict.__getitem__(packed.view, key)
    if path:
        target = _walk(root, path)
        target._path = (key, *path)  # the live container's path hint, exact again
    elif isinstance(root, (LiveDict, LiveList)):
        target = root
        target._path = (key,)  # (what it was decoded with; set again, as for a nested one)
    else:
        msg = f"the value at key {key!r} is a {type(root).__name__}, not a dict or list"
        raise ReplayError(msg, field="path")
    # (New values are frozen by the container itself, live and with their paths: no
    # closure to build on a path taken per edit.)
    _edit(target, op, args, target._live_child)
    if dict.__getitem__(stored, key) is not None:
        packed.touch(key)  # (once: later edits of the same value find its bytes stale already)


def _walk(root: Any, path: list[Any]) -> Any:
    """The container at ``path`` inside ``root`` (each step a dict key, or a list/tuple index)."""
    target = root
    for step in path:
        try:
            if isinstance(target, dict):
                target = dict.__getitem__(target, step)
            elif isinstance(target, tuple) and type(step) is int:
                target = target[step]
            elif isinstance(target, list) and type(step) is int:
                target = list.__getitem__(target, step)
            else:
                raise LookupError(step)
        except (LookupError, TypeError):
            msg = f"the edit's path {path!r} does not lead to a container (stops at {step!r})"
            raise ReplayError(msg, field="path") from None
    if not isinstance(target, (dict, list)):
        msg = f"the edit's path {path!r} leads to a {type(target).__name__}, not a dict or list"
        raise ReplayError(msg, field="path")
    return target


def _edit(target: Any, op: str, args: list[Any], child: Any) -> None:
    """Check and apply one edit operation (:mod:`routilux.edit_ops`), its failure a ReplayError."""
    try:
        edit_ops.check(target, op, args)
    except (TypeError, ValueError, LookupError) as exc:
        msg = f"the edit {op!r} cannot apply ({type(exc).__name__}: {exc})"
        raise ReplayError(msg, field="args") from None
    edit_ops.apply(target, op, args, child)


def _map_edit(packed: PackedMap, op: str, args: list[Any], path: list[Any]) -> None:
    """An edit of the routine_states/shared_data map itself: values are stored encoded."""
    if path:
        msg = "an edit of the whole map has an empty path"
        raise ReplayError(msg, field="path")
    arity = edit_ops.DICT_OPS.get(op)
    if arity is None or len(args) != arity:
        msg = f"{op!r} with {len(args)} argument(s) is not an edit of a map"
        raise ReplayError(msg, field="op")
    routine_map = packed is not None and packed.hint == HINT_ROUTINE_STATES
    if op in ("update", "replace", "setitem"):
        items = args[0] if op != "setitem" else {args[0]: args[1]}
        if type(items) is not dict:
            msg = f"{op!r} needs a dict"
            raise ReplayError(msg, field="args")
        for key, value in items.items():
            if type(key) is not str or (routine_map and type(value) is not dict):
                msg = f"{op!r} of a key {key!r} (keys are str{', states dicts' if routine_map else ''})"
                raise ReplayError(msg, field="args")
        encoded = {key: encode(value, path="state") for key, value in items.items()}
        with packed.lock:
            if op == "replace":
                packed.replace({})
            for key, value_bytes in encoded.items():
                packed.set(key, value_bytes)
    elif op == "delitem":
        if not dict.__contains__(packed.packed, args[0]):
            msg = f"no key {args[0]!r} to delete"
            raise ReplayError(msg, field="args")
        with packed.lock:
            packed.delete(args[0])
    else:  # clear
        packed.replace({})


def _shared_data_edited(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    _keyed_edit(p, p._shared_data, d, d["key"])


def _routine_state_edited(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    # (A routine state is a dict and stays one: an edit changes what is inside it.)
    _keyed_edit(p, p._routine_states, d, d["routine_id"])


def _history_only(p: JobProjection, ts: int, d: dict[str, Any]) -> None:
    """The current state does not change; the history lists are built by the history fold."""


# Kinds whose handler takes the raw event (it keeps a value encoded; the splitter checks
# the shape of the writer's layout, anything else is decoded and checked).
_RAW_HANDLERS = {
    ev.ROUTINE_STATE_SET: _routine_state_set,
    ev.SHARED_DATA_SET: _shared_data_set,
}
# Kinds whose handler takes the decoded payload, already checked against its shape.
_HANDLERS = {
    ev.JOB_CREATED: _job_created,
    ev.STATUS_SET: _status_set,
    ev.CURRENT_ROUTINE_SET: _current_routine_set,
    ev.EXECUTION_RECORDED: _history_only,
    ev.DEFERRED_EVENT_ADDED: _deferred_event_added,
    ev.DEFERRED_EVENTS_SET: _deferred_events_set,
    ev.SHARED_LOG_APPENDED: _history_only,
    ev.OUTPUT_SENT: _history_only,
    ev.PAUSE_POINT_ADDED: _history_only,
    ev.PAUSED: _paused,
    ev.RESUMED: _resumed,
    ev.CANCELLED: _cancelled,
    ev.PENDING_TASKS_SET: _pending_tasks_set,
    ev.TASK_QUEUED: _task_queued,
    ev.TASK_STARTED: _task_started,
    ev.TASK_FINISHED: _task_closed,
    ev.TASK_FAILED: _task_closed,
    ev.DESERIALIZED: _deserialized,
    ev.PERSONAL_ERASED: _history_only,  # the state holds commitments only: nothing changes
    ev.JOB_ID_SET: _job_id_set,
    ev.FLOW_ID_SET: _flow_id_set,
    ev.SHARED_DATA_EDITED: _shared_data_edited,
    ev.ROUTINE_STATE_EDITED: _routine_state_edited,
    ev.SHARED_LOG_EDITED: _history_only,
    ev.EXECUTION_HISTORY_EDITED: _history_only,
}
assert set(_HANDLERS) | set(_RAW_HANDLERS) == set(ev.KINDS), "every kind in routilux.job_events needs a handler"

# The first bytes of each known event (0x92, then the kind as a msgpack fixstr) -> its
# kind: finding the kind is one dict lookup, no decoding (see _kind).
_KIND_PREFIXES = {b"\x92" + encode(kind): kind for kind in ev.KINDS}
_HISTORY_KINDS = ev.HISTORY_KINDS
_HISTORY_ONLY_KINDS = ev.HISTORY_ONLY_KINDS
_JOB_CREATED = ev.JOB_CREATED
_DESERIALIZED = ev.DESERIALIZED
_EXECUTION_RECORDED = ev.EXECUTION_RECORDED
_CURRENT_ROUTINE_SET = ev.CURRENT_ROUTINE_SET


def _kind(event_bytes: bytes) -> str | None:
    """The kind of an encoded event (a table lookup for known kinds)."""
    kind = _KIND_PREFIXES.get(event_bytes[: event_bytes[1] - 0x9E]) if len(event_bytes) > 1 else None
    return kind if kind is not None else event_kind(event_bytes)


def apply_event(p: JobProjection, seq: int, ts: int, event_bytes: bytes, data: dict[str, Any] | None = None,
                kind: str | None = None, checked: bool = False) -> None:
    """Fold one encoded event (as stored in the log) into ``p``, in place. Pure.

    ``kind`` and ``data`` may be given when the caller has them already (they must be
    what decoding ``event_bytes`` gives: the writer that just encoded the event, a reader
    that decoded it); values are taken from the bytes, or from ``data`` when it is exactly
    what decoding them gives.

    Every payload is checked against its kind's declared shape (:mod:`routilux.job_events`)
    before it changes anything, except the history-only kinds of a projection that reads
    its history lists from the log: those are checked when the lists are folded.
    ``checked=True``: the writer checked it before encoding the event (a checked payload
    keeps its shape through the codec), so it is not checked twice.

    Raises:
        ReplayError: the seq does not follow ``p.version``, the log does not start with
            ``job_created``, or the payload is malformed (its ``field`` names the field).
        UnknownEventKindError: a kind not in :data:`routilux.job_events.KINDS`.
        SchemaVersionError: the job was written with a newer schema version.
        eventlog.RecordDecodeError: the bytes are not an event.
    """
    if seq != p.version + 1:
        msg = f"events must be applied in order: expected seq {p.version + 1}, got {seq}"
        raise ReplayError(msg, seq)
    if kind is None:
        try:
            kind = _KIND_PREFIXES.get(event_bytes[: event_bytes[1] - 0x9E])
        except IndexError:
            kind = None
        if kind is None:
            kind = decode_event(event_bytes, seq=seq)[0]  # raises the precise decode error
    lazy = p.history_source is not None
    # The common case first: a history-only kind (known, and not job_created: seq > 1) of
    # a projection that reads its history lists from the log changes nothing but those
    # lists, folded (and checked) when they are read.
    if not lazy or kind not in _HISTORY_ONLY_KINDS or seq == 1:
        if kind not in _SHAPE_CHECKS:
            msg = (f"unknown event kind {kind!r}: this routilux reads event schema version "
                   f"{ev.SCHEMA_VERSION} (the log may come from a newer version)")
            raise UnknownEventKindError(msg, seq)
        if (seq == 1) != (kind == _JOB_CREATED):
            msg = "a job log starts with exactly one job_created event (at seq 1)"
            raise ReplayError(msg, seq)
        try:
            if kind in _RAW_HANDLERS:
                if data is not None and not checked and not _SHAPE_CHECKS[kind](data):
                    raise _shape_error(kind, data)
                _RAW_HANDLERS[kind](p, ts, event_bytes, data)
            else:
                if data is None:
                    data = decode_event(event_bytes, seq=seq)[1]
                if not checked and not _SHAPE_CHECKS[kind](data):
                    raise _shape_error(kind, data)
                if lazy or kind not in _HISTORY_KINDS:
                    _HANDLERS[kind](p, ts, data)
                else:  # no log to read the history lists from later: build them now
                    routine = p.current_routine_id
                    _HANDLERS[kind](p, ts, data)
                    _fold_history(p, ((seq, ts, event_bytes),), routine)
        except ReplayError as exc:
            if exc.seq is None:
                raise type(exc)(str(exc), seq, exc.field) from None
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            msg = f"malformed {kind!r} event payload ({type(exc).__name__}: {exc})"
            raise ReplayError(msg, seq) from None
    p.version = seq
    p.last_ts = ts
    if not lazy:
        p.history_upto = seq
        p.history_routine = p.current_routine_id
    counts = p.kind_counts
    counts[kind] = counts.get(kind, 0) + 1
    if kind == _DESERIALIZED:
        updated = (data if data is not None else decode_event(event_bytes)[1])["state"].get("updated_at")
        p.updated = ts if updated is None else updated
    else:
        p.updated = ts


def apply(p: JobProjection, record: Any) -> None:
    """Fold one decoded record ``(seq, ts, kind, data)`` into ``p``: :func:`apply_event` of its encoding.

    A :class:`LoggedEvent` brings its stored bytes; any other record is encoded (the
    canonical encoding gives back the bytes it was decoded from).
    """
    if type(record) is LoggedEvent:
        apply_event(p, record.seq, record.ts, record.event_bytes, record.data, record.kind)
        return
    seq, ts, kind, data = record
    event_bytes = encode_event(kind, data)
    apply_event(p, seq, ts, event_bytes, data)


def fold(records: Iterable[Any], p: JobProjection | None = None) -> JobProjection:
    """Apply decoded ``records`` in order to ``p`` (a new projection by default) and return it."""
    if p is None:
        p = JobProjection()
    for record in records:
        apply(p, record)
    return p


def fold_raw(p: JobProjection, events: Iterable[tuple[int, int, bytes]]) -> JobProjection:
    """Apply ``(seq, ts, event_bytes)`` events (a log's ``read_raw``) in order to ``p``; return it."""
    for seq, ts, event_bytes in events:
        apply_event(p, seq, ts, event_bytes)
    return p


# -- the history lists ------------------------------------------------------------------
# Events the history fold reads: those that add to the lists, and those that change the
# current routine (a pause point records it).
_HISTORY_FOLD_KINDS = ev.HISTORY_KINDS | {ev.CURRENT_ROUTINE_SET}
_HISTORY_EDITS = frozenset({ev.SHARED_LOG_EDITED, ev.EXECUTION_HISTORY_EDITED})
_EXECUTION_PREFIX = b"\x92" + encode(ev.EXECUTION_RECORDED)  # an execution record's first bytes


def _fold_history(p: JobProjection, events: Iterable[tuple[int, int, bytes]], routine: str | None) -> str | None:
    """Add what ``events`` contribute to the history lists of ``p``; return the current routine after them.

    ``routine`` is the job's current routine before the first event (a pause point
    records it). The one definition of the history lists: used for the lists read from
    the log when they are asked for, and (one event at a time) for a projection that
    builds them as events are applied. An execution record keeps its data encoded until
    it is read (most never are), so a long history is built quickly. Each payload is
    checked against its kind's shape (the writer's layout of an execution record by its
    splitter, without decoding the data).
    """
    history = p.execution_history
    split = _EXECUTION.split
    record = ExecutionRecord.from_event
    map_heads = _MAP_HEADS
    record_prefix = _EXECUTION_PREFIX
    for seq, ts, event_bytes in events:
        if event_bytes.startswith(record_prefix):
            # Most history events are execution records in the writer's layout. (Tested
            # first by their kind's bytes: an event of another kind, which may be long,
            # never reaches the splitter.)
            parts = split(event_bytes)
            if parts is not None:
                routine_id, event_name, data = parts
                if data[0] in map_heads:
                    _list_append(history, record(routine_id, event_name, data, ts))
                    continue
            parts = _EXECUTION_AT.split(event_bytes)
            if parts is not None and parts[3][0] in map_heads:
                _list_append(history, record(parts[0], parts[1], parts[3], ts, _record_time(parts[2], seq)))
                continue
            kind = _EXECUTION_RECORDED
        else:
            found = _kind(event_bytes)
            if found is None or found not in _HISTORY_FOLD_KINDS:
                continue
            kind = found
        try:
            d = decode_event(event_bytes, seq=seq)[1]
            if not _SHAPE_CHECKS[kind](d):
                raise _shape_error(kind, d, seq)
            if kind == _EXECUTION_RECORDED:
                stamp = d.get("timestamp")
                _list_append(history, record(d["routine_id"], d["event_name"], d["data"], ts,
                                             None if stamp is None else _record_time(stamp, seq)))
            elif kind == _CURRENT_ROUTINE_SET:
                routine = d["routine_id"]
            elif kind == ev.SHARED_LOG_APPENDED:
                entry = d["entry"]
                if "timestamp" not in entry:
                    entry = {**entry, "timestamp": ts_to_iso(ts)}
                log = p.shared_log
                _list_append(log, freeze_live(entry, HINT_SHARED_LOG, p.anchors["shared_log"], (list.__len__(log),)))
            elif kind == ev.OUTPUT_SENT:
                entry = {"routine_id": d["routine_id"], "output_type": d["output_type"], "data": d["data"],
                         "timestamp": ts_to_iso(ts)}
                _list_append(p.output_log, freeze(entry, HINT_OUTPUT_LOG))
            elif kind == ev.PAUSE_POINT_ADDED:
                _list_append(p.pause_points, freeze(d["point"], HINT_PAUSE))
            elif kind == ev.PAUSED:
                point = {"timestamp": ts_to_iso(ts), "reason": d["reason"], "current_routine_id": routine,
                         "checkpoint": d["checkpoint"]}
                _list_append(p.pause_points, freeze(point, HINT_PAUSE))
            elif kind in _HISTORY_EDITS:
                if p.history_from:
                    # The lists lack the items of events 1..history_from (the projection
                    # started from a snapshot and builds them as it goes): an edit cannot
                    # apply to part of a list. They start after this event instead, and
                    # complete_history folds 1..seq, this edit included.
                    for name in HISTORY_LISTS:
                        _replace_list(getattr(p, name), ())
                    p.history_from = seq
                elif kind == ev.SHARED_LOG_EDITED:
                    _shared_log_edit(p, d)
                else:
                    _history_edit(p, d, ts)
            elif kind == _DESERIALIZED:
                routine = _deserialized_history(p, ts, d["state"], routine)
        except ReplayError as exc:
            if exc.seq is None:
                raise ReplayError(str(exc), seq, exc.field) from None
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            msg = f"malformed {kind!r} event payload ({type(exc).__name__}: {exc})"
            raise ReplayError(msg, seq) from None
    return routine


def _record_time(stamp: str, seq: int | None = None) -> Any:
    """An execution record's own ISO timestamp as a datetime."""
    try:
        return iso_to_datetime(stamp)
    except ValueError:
        msg = f"malformed 'execution_recorded' event: field 'timestamp' {stamp!r} is not an ISO datetime"
        raise ReplayError(msg, seq, "timestamp") from None


def _shared_log_edit(p: JobProjection, d: dict[str, Any]) -> None:
    """An edit of the shared log (path []) or inside one of its entries (path [i, ...])."""
    path = d["path"]
    target = _walk(p.shared_log, path)
    anchor = p.anchors["shared_log"]
    base = tuple(path)
    if isinstance(target, (LiveList, LiveDict)):
        target._path = base

    def child(value: Any, at: Any) -> Any:
        if not base and type(value) is not dict:
            msg = f"a shared log entry must be a dict, got {type(value).__name__}"
            raise ReplayError(msg, field="args")
        return freeze_live(value, HINT_SHARED_LOG, anchor, (*base, at))

    if not base:
        _check_entries(d["op"], d["args"], child)
    _edit(target, d["op"], d["args"], child)


def _new_values(op: str, args: list[Any]) -> list[Any]:
    """The new values a list edit stores (to check them before anything changes)."""
    if op in ("append", "insert", "setitem"):
        return [args[-1]] if args else []
    if op in ("extend", "replace"):
        return list(args[0]) if args and type(args[0]) is list else []
    if op == "setslice":
        return list(args[3]) if len(args) == 4 and type(args[3]) is list else []
    return []


def _check_entries(op: str, args: list[Any], child: Any) -> None:
    for value in _new_values(op, args):
        child(value, 0)  # raises for a value the list cannot hold (nothing changed yet)


def _history_edit(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    """An edit of the execution history (records are immutable: path is always [])."""
    if d["path"]:
        msg = "execution records are immutable: an execution history edit has an empty path"
        raise ReplayError(msg, field="path")
    op, args = d["op"], d["args"]
    records = {id(value): _record_from_dict(value, ts) for value in _new_values(op, args)}

    def child(value: Any, at: Any) -> Any:
        return records[id(value)]

    _edit(p.execution_history, op, args, child)


def _record_from_dict(value: Any, ts: int) -> ExecutionRecord:
    """An execution record stored in an edit: ``{routine_id, event_name, data, timestamp}``."""
    if (type(value) is not dict or set(value) != {"routine_id", "event_name", "data", "timestamp"}
            or type(value["routine_id"]) is not str or type(value["event_name"]) is not str
            or type(value["data"]) is not dict or type(value["timestamp"]) is not str):
        msg = f"an execution record must be {{routine_id, event_name, data, timestamp}}, got {value!r}"
        raise ReplayError(msg, field="args")
    return ExecutionRecord.from_event(value["routine_id"], value["event_name"], value["data"], ts,
                                      _record_time(value["timestamp"]))


def _deserialized_history(p: JobProjection, ts: int, state: dict[str, Any], routine: str | None) -> str | None:
    """What a ``deserialized`` event does to the history lists; returns the current routine after it."""
    if "shared_log" in state:
        anchor = p.anchors["shared_log"]
        _replace_list(p.shared_log, [freeze_live(entry, HINT_SHARED_LOG, anchor, (i,))
                                     for i, entry in enumerate(state["shared_log"])])
    for name, hint in (("output_log", HINT_OUTPUT_LOG), ("pause_points", HINT_PAUSE)):
        if name in state:
            _replace_list(getattr(p, name), freeze(state[name], hint))
    if "execution_history" in state:
        _replace_list(p.execution_history, [
            ExecutionRecord.from_event(r["routine_id"], r["event_name"], r["data"],
                                       None if r.get("timestamp") is not None else ts,
                                       iso_to_datetime(r.get("timestamp")))
            for r in state["execution_history"]
        ])
    if all(name in state for name in HISTORY_LISTS):
        p.history_from = 0  # every list was replaced: nothing before this event matters
    after: str | None = state.get("current_routine_id", routine)
    return after


def ensure_history(p: JobProjection) -> None:
    """Bring the history lists of ``p`` up to :attr:`~JobProjection.version` from its history source.

    Call with ``p.lock`` held (a JobState does). Without a source there is nothing to
    read: the lists are as complete as :attr:`~JobProjection.history_complete` says.
    """
    source = p.history_source
    if source is None or p.history_complete:
        return
    version = p.version
    # Paused for the events read (the whole log when the projection started from a
    # snapshot), not for those since the snapshot: they are what the fold builds objects for.
    if p.history_from:
        # Nothing before the snapshot the projection started from has been folded: fold
        # the whole history in one pass (the lists are still empty).
        for name in HISTORY_LISTS:
            _replace_list(getattr(p, name), ())
        p.history_from = 0
        with gc_paused(version):
            p.history_routine = _fold_history(p, source.read_raw(1, version), None)
    else:
        with gc_paused(version - p.history_upto):
            p.history_routine = _fold_history(p, source.read_raw(p.history_upto + 1, version),
                                              p.history_routine)
    p.history_upto = version


def complete_history(p: JobProjection, records: Iterable[Any]) -> None:
    """Prepend the history of events ``1..p.history_from`` (decoded ``records``) to ``p``'s lists."""
    if p.history_from == 0:
        return
    scratch = fold(records)
    if scratch.version != p.history_from:
        msg = f"history rebuild stopped at seq {scratch.version}, expected {p.history_from}"
        raise ReplayError(msg)
    anchor = p.anchors["shared_log"]
    for name in HISTORY_LISTS:
        items = getattr(scratch, name)
        if name == "shared_log":  # entries of p's own shared log, edited through p's anchor
            items = [freeze_live(entry, HINT_SHARED_LOG, anchor, (i,)) for i, entry in enumerate(items)]
        list.__setitem__(getattr(p, name), slice(0, 0), items)
    p.history_from = 0


# -- snapshots ----------------------------------------------------------------------
def snapshot_state(p: JobProjection) -> dict[str, Any]:
    """Return the current state of ``p`` as a storable dict (no history lists).

    Routine states and shared-data values are their encoded bytes, as kept by the
    projection: assembling a snapshot encodes nothing again (its cost is a copy of the
    bytes, whatever the values are), except the values edited in place since they were
    last encoded, each encoded once. Every container is a copy (its items are
    immutable), so the result can be stored by another thread while the projection moves on.
    """
    return {
        "schema": p.schema,
        "job_id": p.job_id,
        "flow_id": p.flow_id,
        "status": p.status,
        "current_routine_id": p.current_routine_id,
        "routine_states": p._routine_states.encoded(),
        "shared_data": p._shared_data.encoded(),
        "deferred_events": list(p.deferred_events),
        "pending_tasks": list(p.pending_tasks),
        "open_tasks": dict(p.open_tasks),
        "created": p.created,
        "updated": p.updated,
        "version": p.version,
        "last_ts": p.last_ts,
        "kind_counts": dict(p.kind_counts),
    }


def _packed_items(value: Any, name: str) -> dict[Any, bytes]:
    if not isinstance(value, dict) or not all(type(k) is str and type(v) is bytes for k, v in value.items()):
        msg = f"snapshot field {name!r} must map str keys to encoded values"
        raise TypeError(msg)
    return value


def from_snapshot(state: dict[str, Any], seq: int, *, lock: Any = None,
                  history_source: HistorySource | None = None) -> JobProjection:
    """Rebuild a projection at ``seq`` from :func:`snapshot_state` output.

    The history lists start empty with ``history_from = seq``: events applied later add
    to them, and the part before the snapshot comes from :func:`complete_history` or,
    with a ``history_source``, :func:`ensure_history`.

    Raises:
        SchemaVersionError: the snapshot was written by a newer schema.
        ReplayError: the snapshot is malformed or is not for ``seq``.
    """
    try:
        schema = state["schema"]
        if type(schema) is not int or schema > ev.SCHEMA_VERSION:
            msg = f"snapshot schema version {schema!r} is newer than {ev.SCHEMA_VERSION}; upgrade routilux"
            raise SchemaVersionError(msg, seq)
        if state["version"] != seq:
            msg = f"snapshot claims version {state['version']!r} but is stored at seq {seq}"
            raise ReplayError(msg, seq)
        p = JobProjection(lock, history_source)
        p.schema = schema
        p.job_id = state["job_id"]
        p.flow_id = state["flow_id"]
        p.status = state["status"]
        p.current_routine_id = state["current_routine_id"]
        p._routine_states.replace(_packed_items(state["routine_states"], "routine_states"))
        p._shared_data.replace(_packed_items(state["shared_data"], "shared_data"))
        dict.update(p.open_tasks, freeze(state["open_tasks"], HINT_OPEN_TASKS))
        _replace_list(p.deferred_events, freeze(state["deferred_events"], HINT_DEFERRED))
        _replace_list(p.pending_tasks, freeze(state["pending_tasks"], HINT_PENDING))
        p.created = state["created"]
        p.updated = state["updated"]
        p.last_ts = state["last_ts"]
        counts = state["kind_counts"]
        if not isinstance(counts, dict) or sum(counts.values()) != seq:
            msg = f"snapshot kind_counts {counts!r} do not add up to its version {seq}"
            raise ReplayError(msg, seq)
        p.kind_counts = dict(counts)
    except (KeyError, TypeError, AttributeError) as exc:
        msg = f"malformed JobState snapshot ({type(exc).__name__}: {exc})"
        raise ReplayError(msg, seq) from None
    p.version = seq
    p.history_from = p.history_upto = seq
    p.history_routine = p.current_routine_id
    return p
