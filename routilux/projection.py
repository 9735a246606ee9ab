"""The JobState projection: a plain state container and the one pure fold step.

``apply(projection, record)`` folds one event into a :class:`JobProjection`. It is the
only code that changes a projection, used both by a live JobState (after the event is in
the log) and by every replay, so a live state and a replay of its log are equal, types
included. It never reads the clock, does I/O or draws random numbers: every timestamp
comes from the record's ``ts``.

Snapshots (:func:`snapshot_state` / :func:`from_snapshot`) store the *current* state only;
the append-only history lists (execution history, shared log, output log, pause points)
are rebuilt from the log on demand (:func:`complete_history`), which keeps ``at()`` and
``load`` fast on long logs (DESIGN.md, "Performance facts").
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

from . import events as ev
from .errors import ReplayError, SchemaVersionError, UnknownEventKindError
from .frozen import FrozenDict, FrozenList, SyncedFrozenList, freeze, thaw
from .serializable import Serializable

__all__ = [
    "ExecutionRecord",
    "JobProjection",
    "apply",
    "complete_history",
    "fold",
    "from_snapshot",
    "iso_to_datetime",
    "snapshot_state",
    "ts_to_datetime",
    "ts_to_iso",
]

_fromtimestamp = _dt.datetime.fromtimestamp


def ts_to_datetime(ts: int) -> _dt.datetime:
    """Return the naive local datetime (microsecond precision) users see for ``ts`` (ns).

    Integer arithmetic, not ``ts / 1e9``: a float of today's epoch nanoseconds cannot
    hold every microsecond exactly, and ``at(timestamp=...)`` compares at microseconds.
    """
    us = ts // 1000
    return _fromtimestamp(us // 1_000_000).replace(microsecond=us % 1_000_000)


def ts_to_iso(ts: int) -> str:
    """Return :func:`ts_to_datetime` as an ISO string (as the original's ``isoformat()``)."""
    return ts_to_datetime(ts).isoformat()


def iso_to_datetime(value: Any) -> _dt.datetime | None:
    """Parse an ISO timestamp (``None`` stays ``None``; a datetime is returned as is)."""
    if value is None or isinstance(value, _dt.datetime):
        return value
    return _dt.datetime.fromisoformat(value)


def _stamp_to_datetime(value: int | str | None) -> _dt.datetime | None:
    if value is None:
        return None
    if type(value) is int:
        return ts_to_datetime(value)
    return iso_to_datetime(value)


# Hints shown by the read-only containers: what to call instead of mutating them.
HINT_ROUTINE_STATES = "job_state.update_routine_state(routine_id, state)"
HINT_SHARED_DATA = "job_state.update_shared_data(key, value)"
HINT_SHARED_LOG = "job_state.append_to_shared_log(entry)"
HINT_OUTPUT_LOG = "job_state.send_output(routine_id, output_type, data)"
HINT_HISTORY = "job_state.record_execution(routine_id, event_name, data)"
HINT_DEFERRED = "job_state.add_deferred_event(routine_id, event_name, data), or assign job_state.deferred_events"
HINT_PENDING = "an assignment: job_state.pending_tasks = [...]"
HINT_PAUSE = "flow.pause(job_state, ...) (or job_state._set_paused(reason, checkpoint))"
HINT_OPEN_TASKS = "the engine's task hooks (job_state._task_queued/_task_started/_task_finished/_task_failed)"
HINT_RECORD = "job_state.record_execution(...) (execution records are immutable)"


class ExecutionRecord(Serializable):
    """Execution record for a single routine execution (immutable).

    Args:
        routine_id: routine identifier.
        event_name: event name.
        data: transmitted data (default ``{}``); stored as a read-only deep copy.
        timestamp: when it happened (default: now, a naive local datetime).

    Records inside a JobState take their timestamp from the event's ``ts``.
    """

    # One slot holding [routine_id, event_name, data, ts, timestamp, in_job]: a record is
    # built with a single slot store on the hot path; data/timestamp are filled lazily.
    __slots__ = ("_v",)

    def __init__(self, routine_id: str = "", event_name: str = "", data: dict[str, Any] | None = None,
                 timestamp: _dt.datetime | None = None) -> None:
        _set_v(self, [routine_id, event_name, freeze({} if data is None else data, HINT_RECORD), None,
                      timestamp if timestamp is not None else _dt.datetime.now(), False])

    @property
    def routine_id(self) -> str:
        """The routine that executed."""
        return self._v[0]  # type: ignore[no-any-return]

    @property
    def event_name(self) -> str:
        """The event emitted, or the action name (``start``, ``error``, ...)."""
        return self._v[1]  # type: ignore[no-any-return]

    @property
    def data(self) -> FrozenDict:
        """The data transmitted (read-only)."""
        v = self._v
        data = v[2]
        if type(data) is not FrozenDict:
            # Freezing is deferred from apply to first access: the hot path only stores.
            data = freeze(data, HINT_RECORD)
            v[2] = data
        return data  # type: ignore[no-any-return]

    @property
    def timestamp(self) -> _dt.datetime:
        """When it happened: a naive local datetime (from the event's ts in a JobState)."""
        v = self._v
        stamp = v[4]
        if stamp is None:
            stamp = v[4] = ts_to_datetime(v[3])
        return stamp  # type: ignore[no-any-return]

    @property
    def ts(self) -> int | None:
        """The event timestamp in ns since the epoch, or ``None`` for a detached record."""
        return self._v[3]  # type: ignore[no-any-return]

    def __setattr__(self, name: str, value: Any) -> None:
        msg = f"ExecutionRecord is immutable (cannot set {name!r}); record a new one with {HINT_HISTORY}"
        raise AttributeError(msg)

    __delattr__ = __setattr__  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ExecutionRecord[{self._v[0]}.{self._v[1]}@{self.timestamp}]"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExecutionRecord):
            return NotImplemented
        return (self._v[0] == other._v[0] and self._v[1] == other._v[1]
                and self.timestamp == other.timestamp and self.data == other.data)

    def __hash__(self) -> int:
        return hash((self._v[0], self._v[1], self.timestamp))

    def __reduce__(self) -> tuple[Any, ...]:
        return (ExecutionRecord, (self._v[0], self._v[1], thaw(self.data), self.timestamp))

    @property
    def fields_to_serialize(self) -> list[str]:
        """The serialized fields, as in the original."""
        return ["routine_id", "event_name", "data", "timestamp"]

    def serialize(self) -> dict[str, Any]:
        """Return ``{"_type": "ExecutionRecord", routine_id, event_name, data, timestamp(iso)}``."""
        return {
            "_type": "ExecutionRecord",
            "routine_id": self._v[0],
            "event_name": self._v[1],
            "data": thaw(self.data),
            "timestamp": self.timestamp.isoformat(),
        }

    def deserialize(self, data: dict[str, Any]) -> None:
        """Set this record's fields from a :meth:`serialize` dict (original API).

        Only for a record you built yourself: records inside a JobState are part of
        its audit trail and refuse.

        Raises:
            TypeError: the record belongs to a JobState.
            ValueError: ``data`` is not an ExecutionRecord dict.
        """
        v = self._v
        if v[5]:
            msg = f"this ExecutionRecord is part of a JobState and immutable; use {HINT_HISTORY}"
            raise TypeError(msg)
        other = ExecutionRecord.from_dict(data)
        v[:] = other._v

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExecutionRecord:
        """Build a record from a dict made by :meth:`serialize` (ISO timestamp parsed).

        Raises:
            ValueError: ``data`` is not such a dict.
        """
        if not isinstance(data, dict):
            msg = f"an ExecutionRecord dict is needed, got {type(data).__name__}"
            raise ValueError(msg)
        try:
            stamp = iso_to_datetime(data.get("timestamp"))
        except (TypeError, ValueError) as exc:
            msg = f"ExecutionRecord timestamp {data.get('timestamp')!r} is not an ISO datetime"
            raise ValueError(msg) from exc
        return cls(data.get("routine_id", ""), data.get("event_name", ""), data.get("data"), stamp)


_new_record = object.__new__
_set_v = ExecutionRecord._v.__set__  # type: ignore[attr-defined]


def _event_record(routine_id: str, event_name: str, data: Any, ts: int | None,
                  stamp: _dt.datetime | None = None) -> ExecutionRecord:
    # The hot path of replay and record_execution: no freezing, no datetime yet.
    rec = _new_record(ExecutionRecord)
    _set_v(rec, [routine_id, event_name, data, ts, stamp, True])
    return rec


class JobProjection:
    """The state of one job after folding events ``1..version``.

    Plain attributes; containers are the read-only types of :mod:`routilux.frozen`
    (only :func:`apply` changes them, through the base-class methods).

    ``created``/``updated`` are the event ts (int ns) that set them, or an ISO string
    restored by ``deserialize``. The history lists hold the items of events
    ``history_from+1 .. version``; ``history_from == 0`` means they are complete
    (see :func:`complete_history`).
    """

    __slots__ = (
        "job_id", "flow_id", "schema", "status", "current_routine_id", "routine_states", "shared_data",
        "deferred_events", "pending_tasks", "open_tasks", "created", "updated", "version", "last_ts",
        "execution_history", "shared_log", "output_log", "pause_points", "history_from", "kind_counts",
    )

    def __init__(self) -> None:
        self.job_id = ""
        self.flow_id = ""
        self.schema = ev.SCHEMA_VERSION
        self.status = "pending"
        self.current_routine_id: str | None = None
        self.routine_states = FrozenDict(hint=HINT_ROUTINE_STATES)
        self.shared_data = FrozenDict(hint=HINT_SHARED_DATA)
        self.deferred_events = FrozenList(hint=HINT_DEFERRED)
        self.pending_tasks = FrozenList(hint=HINT_PENDING)
        self.open_tasks = FrozenDict(hint=HINT_OPEN_TASKS)
        self.created: int | str | None = None
        self.updated: int | str | None = None
        self.version = 0
        self.last_ts = 0
        # Synced: a live JobState may defer building hot-path records (see job_state).
        self.execution_history = SyncedFrozenList(hint=HINT_HISTORY)
        self.shared_log = FrozenList(hint=HINT_SHARED_LOG)
        self.output_log = FrozenList(hint=HINT_OUTPUT_LOG)
        self.pause_points = FrozenList(hint=HINT_PAUSE)
        self.history_from = 0
        self.kind_counts: dict[str, int] = {}

    @property
    def created_at(self) -> _dt.datetime | None:
        """``created`` as a naive local datetime."""
        return _stamp_to_datetime(self.created)

    @property
    def updated_at(self) -> _dt.datetime | None:
        """``updated`` as a naive local datetime."""
        return _stamp_to_datetime(self.updated)


# -- the fold -----------------------------------------------------------------------
_list_append = list.append
_dict_set = dict.__setitem__
_dict_pop = dict.pop


def _replace_list(target: FrozenList, items: Iterable[Any]) -> None:
    list.__setitem__(target, slice(None), list(items))


def _replace_dict(target: FrozenDict, items: dict[str, Any]) -> None:
    dict.clear(target)
    dict.update(target, items)


def _job_created(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    schema = d.get("schema", 1)
    if type(schema) is not int or schema > ev.SCHEMA_VERSION:
        msg = (f"the job was written with event schema version {schema!r}, newer than the "
               f"{ev.SCHEMA_VERSION} this routilux reads; upgrade routilux")
        raise SchemaVersionError(msg)
    p.job_id = d["job_id"]
    p.flow_id = d["flow_id"]
    p.schema = schema
    p.created = ts


def _status_set(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    status = d["status"]
    if status not in ev.JOB_STATUSES:
        msg = f"status {status!r} is not one of {', '.join(ev.JOB_STATUSES)}"
        raise ReplayError(msg)
    p.status = status


def _current_routine_set(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    p.current_routine_id = d["routine_id"]


def _routine_state_set(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    _dict_set(p.routine_states, d["routine_id"], freeze(d["state"], HINT_ROUTINE_STATES))


def _execution_recorded(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    _list_append(p.execution_history, _event_record(d["routine_id"], d["event_name"], d["data"], ts))


def _deferred_event_added(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    entry = {"routine_id": d["routine_id"], "event_name": d["event_name"], "data": d["data"],
             "timestamp": ts_to_iso(ts)}
    _list_append(p.deferred_events, freeze(entry, HINT_DEFERRED))


def _deferred_events_set(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    _replace_list(p.deferred_events, freeze(d["events"], HINT_DEFERRED))


def _shared_data_set(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    _dict_set(p.shared_data, d["key"], freeze(d["value"], HINT_SHARED_DATA))


def _shared_log_appended(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    entry = d["entry"]
    if "timestamp" not in entry:
        entry = {**entry, "timestamp": ts_to_iso(ts)}  # a copy: never change the record's data
    _list_append(p.shared_log, freeze(entry, HINT_SHARED_LOG))


def _output_sent(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    entry = {"routine_id": d["routine_id"], "output_type": d["output_type"], "data": d["data"],
             "timestamp": ts_to_iso(ts)}
    _list_append(p.output_log, freeze(entry, HINT_OUTPUT_LOG))


def _pause_point_added(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    _list_append(p.pause_points, freeze(d["point"], HINT_PAUSE))


def _paused(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    p.status = "paused"
    point = {"timestamp": ts_to_iso(ts), "reason": d["reason"], "current_routine_id": p.current_routine_id,
             "checkpoint": d["checkpoint"]}
    _list_append(p.pause_points, freeze(point, HINT_PAUSE))


def _resumed(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    if p.status == "paused":
        p.status = "running"


def _cancelled(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    p.status = "cancelled"
    reason = d["reason"]
    if reason:
        _dict_set(p.routine_states, "_cancellation", freeze({"reason": reason}, HINT_ROUTINE_STATES))


def _pending_tasks_set(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    _replace_list(p.pending_tasks, freeze(d["tasks"], HINT_PENDING))


def _task_queued(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    _dict_set(p.open_tasks, d["task_id"], freeze({"task": d["task"], "state": "queued"}, HINT_OPEN_TASKS))


def _task_started(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    task_id = d["task_id"]
    entry = p.open_tasks.get(task_id)
    if entry is not None:
        _dict_set(p.open_tasks, task_id, freeze({"task": entry["task"], "state": "started"}, HINT_OPEN_TASKS))


def _task_closed(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    _dict_pop(p.open_tasks, d["task_id"], None)


def _deserialized(p: JobProjection, d: dict[str, Any], ts: int) -> None:
    state = d["state"]
    for name in ("flow_id", "job_id", "status", "current_routine_id"):
        if name in state:
            setattr(p, name, state[name])
    if p.status not in ev.JOB_STATUSES:
        msg = f"status {p.status!r} is not one of {', '.join(ev.JOB_STATUSES)}"
        raise ReplayError(msg)
    for name, hint in (("routine_states", HINT_ROUTINE_STATES), ("shared_data", HINT_SHARED_DATA)):
        if name in state:
            _replace_dict(getattr(p, name), freeze(state[name], hint))
    for name, hint in (("deferred_events", HINT_DEFERRED), ("pending_tasks", HINT_PENDING),
                       ("shared_log", HINT_SHARED_LOG), ("output_log", HINT_OUTPUT_LOG),
                       ("pause_points", HINT_PAUSE)):
        if name in state:
            _replace_list(getattr(p, name), freeze(state[name], hint))
    if "execution_history" in state:
        _replace_list(p.execution_history, [
            _event_record(r["routine_id"], r["event_name"], r["data"],
                          None if r.get("timestamp") is not None else ts,
                          iso_to_datetime(r.get("timestamp")))
            for r in state["execution_history"]
        ])
    if all(n in state for n in ("execution_history", "shared_log", "output_log", "pause_points")):
        p.history_from = 0  # every history list was replaced: nothing before matters
    if state.get("created_at") is not None:
        p.created = state["created_at"]


_HANDLERS = {
    ev.JOB_CREATED: _job_created,
    ev.STATUS_SET: _status_set,
    ev.CURRENT_ROUTINE_SET: _current_routine_set,
    ev.ROUTINE_STATE_SET: _routine_state_set,
    ev.EXECUTION_RECORDED: _execution_recorded,
    ev.DEFERRED_EVENT_ADDED: _deferred_event_added,
    ev.DEFERRED_EVENTS_SET: _deferred_events_set,
    ev.SHARED_DATA_SET: _shared_data_set,
    ev.SHARED_LOG_APPENDED: _shared_log_appended,
    ev.OUTPUT_SENT: _output_sent,
    ev.PAUSE_POINT_ADDED: _pause_point_added,
    ev.PAUSED: _paused,
    ev.RESUMED: _resumed,
    ev.CANCELLED: _cancelled,
    ev.PENDING_TASKS_SET: _pending_tasks_set,
    ev.TASK_QUEUED: _task_queued,
    ev.TASK_STARTED: _task_started,
    ev.TASK_FINISHED: _task_closed,
    ev.TASK_FAILED: _task_closed,
    ev.DESERIALIZED: _deserialized,
}
assert set(_HANDLERS) == set(ev.KINDS), "every kind in routilux.events needs a handler"


def apply(p: JobProjection, record: Any) -> None:
    """Fold one record ``(seq, ts, kind, data)`` into ``p`` (in place). Pure.

    The record's ``data`` becomes part of the projection (callers pass the decoded copy
    the log returned, which nobody else holds).

    Raises:
        ReplayError: the seq does not follow ``p.version``, the log does not start with
            ``job_created``, or the payload is malformed.
        UnknownEventKindError: a kind not in :data:`routilux.events.KINDS`.
        SchemaVersionError: the job was written with a newer schema version.
    """
    seq, ts, kind, data = record
    if seq != p.version + 1:
        msg = f"events must be applied in order: expected seq {p.version + 1}, got {seq}"
        raise ReplayError(msg, seq)
    handler = _HANDLERS.get(kind)
    if handler is None:
        msg = (f"unknown event kind {kind!r}: this routilux reads event schema version "
               f"{ev.SCHEMA_VERSION} (the log may come from a newer version)")
        raise UnknownEventKindError(msg, seq)
    if (seq == 1) != (kind == ev.JOB_CREATED):
        msg = "a job log starts with exactly one job_created event (at seq 1)"
        raise ReplayError(msg, seq)
    try:
        handler(p, data, ts)
    except ReplayError as exc:
        if exc.seq is None:
            raise type(exc)(str(exc), seq) from None
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        msg = f"malformed {kind!r} event payload ({type(exc).__name__}: {exc})"
        raise ReplayError(msg, seq) from None
    p.version = seq
    p.last_ts = ts
    counts = p.kind_counts
    counts[kind] = counts.get(kind, 0) + 1
    if kind == ev.DESERIALIZED:
        updated = data["state"].get("updated_at")
        p.updated = ts if updated is None else updated
    else:
        p.updated = ts


def fold(records: Iterable[Any], p: JobProjection | None = None) -> JobProjection:
    """Apply ``records`` in order to ``p`` (a new projection by default) and return it.

    Exactly ``for rec in records: apply(p, rec)``, with the most common kind
    (``execution_recorded``) folded inline: replay and load speed is dominated by it.
    Anything unusual about such a record (a seq gap, a malformed payload) goes through
    :func:`apply`, which raises the precise error.
    """
    if p is None:
        p = JobProjection()
    history = p.execution_history
    exec_kind = ev.EXECUTION_RECORDED
    version = p.version
    new, set_v, cls, append = _new_record, _set_v, ExecutionRecord, _list_append
    # A run of execution records only touches locals: p.version/last_ts/updated are
    # written once when the run ends (before any other event, at the end, or before an
    # error propagates), and the records are counted in a local added to kind_counts
    # once -- per-event slot and dict writes cost ~15% of a replay.
    last_ts: int | None = None
    n_exec = 0
    try:
        for rec in records:
            seq, ts, kind, data = rec
            if kind == exec_kind and seq == version + 1 and version:
                record = new(cls)
                try:
                    set_v(record, [data["routine_id"], data["event_name"], data["data"], ts, None, True])
                except (KeyError, TypeError):
                    if last_ts is not None:
                        _settle(p, version, last_ts)
                        last_ts = None
                    apply(p, rec)  # raises the ReplayError naming the seq
                    raise AssertionError("unreachable") from None  # pragma: no cover
                append(history, record)
                n_exec += 1
                version = seq
                last_ts = ts
            else:
                if last_ts is not None:
                    _settle(p, version, last_ts)
                    last_ts = None
                apply(p, rec)
                version = p.version
                history = p.execution_history
    finally:
        if last_ts is not None:
            _settle(p, version, last_ts)
        if n_exec:
            counts = p.kind_counts
            counts[exec_kind] = counts.get(exec_kind, 0) + n_exec
    return p


def _settle(p: JobProjection, version: int, ts: int) -> None:
    """Write the position reached by a run of inline-folded execution records into ``p``."""
    p.version = version
    p.last_ts = p.updated = ts


# -- snapshots ----------------------------------------------------------------------
def snapshot_state(p: JobProjection) -> dict[str, Any]:
    """Return the current state of ``p`` as a plain, msgpack-able dict (no history lists)."""
    return {
        "schema": p.schema,
        "job_id": p.job_id,
        "flow_id": p.flow_id,
        "status": p.status,
        "current_routine_id": p.current_routine_id,
        "routine_states": p.routine_states,
        "shared_data": p.shared_data,
        "deferred_events": p.deferred_events,
        "pending_tasks": p.pending_tasks,
        "open_tasks": p.open_tasks,
        "created": p.created,
        "updated": p.updated,
        "version": p.version,
        "last_ts": p.last_ts,
        "kind_counts": p.kind_counts,
    }


def from_snapshot(state: dict[str, Any], seq: int) -> JobProjection:
    """Rebuild a projection at ``seq`` from :func:`snapshot_state` output.

    The history lists start empty with ``history_from = seq``: later events append to
    them and :func:`complete_history` prepends the earlier part from the log.

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
        p = JobProjection()
        p.schema = schema
        p.job_id = state["job_id"]
        p.flow_id = state["flow_id"]
        p.status = state["status"]
        p.current_routine_id = state["current_routine_id"]
        _replace_dict(p.routine_states, freeze(state["routine_states"], HINT_ROUTINE_STATES))
        _replace_dict(p.shared_data, freeze(state["shared_data"], HINT_SHARED_DATA))
        _replace_dict(p.open_tasks, freeze(state["open_tasks"], HINT_OPEN_TASKS))
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
    p.history_from = seq
    return p


def complete_history(p: JobProjection, records: Iterable[Any]) -> None:
    """Prepend the history of events ``1..p.history_from`` (``records``) to ``p``'s lists."""
    if p.history_from == 0:
        return
    scratch = fold(records)
    if scratch.version != p.history_from:
        msg = f"history rebuild stopped at seq {scratch.version}, expected {p.history_from}"
        raise ReplayError(msg)
    for name in ("execution_history", "shared_log", "output_log", "pause_points"):
        list.__setitem__(getattr(p, name), slice(0, 0), getattr(scratch, name))
    p.history_from = 0
