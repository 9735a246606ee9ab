"""The kinds of job events: the one list of JobState event kinds, their payloads, and the schema version.

(Not to be confused with :mod:`routilux.event`, a routine's output port, nor with
:mod:`eventlog.encoding`, which turns these events into bytes.)

Every mutation of a :class:`~routilux.job_state.JobState` is exactly one event
``(kind, data)`` in the job's log; :func:`routilux.projection.apply` folds them. Timestamps
are never part of a payload: they come from the record's ``ts`` (an execution record
appended in place, or imported, may carry its own original ``timestamp``).

Each kind is declared once, in :data:`KINDS`, with

* its payload: every field, its type, and whether it is required
  (:func:`check_payload` checks it on the write path *before* an event is encoded, and
  :func:`routilux.projection.apply_event` on replay, so an impossible record, e.g. a
  shared-data key ``5`` with a valid checksum and chain, is a ``ReplayError`` naming its
  seq and field, never a state);
* the top-level state fields it can change (``touches``) and, for a keyed kind, which
  payload field names the key it changes (``key``). Tools that skip events by kind
  (``bisect``, ``blame``, the UI's index) derive their tables from this with
  :func:`kinds_touching`; nothing else lists which kind changes what.

Evolution rules (after msgspec's schema-evolution page):

1. A new kind, or a new optional payload field with a default, bumps
   :data:`SCHEMA_VERSION`; old logs still replay.
2. A field is never removed or renamed and its meaning never changes; add a new kind instead.
3. ``job_created`` records the schema version the job was written with. Replaying a log or
   a snapshot written with a newer version, or meeting a kind not listed here, is a
   :class:`~routilux.errors.ReplayError`, never a silent skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from .errors import PayloadShapeError

__all__ = [
    "CANCELLED",
    "CURRENT_ROUTINE_SET",
    "DEFERRED_EVENTS_SET",
    "DEFERRED_EVENT_ADDED",
    "DESERIALIZED",
    "EDIT_KINDS",
    "EVERY_FIELD",
    "EXECUTION_HISTORY_EDITED",
    "EXECUTION_RECORDED",
    "FLOW_ID_SET",
    "HISTORY_KINDS",
    "HISTORY_ONLY_KINDS",
    "JOB_CREATED",
    "JOB_ID_SET",
    "JOB_STATUSES",
    "KINDS",
    "OUTPUT_SENT",
    "PAUSED",
    "PAUSE_POINT_ADDED",
    "PENDING_TASKS_SET",
    "PERSONAL_ERASED",
    "RESUMED",
    "ROUTINE_STATE_EDITED",
    "ROUTINE_STATE_SET",
    "SCHEMA_VERSION",
    "SHARED_DATA_EDITED",
    "SHARED_DATA_SET",
    "SHARED_LOG_APPENDED",
    "SHARED_LOG_EDITED",
    "STATE_FIELDS",
    "STATUS_SET",
    "TASK_FAILED",
    "TASK_FINISHED",
    "TASK_QUEUED",
    "TASK_STARTED",
    "TERMINAL_STATUSES",
    "EventKind",
    "Field",
    "PayloadShapeError",
    "check_payload",
    "kinds_touching",
    "payload_problem",
]

#: Version of the event payloads and of the snapshot state layout.
#:
#: History: 1 -- the first layout. 2 -- snapshots also store ``kind_counts`` (events
#: per kind up to the snapshot's seq); the event payloads are unchanged, so logs written
#: at version 1 replay as before. Snapshots are looked up by this exact version, so a
#: version-1 snapshot (without counts) is simply not used: the next policy snapshot
#: replaces it, and until then a rebuild replays from an older one or from the start.
#: 3 -- snapshots keep each routine state and shared-data value as its encoded bytes
#: (exactly the bytes of the event that set it), so a snapshot is assembled without
#: re-encoding the state and a rebuilt state decodes a value only when it is read. The
#: event payloads are unchanged; older snapshots are not used (as above).
#: 4 -- in-place edits are events: the kinds ``shared_data_edited``,
#: ``routine_state_edited``, ``shared_log_edited``, ``history_edited`` (of execution_history),
#: ``job_id_set`` and ``flow_id_set``; ``status_set`` takes any non-empty status string
#: (routilux 0.10 allows custom ones); optional fields ``job_created.imported_from``
#: (a job imported from a routilux 0.10 save) and ``execution_recorded.timestamp`` (a
#: record that keeps its own time). Logs of versions 1-3 replay unchanged; the snapshot
#: layout is the same, but older snapshots are not used (as above).
SCHEMA_VERSION = 4

#: The six job statuses of the original API, in lifecycle order (a job may also be given
#: a custom status string, as in 0.10).
JOB_STATUSES = ("pending", "running", "paused", "completed", "failed", "cancelled")
#: Statuses after which the durable log is synced (the run is over, or parked).
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})

#: The top-level fields of a job's state, as ``serialize()`` and the replay tools name them.
STATE_FIELDS = ("job_id", "flow_id", "status", "current_routine_id", "routine_states", "execution_history",
                "created_at", "updated_at", "pause_points", "pending_tasks", "deferred_events", "shared_data",
                "shared_log", "output_log", "open_tasks", "version")
#: ``touches`` of a kind that can change any field (``job_created``, ``deserialized``).
EVERY_FIELD = "*"
# Fields every event changes (its seq and time): a question about them reads all events.
_PER_EVENT_FIELDS = ("updated_at", "version")


class Field(NamedTuple):
    """One payload field of an event kind.

    Attributes:
        name: the key in the event's data.
        type: ``"str"``, ``"str?"`` (str or None), ``"int"``, ``"dict"``, ``"list"`` or
            ``"any"``.
        required: False for an optional field (added by a later schema version).
    """

    name: str
    type: str
    required: bool = True


class EventKind(NamedTuple):
    """Description of one event kind.

    Attributes:
        name: the ``kind`` string stored in the log.
        since: the schema version that introduced it.
        fields: payload keys, in the order the writer puts them.
        doc: what it records (and which API writes it).
        shape: every payload field with its type (:class:`Field`).
        touches: the top-level state fields (:data:`STATE_FIELDS`) it can change, or
            ``("*",)`` (:data:`EVERY_FIELD`) for any.
        key: for a kind that changes one key of ``routine_states``/``shared_data``: the
            payload field naming that key (``None`` in an edit's payload: the whole map).
        reads: ``(field, other)`` pairs: its effect on ``field`` depends on the state's
            ``other`` field (a ``paused`` event's pause point records the current routine).
    """

    name: str
    since: int
    fields: tuple[str, ...]
    doc: str
    shape: tuple[Field, ...] = ()
    touches: tuple[str, ...] = ()
    key: str | None = None
    reads: tuple[tuple[str, str], ...] = ()


JOB_CREATED = "job_created"
STATUS_SET = "status_set"
CURRENT_ROUTINE_SET = "current_routine_set"
ROUTINE_STATE_SET = "routine_state_set"
EXECUTION_RECORDED = "execution_recorded"
DEFERRED_EVENT_ADDED = "deferred_event_added"
DEFERRED_EVENTS_SET = "deferred_events_set"
SHARED_DATA_SET = "shared_data_set"
SHARED_LOG_APPENDED = "shared_log_appended"
OUTPUT_SENT = "output_sent"
PAUSE_POINT_ADDED = "pause_point_added"
PAUSED = "paused"
RESUMED = "resumed"
CANCELLED = "cancelled"
PENDING_TASKS_SET = "pending_tasks_set"
TASK_QUEUED = "task_queued"
TASK_STARTED = "task_started"
TASK_FINISHED = "task_finished"
TASK_FAILED = "task_failed"
DESERIALIZED = "deserialized"
JOB_ID_SET = "job_id_set"
FLOW_ID_SET = "flow_id_set"
SHARED_DATA_EDITED = "shared_data_edited"
ROUTINE_STATE_EDITED = "routine_state_edited"
SHARED_LOG_EDITED = "shared_log_edited"
#: The log's own erasure event (eventlog.erasure.ERASURE_KIND): personal values were
#: erased from the vault. It changes no state (the state holds only their commitments).
PERSONAL_ERASED = "eventlog.erasure"
EXECUTION_HISTORY_EDITED = "history_edited"  # (kind names stay <= 20 characters: the CLI's KIND column)


def _kind(name: str, since: int, shape: tuple[Field, ...], touches: tuple[str, ...], doc: str, *,
          key: str | None = None, reads: tuple[tuple[str, str], ...] = ()) -> EventKind:
    return EventKind(name, since, tuple(f.name for f in shape), doc, shape, touches, key, reads)


_S, _OS, _D, _L, _A, _I = "str", "str?", "dict", "list", "any", "int"
# The payload of an in-place edit (after its key field, for the keyed kinds): the path
# from the value at the key (or from the list) to the container edited, the operation
# and its arguments. See routilux.edit_ops for the operations.
_EDIT = (Field("path", _L), Field("op", _S), Field("args", _L))

_KIND_LIST = [
    _kind(JOB_CREATED, 1, (Field("job_id", _S), Field("flow_id", _S), Field("schema", _I, False),
                           Field("imported_from", _D, False)), (EVERY_FIELD,),
          "Always seq 1: the job's identity and the schema version it was written with; "
          "imported_from (since 4): {file, sha256, format} of a routilux 0.10 save it was imported from."),
    _kind(STATUS_SET, 1, (Field("status", _S),), ("status",),
          "`job_state.status = ...`: one of JOB_STATUSES (since 4: any non-empty str)."),
    _kind(CURRENT_ROUTINE_SET, 1, (Field("routine_id", _OS),), ("current_routine_id",),
          "`job_state.current_routine_id = ...` (str or None)."),
    _kind(ROUTINE_STATE_SET, 1, (Field("routine_id", _S), Field("state", _D)), ("routine_states",),
          "update_routine_state (or `routine_states[r] = {...}`): replaces routine_states[routine_id].",
          key="routine_id"),
    _kind(EXECUTION_RECORDED, 1, (Field("routine_id", _S), Field("event_name", _S), Field("timestamp", _S, False),
                                  Field("data", _D)), ("execution_history",),
          "record_execution (or `execution_history.append(record)`): one ExecutionRecord, timestamped with "
          "the event's ts, or (since 4) with its own ISO `timestamp`."),
    _kind(DEFERRED_EVENT_ADDED, 1, (Field("routine_id", _S), Field("event_name", _S), Field("data", _D)),
          ("deferred_events",), "add_deferred_event: appends {routine_id, event_name, data, timestamp(iso)}."),
    _kind(DEFERRED_EVENTS_SET, 1, (Field("events", _L),), ("deferred_events",),
          "`job_state.deferred_events = [...]` (the engine clears them on resume)."),
    _kind(SHARED_DATA_SET, 1, (Field("key", _S), Field("value", _A)), ("shared_data",),
          "update_shared_data(key, value) (or `shared_data[key] = value`).", key="key"),
    _kind(SHARED_LOG_APPENDED, 1, (Field("entry", _D),), ("shared_log",),
          "append_to_shared_log (or `shared_log.append(entry)`): the entry, plus an iso 'timestamp' from ts "
          "if it had none."),
    _kind(OUTPUT_SENT, 1, (Field("routine_id", _S), Field("output_type", _S), Field("data", _D)), ("output_log",),
          "send_output: appends {routine_id, output_type, data, timestamp(iso)} to output_log."),
    _kind(PAUSE_POINT_ADDED, 1, (Field("point", _D),), ("pause_points",),
          "_add_pause_point: the engine's own pause-point dict."),
    _kind(PAUSED, 1, (Field("reason", _S), Field("checkpoint", _D)), ("status", "pause_points"),
          "_set_paused: status paused + pause point {timestamp, reason, current_routine_id, checkpoint}.",
          reads=(("pause_points", "current_routine_id"),)),
    _kind(RESUMED, 1, (), ("status",), "_set_running: status paused -> running (other statuses unchanged)."),
    _kind(CANCELLED, 1, (Field("reason", _S),), ("status", "routine_states"),
          "_set_cancelled: status cancelled; a non-empty reason sets routine_states['_cancellation']."),
    _kind(PENDING_TASKS_SET, 1, (Field("tasks", _L),), ("pending_tasks",),
          "`job_state.pending_tasks = [...]` (the engine on pause)."),
    _kind(TASK_QUEUED, 1, (Field("task_id", _S), Field("task", _D)), ("open_tasks",),
          "_task_queued: open_tasks[task_id] = {task, state: queued}."),
    _kind(TASK_STARTED, 1, (Field("task_id", _S),), ("open_tasks",),
          "_task_started: open_tasks[task_id].state = started."),
    _kind(TASK_FINISHED, 1, (Field("task_id", _S),), ("open_tasks",), "_task_finished: removes the task from open_tasks."),
    _kind(TASK_FAILED, 1, (Field("task_id", _S), Field("error", _D)), ("open_tasks",),
          "_task_failed: removes the task from open_tasks."),
    _kind(DESERIALIZED, 1, (Field("state", _D),), (EVERY_FIELD,),
          "deserialize(data): the given fields replace the current ones (lists included)."),
    _kind(JOB_ID_SET, 4, (Field("job_id", _S),), ("job_id",), "`job_state.job_id = ...`."),
    _kind(FLOW_ID_SET, 4, (Field("flow_id", _S),), ("flow_id",), "`job_state.flow_id = ...`."),
    _kind(SHARED_DATA_EDITED, 4, (Field("key", _OS), *_EDIT), ("shared_data",),
          "An in-place edit inside shared_data[key] (key None: of shared_data itself, e.g. `del "
          "shared_data[k]`): `get_shared_data('items').append(x)`, `shared_data['a']['b'] = 1`, ...",
          key="key"),
    _kind(ROUTINE_STATE_EDITED, 4, (Field("routine_id", _OS), *_EDIT), ("routine_states",),
          "An in-place edit inside routine_states[routine_id] (None: of routine_states itself): "
          "`get_routine_state(r)['count'] += 1`, ...", key="routine_id"),
    _kind(SHARED_LOG_EDITED, 4, _EDIT, ("shared_log",),
          "An in-place edit of shared_log (path []) or inside one of its entries (path [i, ...]) "
          "other than an append (which is shared_log_appended)."),
    _kind(EXECUTION_HISTORY_EDITED, 4, _EDIT, ("execution_history",),
          "An in-place edit of execution_history other than an append (which is execution_recorded): "
          "insert, remove, sort, ... (records themselves are immutable)."),
    _kind(PERSONAL_ERASED, 4, (Field("commitments", _L), Field("refs", _L), Field("reason", _S), Field("key", _S),
                               Field("signature", _A)), (),
          "erase_personal (eventlog.erasure): personal values erased from the vault; no state changes."),
]

#: Every known kind by name.
KINDS: dict[str, EventKind] = {k.name: k for k in _KIND_LIST}

#: Kinds that append to the history lists (execution_history, shared_log, output_log,
#: pause_points) or replace them; snapshots do not store those lists.
HISTORY_KINDS = frozenset({EXECUTION_RECORDED, SHARED_LOG_APPENDED, OUTPUT_SENT, PAUSE_POINT_ADDED, PAUSED,
                           DESERIALIZED, SHARED_LOG_EDITED, EXECUTION_HISTORY_EDITED})
#: Kinds that change nothing but the history lists: a rebuild counts them and reads
#: their payloads only when the history is asked for.
HISTORY_ONLY_KINDS = frozenset({EXECUTION_RECORDED, SHARED_LOG_APPENDED, OUTPUT_SENT, PAUSE_POINT_ADDED,
                                SHARED_LOG_EDITED, EXECUTION_HISTORY_EDITED})
#: The in-place edit kinds (payload ``path``, ``op``, ``args``; see :mod:`routilux.edit_ops`).
EDIT_KINDS = frozenset({SHARED_DATA_EDITED, ROUTINE_STATE_EDITED, SHARED_LOG_EDITED, EXECUTION_HISTORY_EDITED})


def kinds_touching(field: str) -> frozenset[str] | None:
    """The kinds whose events can change ``field`` (a :data:`STATE_FIELDS` name), or None for every kind.

    Includes the kinds that change a field the effect of such a kind depends on (a
    pause point records the current routine, so ``current_routine_set`` can change
    ``pause_points``). An unknown field gives None (every event may matter).
    """
    if field in _PER_EVENT_FIELDS or field not in STATE_FIELDS:
        return None
    out = {k.name for k in _KIND_LIST if field in k.touches or EVERY_FIELD in k.touches}
    for k in _KIND_LIST:
        for touched, read in k.reads:
            if touched == field:
                out |= {other.name for other in _KIND_LIST if read in other.touches or EVERY_FIELD in other.touches}
    return frozenset(out)


# -- payload shapes ---------------------------------------------------------------------
_TYPE_NAMES = {_S: "a str", _OS: "a str or None", _I: "an int", _D: "a dict", _L: "a list"}
# One expression per field type; ``v`` is the field's value (the sentinel when missing).
_TYPE_TESTS = {_S: "type({v}) is str", _OS: "((v := {v}) is None or type(v) is str)", _I: "type({v}) is int",
               _D: "type({v}) is dict", _L: "type({v}) is list"}


def _type_ok(type_name: str, value: Any) -> bool:
    test: Callable[[Any], bool] = _SLOW_TESTS[type_name]
    return test(value)


_SLOW_TESTS: dict[str, Callable[[Any], bool]] = {
    _S: lambda v: type(v) is str,
    _OS: lambda v: v is None or type(v) is str,
    _I: lambda v: type(v) is int,
    _D: lambda v: type(v) is dict,
    _L: lambda v: type(v) is list,
    _A: lambda v: True,
}


def payload_problem(kind: str, data: Any) -> tuple[str | None, str] | None:
    """``(field, problem)`` if ``data`` is not a valid payload of ``kind`` (a known kind), else None."""
    spec = KINDS[kind]
    if type(data) is not dict:
        return None, f"must be a dict, got {type(data).__name__}"
    for f in spec.shape:
        if f.name not in data:
            if f.required:
                return f.name, "is missing"
            continue
        value = data[f.name]
        if not _type_ok(f.type, value):
            return f.name, f"must be {_TYPE_NAMES[f.type]}, got {type(value).__name__} ({_short(value)})"
    extra = [k for k in data if k not in spec.fields]
    if extra:
        return str(extra[0]), f"is not a field of this kind (fields: {', '.join(spec.fields) or 'none'})"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _compile_check(spec: EventKind) -> Callable[[Any], bool]:
    """A fast boolean check of a payload's shape, generated from the kind's declaration.

    It runs for every event written and every event replayed that is decoded, so it is
    one generated expression (no loop, no call per field; a missing field raises the
    KeyError that makes it False); :func:`payload_problem` explains a failure.
    """
    required = [f for f in spec.shape if f.required]
    optional = [f for f in spec.shape if not f.required]
    terms = ["type(d) is dict"]
    for f in required:
        terms.append(f"{f.name!r} in d" if f.type == _A else _TYPE_TESTS[f.type].format(v=f"d[{f.name!r}]"))
    # Every required field is there: exactly that many keys means no other one (the
    # common case, tested first); more must all be optional fields of the right types.
    size = f"len(d) == {len(required)}"
    if optional:
        extra = [f"len(d) == {len(required)}" + "".join(f" + ({f.name!r} in d)" for f in optional)]
        extra += [f"({f.name!r} not in d or {_TYPE_TESTS[f.type].format(v=f'd[{f.name!r}]')})"
                  for f in optional if f.type != _A]
        size = f"({size} or ({' and '.join(extra)}))"
    terms.append(size)
    source = f"def check(d):\n try:\n  return {' and '.join(terms)}\n except KeyError:\n  return False\n"
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # noqa: S102 - built from the declaration above
    check: Callable[[Any], bool] = namespace["check"]
    return check
#: kind -> a fast boolean check of a payload's shape.
SHAPE_CHECKS: dict[str, Callable[[Any], bool]] = {k.name: _compile_check(k) for k in _KIND_LIST}


def check_payload(kind: str, data: Any) -> None:
    """Check that ``data`` has the declared shape of ``kind`` (a known kind).

    Raises:
        PayloadShapeError: naming the field at fault.
    """
    if not SHAPE_CHECKS[kind](data):
        found = payload_problem(kind, data)
        field, problem = found if found is not None else (None, "does not have the declared shape")
        raise PayloadShapeError(kind, field, problem)


def _declared(names: Iterable[str]) -> None:
    """Every name used in ``touches``/``reads`` is a state field (checked at import)."""
    unknown = sorted(set(names) - set(STATE_FIELDS) - {EVERY_FIELD})
    if unknown:
        msg = f"unknown state field(s) in routilux.job_events: {', '.join(unknown)}"
        raise AssertionError(msg)


_declared(name for k in _KIND_LIST for name in (*k.touches, *(f for pair in k.reads for f in pair)))
#: Longest kind name: tables of events (``routilux-replay events``) size their KIND column by it.
MAX_KIND_LENGTH = 20
assert all(len(k.name) <= MAX_KIND_LENGTH for k in _KIND_LIST), "kind names are at most 20 characters"
