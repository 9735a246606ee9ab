"""JobState and ExecutionRecord: the routilux 0.10 API as a projection over an event log.

Every mutation is one event appended to the job's :class:`eventlog.EventLog` and then
folded into the in-memory :class:`~routilux.projection.JobProjection` by the same
:func:`~routilux.projection.apply_event` that rebuilds use, so the live state always
equals a replay of the log (DESIGN.md, "The event model"). This module is the API; the
work is done by:

* :mod:`routilux.job_writer`: the write path (encode, append, apply) and the snapshot policy;
* :mod:`routilux.rebuild`: the one rebuild (snapshot + tail), behind ``open``, ``at``,
  ``load`` and ``from_events``;
* :mod:`routilux.job_serialize`: ``serialize``/``deserialize`` in the original dict shape;
* :mod:`routilux.job_waiting`: ``wait_for_completion`` and ``wait_until_condition``.

* :mod:`routilux.job_edits`: in-place edits of the values read from the job
  (``job.get_shared_data("items").append(x)``), each recorded as one event;
* :mod:`routilux.legacy_save`: importing a routilux 0.10 JSON save (``load``).

Reads return ``dict``/``list``/``set`` subclasses (:mod:`routilux.frozen`). The values of
``shared_data``, ``routine_states``, ``shared_log`` and ``execution_history`` accept the
mutations a dict or list accepts, each recorded as an event; the others (outputs, pause
points, tasks, execution records) are read-only and their in-place mutation raises
``TypeError`` naming the method to use.
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

import eventlog
from eventlog import EventLog, EventLogError, InMemoryEventLog
from eventlog.audit import StoredCheckpoint, log_origin, make_checkpoint
from eventlog.encoding import encode_event
from eventlog.erasure import ErasureRecord, erase
from eventlog.postgres import is_pg_location, open_pg_log, parse_pg_location
from eventlog.segment import parse_seg_name
from eventlog.signing import Signer

from . import job_events as ev
from . import job_waiting
from .errors import PayloadShapeError, ReplayError
from .execution_record import ExecutionRecord
from .frozen import FrozenDict, FrozenList
from .gc_pause import GC_PAUSE_THRESHOLD, gc_paused
from .job_audit import CheckpointPolicy
from .job_edits import REPLACE, JobEditor
from .job_serialize import JOB_FIELDS, normalize_state, record_dict, serialize
from .job_writer import DEFAULT_SNAPSHOT_EVERY, JOB_SNAPSHOT_GAP, JobWriter
from .legacy_save import is_json_save, read_010_save
from .projection import JobProjection, apply_event, ensure_history, snapshot_state
from .rebuild import rebuild, rebuild_projection, resolve_version
from .serializable import Serializable
from .timestamps import TimeLike, first_ns_at, last_ns_at, ts_to_datetime, ts_to_utc

__all__ = ["DEFAULT_SNAPSHOT_EVERY", "JOB_SNAPSHOT_GAP", "ExecutionRecord", "JobEvent", "JobState",
           "rebuild_projection", "store_job_dirs"]

#: Policy snapshots a new in-memory job keeps (its memory stays bounded by state + log).
MEMORY_SNAPSHOTS_KEPT = 2

_EXECUTION_RECORDED = ev.EXECUTION_RECORDED
_ASSIGNABLE = frozenset({"status", "current_routine_id", "pending_tasks", "deferred_events", "output_handler",
                         "snapshot_every", "job_id", "flow_id"})
#: Fields whose whole value may be assigned (recorded as one ``replace`` edit).
_REPLACEABLE = frozenset({"routine_states", "shared_data", "shared_log", "execution_history"})
_READ_ONLY_HINTS = {
    "output_log": "job_state.send_output(routine_id, output_type, data)",
    "pause_points": "flow.pause(job_state, ...)",
    "open_tasks": "the engine's task hooks",
}


class JobEvent(NamedTuple):
    """One event of a job, as returned by :meth:`JobState.events`.

    Attributes:
        seq: position in the job's log (the JobState ``version`` after it).
        ts: integer nanoseconds since the epoch.
        kind: the event kind (see :mod:`routilux.job_events`).
        data: the payload (a fresh decoded dict).
    """

    seq: int
    ts: int
    kind: str
    data: Any

    @property
    def timestamp(self) -> _dt.datetime:
        """``ts`` as the naive local datetime users see elsewhere."""
        return ts_to_datetime(self.ts)

    @property
    def time(self) -> _dt.datetime:
        """``ts`` as an aware UTC datetime (microsecond precision; ``ts`` keeps the nanoseconds)."""
        return ts_to_utc(self.ts)


def _check_str(name: str, value: Any) -> None:
    if type(value) is not str:
        msg = f"{name} must be a str, got {type(value).__name__} ({value!r})"
        raise TypeError(msg)


def _check_dict(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    msg = f"{name} must be a dict, got {type(value).__name__}"
    raise TypeError(msg)


class JobState(Serializable):
    """Job state for tracking flow execution, recorded as an append-only event log.

    Args:
        flow_id: flow identifier.

    A bare ``JobState()`` keeps its log in memory (:class:`eventlog.InMemoryEventLog`);
    :meth:`open` gives a durable one. Status values: ``pending``, ``running``, ``paused``,
    ``completed``, ``failed``, ``cancelled``.

    Attributes:
        output_handler: the handler :meth:`send_output` calls (not recorded, not serialized).
        snapshot_every: a snapshot of the current state is stored every this many events.
    """

    _lock: threading.RLock
    _p: JobProjection
    _writer: JobWriter
    _write: Callable[[str, dict[str, Any]], tuple[int, int] | None]
    output_handler: Any

    def __init__(self, flow_id: str = "") -> None:
        _check_str("flow_id", flow_id)
        lock = threading.RLock()
        # The log takes the job's own lock: one acquisition covers append and apply.
        log = InMemoryEventLog(keep_snapshots=MEMORY_SNAPSHOTS_KEPT, lock=lock)
        self._setup(log, JobProjection(lock, log), lock, readonly=False)
        self._create(flow_id, None)

    # -- construction helpers ---------------------------------------------------------
    def _setup(self, log: EventLog, projection: JobProjection, lock: threading.RLock, *, readonly: bool,
               why: str = "") -> None:
        set_ = object.__setattr__
        set_(self, "_lock", lock)
        set_(self, "_p", projection)
        writer = JobWriter(log, projection, lock, readonly=readonly)
        set_(self, "_writer", writer)
        set_(self, "_write", writer.emit)  # the mutators' one call (bound once)
        set_(self, "output_handler", None)
        # In-place edits of the values read from this job are recorded by its editor;
        # a read-only JobState has none, and its values say why they refuse changes.
        projection.editor = None if readonly else JobEditor(writer)
        projection.readonly_reason = why or f"a read-only view of job {projection.job_id!r}"
        # The history lists are read from the log on access; the execution history asks
        # for that before every read, so a reference kept by user code stays live. A weak
        # reference: the list must not keep its JobState alive.
        owner = weakref.ref(self)

        def sync() -> None:
            js = owner()
            if js is not None:
                js._ensure_history()

        projection.execution_history.sync = sync

    @classmethod
    def _view(cls, log: EventLog, projection: JobProjection, lock: threading.RLock, *, readonly: bool,
              why: str = "") -> JobState:
        obj = cls.__new__(cls)
        obj._setup(log, projection, lock, readonly=readonly, why=why)
        return obj

    def _create(self, flow_id: str, job_id: str | None) -> None:
        job_id = str(uuid.uuid4()) if job_id is None else job_id
        self._write(ev.JOB_CREATED, {"job_id": job_id, "flow_id": flow_id, "schema": ev.SCHEMA_VERSION})

    # -- attributes -----------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _ASSIGNABLE or name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        if name in _REPLACEABLE:
            self._replace_field(name, value)
            return
        hint = _READ_ONLY_HINTS.get(name)
        if hint is not None:
            msg = f"JobState.{name} cannot be assigned (every change is recorded as an event); use {hint}"
        else:
            msg = (f"JobState.{name} cannot be assigned; the assignable attributes are "
                   f"{', '.join(sorted(_ASSIGNABLE | _REPLACEABLE))}")
        raise AttributeError(msg)

    def _replace_field(self, name: str, value: Any) -> None:
        """``job.shared_data = {...}`` (and the other editable fields): one ``replace`` edit.

        Assigning the field's own value back (what ``job.shared_log += [...]`` does after
        its in-place extend) records nothing.
        """
        if self.readonly:
            self._writer.refuse_readonly()
        view = getattr(self, name)
        if value is view:
            return
        view._edit(REPLACE, value)

    @property
    def snapshot_every(self) -> int:
        """A snapshot of the current state is stored every this many events."""
        return self._writer.snapshot_every

    @snapshot_every.setter
    def snapshot_every(self, value: int) -> None:
        if type(value) is not int or value < 1:
            msg = f"snapshot_every must be a positive int, got {value!r}"
            raise ValueError(msg)
        self._writer.snapshot_every = value

    @property
    def flow_id(self) -> str:
        """The flow identifier; assigning records a ``flow_id_set`` event."""
        return self._p.flow_id

    @flow_id.setter
    def flow_id(self, value: str) -> None:
        _check_str("flow_id", value)
        self._write(ev.FLOW_ID_SET, {"flow_id": value})

    @property
    def job_id(self) -> str:
        """The job identifier (a uuid4 string unless set); assigning records a ``job_id_set`` event.

        A durable job keeps its location (a JobStore lists it under the id it was created
        with); the new id is what the job reports.
        """
        return self._p.job_id

    @job_id.setter
    def job_id(self, value: str) -> None:
        _check_str("job_id", value)
        self._write(ev.JOB_ID_SET, {"job_id": value})

    @property
    def status(self) -> str:
        """The job status; assigning records a ``status_set`` event.

        One of ``pending``, ``running``, ``paused``, ``completed``, ``failed``,
        ``cancelled``, or (as routilux 0.10 allows) a custom non-empty string; the engine
        and ``wait_for_completion`` treat a custom status like none of the six.

        Raises:
            ValueError: (on assignment) not a non-empty str.
        """
        return self._p.status

    @status.setter
    def status(self, value: str) -> None:
        if type(value) is not str:
            if not isinstance(value, str):
                msg = f"invalid job status {value!r}: a status is a str (e.g. {', '.join(ev.JOB_STATUSES)})"
                raise ValueError(msg)
            value = str.__str__(value)  # a str enum member: its value
        if not value:
            msg = f"invalid job status {value!r}: a status is a non-empty str (e.g. {', '.join(ev.JOB_STATUSES)})"
            raise ValueError(msg)
        self._write(ev.STATUS_SET, {"status": value})

    @property
    def current_routine_id(self) -> str | None:
        """The routine being executed (str or None); assigning records an event."""
        return self._p.current_routine_id

    @current_routine_id.setter
    def current_routine_id(self, value: str | None) -> None:
        if value is not None:
            _check_str("current_routine_id", value)
        self._write(ev.CURRENT_ROUTINE_SET, {"routine_id": value})

    @property
    def routine_states(self) -> FrozenDict:
        """routine id -> state dict; in-place changes (``routine_states[r]["count"] += 1``) are recorded."""
        return self._p.routine_states

    @property
    def shared_data(self) -> FrozenDict:
        """Data shared by the routines of this job; in-place changes (``shared_data[k] = v``) are recorded."""
        return self._p.shared_data

    @property
    def deferred_events(self) -> FrozenList:
        """Events to emit on resume (read-only list; assign a list to replace it)."""
        return self._p.deferred_events

    @deferred_events.setter
    def deferred_events(self, value: list[Any]) -> None:
        self._replace_list("deferred_events", ev.DEFERRED_EVENTS_SET, "events", value)

    @property
    def pending_tasks(self) -> FrozenList:
        """Serialized tasks captured by a pause (read-only list; assign a list to replace it)."""
        return self._p.pending_tasks

    @pending_tasks.setter
    def pending_tasks(self, value: list[Any]) -> None:
        self._replace_list("pending_tasks", ev.PENDING_TASKS_SET, "tasks", value)

    def _replace_list(self, name: str, kind: str, field: str, value: list[Any]) -> None:
        """Record the assignment of a whole list attribute as one event."""
        if not isinstance(value, (list, tuple)):
            msg = f"{name} must be a list, got {type(value).__name__}"
            raise TypeError(msg)
        self._write(kind, {field: list(value)})

    @property
    def open_tasks(self) -> FrozenDict:
        """task id -> ``{"task": dict, "state": "queued" | "started"}`` of unfinished tasks."""
        return self._p.open_tasks

    @property
    def execution_history(self) -> FrozenList:
        """Every :class:`ExecutionRecord`, in log order.

        The list is the job's own and stays live: it shows every record made since,
        as the original's attribute did. ``append(record)`` records it (keeping its
        timestamp); other list changes are recorded too; the records are immutable.
        """
        self._ensure_history()
        return self._p.execution_history

    @property
    def pause_points(self) -> FrozenList:
        """Pause points (read-only list of dicts)."""
        self._ensure_history()
        return self._p.pause_points

    @property
    def shared_log(self) -> FrozenList:
        """The shared log (a list of dicts); ``append(entry)`` is :meth:`append_to_shared_log`, other changes are recorded."""
        self._ensure_history()
        return self._p.shared_log

    @property
    def output_log(self) -> FrozenList:
        """Every output sent with :meth:`send_output` (read-only list of dicts)."""
        self._ensure_history()
        return self._p.output_log

    @property
    def created_at(self) -> _dt.datetime:
        """When the job was created (naive local datetime, from the first event's ts)."""
        return self._p.created_at  # type: ignore[no-any-return]

    @property
    def updated_at(self) -> _dt.datetime:
        """When the job last changed (the last event's ts, unless restored by deserialize)."""
        return self._p.updated_at  # type: ignore[no-any-return]

    @property
    def version(self) -> int:
        """The seq of the last applied event (1 right after construction)."""
        return self._p.version

    @property
    def readonly(self) -> bool:
        """True for a view (``at()``, ``from_events()``, ``open(readonly=True)``...)."""
        return self._writer.readonly

    @property
    def log(self) -> EventLog:
        """The underlying event log (read it, never append to it directly)."""
        return self._writer.log

    @property
    def head_hash(self) -> str:
        """The hash-chain head of the job's log at :attr:`version` (32 hex digits)."""
        log = self._writer.log
        version = self._p.version
        if version == log.head_seq:
            return log.head_hash.hex()
        return log.link_at(version).hex()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._writer.log.closed

    def __repr__(self) -> str:
        return f"JobState[{self._p.job_id}:{self._p.status}]"

    # -- engine hooks of the write path -------------------------------------------------
    @property
    def _condition(self) -> threading.Condition:
        return self._writer.condition

    @property
    def _c(self) -> Any:
        return self._writer.counters

    def _emit(self, kind: str, data: dict[str, Any]) -> tuple[int, int] | None:
        return self._write(kind, data)

    def _transaction(self) -> AbstractContextManager[None]:
        """Buffer the mutators called inside and append them as ONE atomic batch at exit."""
        return self._writer.transaction()

    def _change_mark(self) -> tuple[int, int]:
        return self._writer.change_mark()

    def _notify_waiters(self) -> None:
        """Wake :meth:`wait_for_completion` / :meth:`wait_until_condition` waiters."""
        self._writer.notify_waiters()

    # -- original API: mutators -------------------------------------------------------
    def update_routine_state(self, routine_id: str, state: dict[str, Any]) -> None:
        """Set the state of a routine, replacing the previous one (a copy is stored).

        Raises:
            TypeError: ``routine_id`` is not a str, ``state`` not a dict, or a value
                cannot be stored (``EventEncodingError`` naming its path).
        """
        if type(routine_id) is not str:
            _check_str("routine_id", routine_id)
        if type(state) is not dict:
            state = _check_dict("state", state)
        self._write(ev.ROUTINE_STATE_SET, {"routine_id": routine_id, "state": state})

    def get_routine_state(self, routine_id: str) -> FrozenDict | None:
        """Return the state of a routine (its in-place changes are recorded), or None."""
        # (The view's own read, without its method calls: the hot path of
        # `get_routine_state(r)["count"] += 1`.)
        states = self._p._routine_states
        if states.stale:
            states.sync()
        state: FrozenDict | None = dict.get(states.view, routine_id)
        return state

    def record_execution(self, routine_id: str, event_name: str, data: dict[str, Any] | None) -> None:
        """Append an :class:`ExecutionRecord` (timestamped by its event) to the history.

        Raises:
            TypeError: ``routine_id``/``event_name`` not str, ``data`` not a dict, or a
                value cannot be stored.
        """
        if type(data) is not dict:
            data = {} if data is None else _check_dict("data", data)
        try:
            self._write(_EXECUTION_RECORDED, {"routine_id": routine_id, "event_name": event_name, "data": data})
        except PayloadShapeError:
            # The event's shape check (run before anything is written) found a non-str id:
            # name the argument, as the other mutators do.
            _check_str("routine_id", routine_id)
            _check_str("event_name", event_name)
            raise

    def get_execution_history(self, routine_id: str | None = None) -> list[ExecutionRecord]:
        """Return a new list of records (optionally of one routine), sorted by timestamp."""
        history: Iterable[ExecutionRecord] = self.execution_history
        if routine_id is not None:
            history = [r for r in history if r.routine_id == routine_id]
        return sorted(history, key=_record_time)

    def add_deferred_event(self, routine_id: str, event_name: str, data: dict[str, Any]) -> None:
        """Add an event to emit on resume (with an iso ``timestamp`` from its event)."""
        _check_str("routine_id", routine_id)
        _check_str("event_name", event_name)
        data = {} if data is None else _check_dict("data", data)
        self._write(ev.DEFERRED_EVENT_ADDED, {"routine_id": routine_id, "event_name": event_name,
                                                   "data": data})

    def update_shared_data(self, key: str, value: Any) -> None:
        """Set ``shared_data[key] = value`` (thread-safe: one event under the job's lock).

        Raises:
            TypeError: ``key`` is not a str or ``value`` cannot be stored.
        """
        if type(key) is not str:
            _check_str("key", key)
        self._write(ev.SHARED_DATA_SET, {"key": key, "value": value})

    def get_shared_data(self, key: str, default: Any = None) -> Any:
        """Return ``shared_data[key]`` (a dict or list value records its in-place changes), or ``default``."""
        # (The view's own read, without its method calls: the hot path of
        # `get_shared_data("items").append(x)`.)
        data = self._p._shared_data
        if data.stale:
            data.sync()
        return dict.get(data.view, key, default)

    def append_to_shared_log(self, entry: dict[str, Any]) -> None:
        """Append a copy of ``entry`` (plus an iso ``timestamp`` if it has none).

        Raises:
            ValueError: ``entry`` is not a dict.
        """
        if not isinstance(entry, dict):
            msg = f"shared log entry must be a dict, got {type(entry).__name__}"
            raise ValueError(msg)
        self._write(ev.SHARED_LOG_APPENDED, {"entry": dict(entry)})

    def get_shared_log(self, filter_func: Callable[[dict[str, Any]], bool] | None = None) -> list[Any]:
        """Return a new list of the shared-log entries (optionally only those ``filter_func`` keeps)."""
        entries = self.shared_log
        if filter_func is None:
            return list(entries)
        return [e for e in entries if filter_func(e)]

    def set_output_handler(self, handler: Any) -> None:
        """Set the output handler for this execution (None disables it)."""
        object.__setattr__(self, "output_handler", handler)

    def send_output(self, routine_id: str, output_type: str, data: dict[str, Any]) -> None:
        """Record an output in ``output_log`` and pass it to the output handler, if any.

        The output is recorded first (a value that cannot be stored raises and reaches no
        handler); a handler exception becomes a warning, as in the original.
        """
        _check_str("routine_id", routine_id)
        _check_str("output_type", output_type)
        data = {} if data is None else _check_dict("data", data)
        done = self._write(ev.OUTPUT_SENT, {"routine_id": routine_id, "output_type": output_type,
                                                  "data": data})
        handler = self.output_handler
        if handler is not None:
            stamp = ts_to_datetime(done[1]) if done is not None else _dt.datetime.now()
            try:
                handler.handle(job_id=self._p.job_id, routine_id=routine_id, output_type=output_type,
                               data=data, timestamp=stamp)
            except Exception as exc:  # the original turns handler failures into warnings
                warnings.warn(f"Output handler failed: {exc}", stacklevel=2)

    # -- engine hooks -----------------------------------------------------------------
    def _set_paused(self, reason: str = "", checkpoint: dict[str, Any] | None = None) -> None:
        """Set status ``paused`` and add a pause point (used by Flow.pause)."""
        _check_str("reason", reason)
        self._write(ev.PAUSED, {"reason": reason, "checkpoint": {} if not checkpoint else _check_dict("checkpoint",
                                                                                                       checkpoint)})

    def _set_running(self) -> None:
        """Set status ``running`` if it is ``paused`` (used by Flow.resume)."""
        self._write(ev.RESUMED, {})

    def _set_cancelled(self, reason: str = "") -> None:
        """Set status ``cancelled`` (and ``routine_states['_cancellation']`` for a reason)."""
        _check_str("reason", reason)
        self._write(ev.CANCELLED, {"reason": reason})

    def _add_pause_point(self, point: dict[str, Any]) -> None:
        """Append the engine's own pause-point dict to ``pause_points``."""
        self._write(ev.PAUSE_POINT_ADDED, {"point": _check_dict("point", point)})

    def _task_queued(self, task_id: str, task: dict[str, Any]) -> None:
        """Record that a task was queued (it stays in ``open_tasks`` until finished/failed)."""
        _check_str("task_id", task_id)
        self._write(ev.TASK_QUEUED, {"task_id": task_id, "task": _check_dict("task", task)})

    def _task_started(self, task_id: str) -> None:
        """Record that a queued task started (unknown ids change nothing)."""
        _check_str("task_id", task_id)
        self._write(ev.TASK_STARTED, {"task_id": task_id})

    def _task_finished(self, task_id: str) -> None:
        """Record that a task finished (removed from ``open_tasks``)."""
        _check_str("task_id", task_id)
        self._write(ev.TASK_FINISHED, {"task_id": task_id})

    def _task_failed(self, task_id: str, error: dict[str, Any]) -> None:
        """Record that a task failed with ``error`` (removed from ``open_tasks``)."""
        _check_str("task_id", task_id)
        self._write(ev.TASK_FAILED, {"task_id": task_id, "error": _check_dict("error", error)})

    # -- serialize / deserialize ------------------------------------------------------
    @property
    def fields_to_serialize(self) -> list[str]:
        """The serialized fields, in the original's order."""
        return list(JOB_FIELDS)

    @fields_to_serialize.setter
    def fields_to_serialize(self, value: list[str]) -> None:
        msg = f"{type(self).__name__} always serializes the same fields; they cannot be changed"
        raise AttributeError(msg)

    def serialize(self, max_depth: int = 100, _current_depth: int = 0) -> dict[str, Any]:
        """Return the original dict shape: ``_type``, the fields, ISO timestamps, plain copies."""
        with self._lock:
            self._ensure_history()
            return serialize(self._p)

    def deserialize(self, data: dict[str, Any], strict: bool = False, registry: Any = None) -> None:
        """Replace this job's fields with those of a :meth:`serialize` dict (one event).

        Missing fields keep their current values. ``strict`` and ``registry`` are serilux's
        parameters, accepted for compatibility: unknown fields are always refused.

        Raises:
            ValueError: ``data`` is not a JobState dict (wrong ``_type``, unknown field,
                invalid status, malformed history or timestamps).
            TypeError: a value cannot be stored.
        """
        if self.readonly:
            self._writer.refuse_readonly()
        state = normalize_state(data)
        with self._lock:
            self._ensure_history()
            p = self._p
            current = {
                "execution_history": [record_dict(r) for r in p.execution_history],
                "shared_log": list(p.shared_log),
                "output_log": list(p.output_log),
                "pause_points": list(p.pause_points),
            }
            for name, value in current.items():
                state.setdefault(name, value)
            self._write(ev.DESERIALIZED, {"state": state})

    # -- new API: time travel -----------------------------------------------------------
    def _ensure_history(self) -> None:
        p = self._p
        if not p.history_complete:
            with self._lock:
                ensure_history(p)  # (it pauses the collector for the events it reads)

    def events(self, kind: str | Iterable[str] | None = None, routine_id: str | None = None,
               start: int | None = None, stop: int | None = None, since: TimeLike | None = None,
               until: TimeLike | None = None) -> list[JobEvent]:
        """Return this job's events up to :attr:`version`, filtered (a list: see :meth:`iter_events`).

        Args:
            kind: one kind or several.
            routine_id: only events whose payload has this ``routine_id``.
            start, stop: seq range (inclusive).
            since, until: timestamp range (inclusive, at the microsecond users see; a
                datetime, naive local or aware, int nanoseconds, or an ISO 8601 string).
        """
        return list(self.iter_events(kind, routine_id, start, stop, since, until))

    def iter_events(self, kind: str | Iterable[str] | None = None, routine_id: str | None = None,
                    start: int | None = None, stop: int | None = None, since: TimeLike | None = None,
                    until: TimeLike | None = None) -> Iterator[JobEvent]:
        """Yield this job's events up to :attr:`version` (at the call), filtered, as they are read.

        The same filters as :meth:`events`; memory stays bounded whatever the length of
        the log (events are read and decoded one at a time).
        """
        log = self.log
        head = self._p.version
        lo = 1 if start is None else max(1, start)
        hi = head if stop is None else min(stop, head)
        if since is not None:
            lo = max(lo, log.seq_at_time(first_ns_at(since) - 1) + 1)
        if until is not None:
            hi = min(hi, log.seq_at_time(last_ns_at(until)))
        kinds = None if kind is None else ({kind} if isinstance(kind, str) else set(kind))
        return self._read_events(log, lo, hi, kinds, routine_id)

    @staticmethod
    def _read_events(log: EventLog, lo: int, hi: int, kinds: set[str] | None,
                     routine_id: str | None) -> Iterator[JobEvent]:
        if lo > hi:
            return
        for rec in log.read(lo, hi):
            if kinds is not None and rec.kind not in kinds:
                continue
            if routine_id is not None and rec.data.get("routine_id") != routine_id:
                continue
            yield JobEvent(rec.seq, rec.ts, rec.kind, rec.data)

    def at(self, version: int | str | None = None, timestamp: TimeLike | None = None) -> JobState:
        """Return a read-only JobState as it was at ``version`` and/or ``timestamp``.

        ``version`` is a seq, ``"head"`` or ``"head-N"`` (N events before the head, as the
        CLI takes them). ``timestamp`` (a datetime, int ns or ISO 8601 string) includes
        every event whose user-visible timestamp is <= it. Built from the newest snapshot
        at or before the point plus the events after it; the history lists are read from
        the log on first access.

        Raises:
            ValueError: the version is out of range, or nothing happened by ``timestamp``.
        """
        with self._lock:
            head = self._p.version
        log = self.log
        version = resolve_version(log, version, timestamp, head, f"job {self._p.job_id!r}")
        lock = threading.RLock()
        projection = rebuild(log, version, lock=lock)
        why = f"the view of job {projection.job_id!r} at version {version} (from at())"
        return JobState._view(log, projection, lock, readonly=True, why=why)

    @classmethod
    def from_events(cls, events: Iterable[Any] | EventLog) -> JobState:
        """Rebuild a read-only JobState by folding ``events``.

        Args:
            events: an :class:`eventlog.EventLog`, or records ``(seq, ts, kind, data)``
                in order from seq 1 (e.g. ``job_state.events()``).

        Raises:
            ReplayError: (a ``ValueError``) a gap in seqs, an unknown kind, a newer schema
                version or a malformed payload.
        """
        if isinstance(events, EventLog):
            log = events
        else:
            log = InMemoryEventLog()
            for i, (seq, ts, kind, data) in enumerate(events, start=1):
                if seq != i:
                    msg = f"events must be given in order from seq 1: expected seq {i}, got {seq}"
                    raise ReplayError(msg, seq)
                try:
                    log.append_encoded(encode_event(kind, data), ts=ts)
                except (TypeError, ValueError) as exc:  # a timestamp going backwards, a bad kind
                    raise ReplayError(str(exc), seq) from None
        if log.head_seq == 0:
            msg = "from_events needs at least the job_created event"
            raise ReplayError(msg)
        lock = threading.RLock()
        projection = rebuild(log, lock=lock)
        why = f"job {projection.job_id!r} rebuilt by from_events() (read-only)"
        return cls._view(log, projection, lock, readonly=True, why=why)

    # -- durable jobs ----------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str], flow_id: str = "", durability: str = "batch",
             key: bytes | None = None, readonly: bool = False, *, job_id: str | None = None,
             checkpoints: CheckpointPolicy | None = None) -> JobState:
        """Open (or create) a durable JobState whose log lives at ``path``.

        ``path`` is a log directory, or a PostgreSQL location
        ``postgresql://user@host:port/database#<job id>`` (the job's log in that
        database; see :func:`eventlog.postgres.open_pg_log`). Reopening continues the
        same job. ``readonly=True`` opens without taking the writer role (for tools
        reading a running job) and returns a read-only JobState.

        Args:
            path: the log directory, or a ``postgresql://...#<job id>`` location.
            flow_id: the flow of a new job; for an existing job it must match (or be "").
            durability: ``"always"``, ``"batch"`` (default) or ``"none"`` (eventlog.DURABILITY_MODES)
                for a log directory. PostgreSQL makes every event durable when its
                commit returns, whatever this says.
            key: secret key of the hash chain.
            readonly: open for reading only.
            job_id: the id of a new job (default: a uuid4 for a directory, the
                location's job id for PostgreSQL).
            checkpoints: sign checkpoints of the log for audit proofs by this policy
                (every N events and/or at a terminal status; see :mod:`routilux.job_audit`).

        Raises:
            ValueError: ``flow_id`` differs from the job's, the log is not a job log, or
                a PostgreSQL location has no ``#<job id>``.
            FileNotFoundError: ``readonly=True`` and there is no job at ``path``.
            ValueError: ``path`` is a :class:`~routilux.job_store.JobStore` directory (it holds
                jobs, not a log).
            eventlog.LogLockedError: another writer holds the (directory) log.
            eventlog.ConcurrencyError: (later, on a mutation) another writer appended to
                the same PostgreSQL job; nothing was written, reopen to continue.
        """
        log: EventLog
        if is_pg_location(path):
            log, where = _open_pg(str(path), key=key, readonly=readonly)
            if job_id is None:
                job_id = log.job_id  # type: ignore[attr-defined]
        else:
            where = os.fspath(path)
            if readonly and not os.path.exists(where):
                msg = f"no job log at {where!r}"
                raise FileNotFoundError(msg)
            jobs = store_job_dirs(where)
            if jobs:
                # Opening a store's root as a job would create a job there, after which the
                # store no longer lists (issue 17).
                shown = ", ".join(jobs[:3]) + (", ..." if len(jobs) > 3 else "")
                count = f"{len(jobs)} job" + ("s" if len(jobs) != 1 else "")
                msg = (f"{where!r} is a JobStore directory holding {count} ({shown}), not a job log: open one "
                       f"with JobStore({where!r}).open(job_id) or JobState.open(os.path.join(path, job_id))")
                raise ValueError(msg)
            # snapshot_gap: the log's retention keeps old snapshots at most this far
            # apart, so at(version=k) for any k replays at most ~JOB_SNAPSHOT_GAP events.
            log = eventlog.open_log(where, readonly=readonly, durability=durability, key=key,
                                    snapshot_gap=JOB_SNAPSHOT_GAP)
        try:
            lock = threading.RLock()
            if log.head_seq == 0:
                if readonly:
                    msg = f"the log at {where!r} is empty (no job was created there)"
                    raise ValueError(msg)
                state = cls._view(log, JobProjection(lock, log), lock, readonly=False)
                _check_str("flow_id", flow_id)
                state._create(flow_id, job_id)
                state._writer.set_checkpoints(checkpoints)
                return state
            projection = rebuild(log, log.head_seq, where=where, lock=lock)
            if flow_id and flow_id != projection.flow_id:
                msg = f"job log {where!r} belongs to flow {projection.flow_id!r}, not {flow_id!r}"
                raise ValueError(msg)
            why = f"job {projection.job_id!r} opened read-only at {where!r}"
            state = cls._view(log, projection, lock, readonly=readonly, why=why)
            # Count events since the newest snapshot so the policy continues from there.
            seqs = log.snapshot_seqs()
            state._writer.snapshot_taken_at(seqs[-1] if seqs else 0)
            if not readonly:
                state._writer.set_checkpoints(checkpoints)
            return state
        except BaseException:
            log.close()
            raise

    # -- audit proofs and personal values (issue 14) -----------------------------------
    def checkpoint(self, signer: Signer | None = None) -> StoredCheckpoint:
        """Sign a checkpoint of the job's log now and keep it with the log (see :mod:`eventlog.audit`).

        ``signer`` defaults to the checkpoint policy's; the origin is the log's, or the
        policy's for the job.

        Raises:
            ValueError: no signer given and no checkpoint policy set.
        """
        policy = self._writer.checkpoints
        if signer is None:
            if policy is None:
                msg = "give a signer (or open the job with a checkpoint policy)"
                raise ValueError(msg)
            signer = policy.signer
        origin = (policy or CheckpointPolicy(signer)).origin_for(self._p.job_id)
        with self._lock:
            return make_checkpoint(self.log, signer, origin=log_origin(self.log) or origin)

    def reveal(self, value: Any) -> Any:
        """``value`` with its personal values (:class:`eventlog.Personal`) read from the log's vault.

        An erased one reads as :class:`eventlog.personal.Erased`; see :meth:`eventlog.EventLog.reveal`.
        """
        return self._writer.log.reveal(value)

    def erase_personal(self, selection: Iterable[Any], reason: str, signer: Signer) -> ErasureRecord:
        """Erase personal values of this job (see :func:`eventlog.erasure.erase`): one signed event.

        ``selection``: :class:`eventlog.erasure.PersonalRef` s (``eventlog.erasure.find_personal(job.log, ...)``)
        or commitments (``value.commitment`` of a :class:`eventlog.Personal` read from the state).
        """
        if self._writer.readonly:
            self._writer.refuse_readonly()
        with self._lock:
            record = erase(self.log, selection, reason, signer, expected_seq=self._p.version)
            _seq, ts, event_bytes = next(iter(self.log.read_raw(record.seq, record.seq)))
            apply_event(self._p, record.seq, ts, event_bytes)
            return record

    def sync(self) -> int:
        """Make every recorded event (and any snapshot being written) durable; return the durable version."""
        self._writer.drain_snapshots()
        return self.log.sync()

    def close(self) -> None:
        """Sync and close the job's log (idempotent). Views keep reading until then."""
        log = self._writer.log
        if not log.closed:
            with self._lock:
                self._writer.drain_snapshots()  # finish a pending snapshot before the log goes away
                log.close()

    def __enter__(self) -> JobState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- save / load -------------------------------------------------------------------
    def save(self, filepath: str | os.PathLike[str]) -> None:
        """Write the whole job (every event plus a snapshot) to one portable file, atomically.

        The parent directory is created if needed. The file is an eventlog bundle.
        """
        filepath = os.fspath(filepath)
        os.makedirs(os.path.dirname(os.path.abspath(filepath)), exist_ok=True)
        with self._lock:
            log = self.log
            state = snapshot_state(self._p) if self._p.version == log.head_seq else None
            eventlog.write_bundle(filepath, log, state=state, schema_version=ev.SCHEMA_VERSION)

    @classmethod
    def load(cls, filepath: str | os.PathLike[str], version: int | str | None = None,
             timestamp: TimeLike | None = None, *, key: bytes | None = None) -> JobState:
        """Load a job saved with :meth:`save` (its latest state, or an earlier point), or a routilux 0.10 save.

        At the latest version the result is an in-memory job that can keep going and be
        saved again; an earlier point (``version``: a seq, ``"head"`` or ``"head-N"``;
        ``timestamp``: a datetime, int ns or ISO string) gives a read-only JobState. The
        history lists are read from the file's events when first asked for.

        A routilux 0.10 JSON save (what the original's ``JobState.save`` writes) is
        imported (:mod:`routilux.legacy_save`): the result is a new in-memory job whose
        log starts with a ``job_created`` event naming the file and the SHA-256 of its
        bytes, followed by the saved state as events (the execution records keep their
        original timestamps); ``save()`` it to keep it in this format.

        Raises:
            FileNotFoundError: no file at ``filepath``.
            ValueError: the file is not a job file (nor a 0.10 save), or is damaged (the
                message says what).
        """
        filepath = os.fspath(filepath)
        if not os.path.exists(filepath):
            msg = f"no job file at {filepath!r}"
            raise FileNotFoundError(msg)
        if is_json_save(filepath):
            return cls._import_010(filepath, version, timestamp)
        with gc_paused(GC_PAUSE_THRESHOLD):
            try:
                # read_bundle stores the bundle's snapshot in the log it returns, where
                # rebuild (latest snapshot <= version, then the tail) finds it.
                log, _snap = eventlog.read_bundle(filepath, key=key)
            except FileNotFoundError:
                raise
            except (EventLogError, ValueError, OSError) as exc:
                msg = f"{filepath!r} is not a readable routilux job file: {exc}"
                raise ValueError(msg) from exc
            head = log.head_seq
            if head == 0:
                msg = f"{filepath!r} holds no events: it is not a routilux job file"
                raise ValueError(msg)
            try:
                first = log.get(1)
                if first.kind != ev.JOB_CREATED:
                    msg = f"{filepath!r} is not a routilux job file: it starts with a {first.kind!r} event"
                    raise ValueError(msg)
                version = resolve_version(log, version, timestamp, head, repr(filepath))
                lock = threading.RLock()
                projection = rebuild(log, version, where=filepath, lock=lock)
            except (ReplayError, EventLogError) as exc:
                msg = f"{filepath!r} is damaged or not a routilux job file: {exc}"
                raise ValueError(msg) from exc
        why = f"job {projection.job_id!r} loaded from {filepath!r} at version {version} (an earlier point)"
        return cls._view(log, projection, lock, readonly=version != head, why=why)

    @classmethod
    def _import_010(cls, filepath: str, version: int | str | None, timestamp: TimeLike | None) -> JobState:
        """A new in-memory job from a routilux 0.10 JSON save: its events in one atomic batch."""
        events = read_010_save(filepath)
        lock = threading.RLock()
        log = InMemoryEventLog(keep_snapshots=MEMORY_SNAPSHOTS_KEPT, lock=lock)
        job = cls._view(log, JobProjection(lock, log), lock, readonly=False)
        with job._transaction():
            for kind, payload in events:
                job._write(kind, payload)
        if version is None and timestamp is None:
            return job
        return job.at(version, timestamp)

    # -- waiting ---------------------------------------------------------------------
    @staticmethod
    def wait_for_completion(flow: Any, job_state: JobState, timeout: float | None = None,
                            stability_checks: int = 5, check_interval: float = 0.1,
                            stability_delay: float = 0.05,
                            progress_callback: Callable[[int, int, str], None] | None = None) -> bool:
        """Wait until the job is complete; return False if ``timeout`` seconds pass first.

        Complete: status ``paused``/``cancelled``/``failed``, or ``running``/``completed``
        with no queued or running task of this job (``flow._job_activity(job_state)`` when
        the flow has it, else ``job_state.open_tasks`` empty). A ``running`` job then
        becomes ``failed`` if a routine state's status is ``failed``/``error``, else
        ``completed``. ``pending`` never completes. Waiting wakes on every state change
        (no polling floor); ``stability_checks``/``stability_delay`` are accepted for
        compatibility (completion is detected exactly, so one check suffices) and
        ``check_interval`` caps each wait in case a flow changes without notifying.
        """
        return job_waiting.wait_for_completion(flow, job_state, timeout, check_interval, progress_callback)

    @staticmethod
    def wait_until_condition(flow: Any, job_state: JobState, condition: Callable[[Any, JobState], bool],
                             timeout: float | None = None, check_interval: float = 0.1,
                             progress_callback: Callable[[int, int, str], None] | None = None) -> bool:
        """Wait until ``condition(flow, job_state)`` is true; False if ``timeout`` passes first.

        Re-checks on every state change of the job, and at least every ``check_interval``
        seconds (the condition may look at the flow too).
        """
        return job_waiting.wait_until_condition(flow, job_state, condition, timeout, check_interval,
                                                progress_callback)


def _record_time(record: ExecutionRecord) -> _dt.datetime:
    return record.timestamp


def store_job_dirs(path: str | os.PathLike[str]) -> list[str]:
    """The job directories directly inside ``path`` when ``path`` looks like a JobStore, sorted.

    A directory that holds log segments itself is a job log (empty list); so is a
    missing or empty one (a new job). Otherwise the subdirectories that hold log
    segments are the jobs of a store. ``JobState.open`` refuses such a directory, and
    ``routilux-replay`` names the jobs.
    """
    where = os.fspath(path)
    try:
        names = os.listdir(where)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
    if any(parse_seg_name(name) is not None for name in names):
        return []
    jobs = []
    for name in names:
        sub = os.path.join(where, name)
        try:
            if os.path.isdir(sub) and any(parse_seg_name(n) is not None for n in os.listdir(sub)):
                jobs.append(name)
        except OSError:
            continue  # an unreadable entry is not a job we can name
    return sorted(jobs)


def _open_pg(location: str, *, key: bytes | None, readonly: bool) -> tuple[EventLog, str]:
    """Open the PostgreSQL log named by ``location`` (``postgresql://...#job``); return it and a name for messages."""
    conninfo, job = parse_pg_location(location)
    if not job:
        # The URL is not echoed: it may hold a password.
        msg = ("a PostgreSQL job location needs the job id after '#' "
               "(postgresql://user@host:port/database#<job id>); this one has none")
        raise ValueError(msg)
    # readonly: nothing is created, and a missing job is LogNotFoundError (a FileNotFoundError).
    log = open_pg_log(conninfo, job, key=key, create=not readonly, readonly=readonly)
    return log, log.location

