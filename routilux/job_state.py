"""JobState and ExecutionRecord: the routilux 0.10 API as a projection over an event log.

Every mutation is one event appended to the job's :class:`eventlog.EventLog` and then
folded into the in-memory :class:`~routilux.projection.JobProjection` by the same pure
:func:`~routilux.projection.apply` that replays use, so the live state always equals a
replay of the log (DESIGN.md, "The event model"). A value that cannot be stored raises
:class:`eventlog.EventEncodingError` (a ``TypeError`` naming its path) and changes nothing.

Reads return read-only ``dict``/``list`` subclasses (:mod:`routilux.frozen`); in-place
mutation raises ``TypeError`` naming the method to use.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import logging
import os
import re
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import eventlog
from eventlog import EventEncodingError, EventLog, EventLogError, InMemoryEventLog, Record, codec
from eventlog._events import decode_event, encode_event
from eventlog.memory import SNAPSHOT_MAX_BYTES, SNAPSHOT_MAX_DEPTH
from eventlog.postgres import is_pg_location, open_pg_log, parse_pg_location

from . import events as ev
from .errors import ReadOnlyJobStateError, ReplayError
from .frozen import FrozenDict, FrozenList, thaw
from .projection import (
    ExecutionRecord,
    JobProjection,
    _event_record,
    apply,
    complete_history,
    fold,
    from_snapshot,
    iso_to_datetime,
    snapshot_state,
    ts_to_datetime,
)
from .serializable import Serializable

__all__ = ["ExecutionRecord", "JobEvent", "JobState", "rebuild_projection"]

_log = logging.getLogger(__name__)

#: Take a snapshot of the current state every this many events (see JobState.snapshot_every).
DEFAULT_SNAPSHOT_EVERY = 4096
#: Retention asked of a durable log (open_log's ``snapshot_gap``): policy snapshots that
#: are kept are at most this many events apart, so ``at(version=k)`` replays at most this
#: many events for any k (~20 ms at replay speed) while a 1M-event job keeps ~120 small
#: snapshot files. Twice the policy interval: every other policy snapshot survives.
SNAPSHOT_GAP = 2 * DEFAULT_SNAPSHOT_EVERY
#: Policy snapshots a durable job may have waiting for its background writer; a mutator
#: that would queue one more waits (at most _SNAPSHOT_WAIT seconds) for the writer.
_SNAPSHOT_QUEUE = 4
_SNAPSHOT_WAIT = 10.0
#: Fold this many events or more with the garbage collector paused (DESIGN.md: gc is the
#: largest lever in replay; a full collection over 1M live objects costs ~0.9 s).
_GC_PAUSE_THRESHOLD = 2048

# Statuses after which a durable log is flushed to disk (the run is over or parked).
_SYNC_STATUSES = ev.TERMINAL_STATUSES | {"paused"}
_STATUSES = frozenset(ev.JOB_STATUSES)
_ASSIGNABLE = frozenset({"status", "current_routine_id", "pending_tasks", "deferred_events", "output_handler",
                         "snapshot_every"})
_READ_ONLY_HINTS = {
    "routine_states": "job_state.update_routine_state(routine_id, state)",
    "shared_data": "job_state.update_shared_data(key, value)",
    "shared_log": "job_state.append_to_shared_log(entry)",
    "output_log": "job_state.send_output(routine_id, output_type, data)",
    "execution_history": "job_state.record_execution(routine_id, event_name, data)",
    "pause_points": "flow.pause(job_state, ...)",
    "open_tasks": "the engine's task hooks",
}

_JOB_FIELDS = ("flow_id", "job_id", "status", "current_routine_id", "routine_states", "execution_history",
               "created_at", "updated_at", "pause_points", "pending_tasks", "deferred_events", "shared_data",
               "shared_log", "output_log")


class _Counters:
    """Mutable counters of a JobState (slots: cheap to bump on the hot path)."""

    __slots__ = ("notified", "quiet_waiters", "snapshot_at", "status", "waiters")

    def __init__(self) -> None:
        self.status = ""  # the status last seen by _changed (a change to a terminal one syncs)
        self.notified = 0  # bumped by _notify_waiters(); with the version, tells a waiter "changed"
        self.snapshot_at = 0  # version of the last snapshot (the policy counts from it)
        self.waiters = 0  # threads in _wait_change that want a wake-up after every event
        # wait_for_completion with a flow that reports its activity: woken only by a status
        # change or _notify_waiters() (the engine calls it when the job's work runs out), so
        # a durable run's worker threads are not interrupted on every append.
        self.quiet_waiters = 0


# Value types whose packed form needs no further check (floats are checked for NaN/inf).
_SCALARS = frozenset({str, int, bool, type(None)})
_pack_unchecked = codec.pack_unchecked
#: An event field at the start of an encoding error's path: ``data['value']``.
_EVENT_FIELD = re.compile(r"data\['([A-Za-z_][A-Za-z0-9_]*)'\]")


def _by_argument(err: EventEncodingError) -> EventEncodingError:
    """The same error, its path starting at the caller's argument, not the event's field.

    Every mutator stores its arguments under event fields of the same names, so
    ``update_shared_data("k", {1})`` reports ``value: set is not serializable`` and
    ``record_execution(..., data={"x": {1}})`` reports ``data['x']: ...`` (the event's
    own ``data['value']`` / ``data['data']['x']`` would name a dict the caller never saw).
    """
    found = _EVENT_FIELD.match(err.path)
    if found is None:
        return err
    return type(err)(found.group(1) + err.path[found.end():], err.problem)
_MAX_RECORD_BYTES = codec.MAX_RECORD_BYTES
# The snapshot encoding limits every backend applies (FileEventLog's equal InMemoryEventLog's).
_SNAPSHOT_MAX_DEPTH = SNAPSHOT_MAX_DEPTH
_SNAPSHOT_MAX_BYTES = SNAPSHOT_MAX_BYTES
_list_append = list.append
# Kinds whose apply must see every earlier execution record (see _flush_pending).
_HISTORY_ORDER_KINDS = frozenset({ev.EXECUTION_RECORDED, ev.DESERIALIZED})
_EXEC = ev.EXECUTION_RECORDED
# The canonical event bytes are msgpack [kind, data]: a fixarray of two (0x92), the packed
# kind, the packed data -- exactly what eventlog._events.encode_event builds.
_EXEC_PREFIX = b"\x92" + codec.pack_unchecked(_EXEC)


class _CountingCondition(threading.Condition):
    """A Condition that counts its waiters, so appends skip ``notify_all`` when nobody waits.

    ``notify_all`` costs a method call and a lock-ownership check on every event; the
    hot path only calls it when ``counters.waiters`` is non-zero. Anyone waiting on
    ``job_state._condition`` (wait or wait_for) is counted, so every waiter is woken
    after every applied event.
    """

    def __init__(self, lock: Any, counters: _Counters) -> None:
        super().__init__(lock)
        self._counters = counters

    def wait(self, timeout: float | None = None) -> bool:
        counters = self._counters
        counters.waiters += 1  # the lock is held here (Condition.wait requires it)
        try:
            return super().wait(timeout)
        finally:
            counters.waiters -= 1


class _SnapshotWriter:
    """Stores policy snapshots of a durable job from a short-lived background thread.

    Snapshots are written in order from a small queue: a burst of appends (a large
    batch, a fast loop) that outruns the writer does not lose the snapshots in between,
    which would leave gaps longer than the policy interval for ``at()`` to replay. Only
    when :data:`_SNAPSHOT_QUEUE` snapshots are already waiting does a newer one replace
    the newest waiting one (memory stays bounded if the writer cannot keep up).
    Failures are logged, never raised: the events are already recorded and a missing
    snapshot only costs a longer replay.
    """

    def __init__(self, log: EventLog, job_id: str) -> None:
        self._log = log
        self._job_id = job_id
        self._cond = threading.Condition()
        self._pending: list[tuple[int, dict[str, Any]]] = []
        self._busy = False

    def submit(self, version: int, state: dict[str, Any]) -> None:
        with self._cond:
            # A full queue means the writer is behind: an appending thread that never
            # blocks lets it have the GIL only at the interpreter's switch interval, once
            # per file-system call. Wait for it (the wait frees the GIL, so it catches up
            # in milliseconds) rather than drop a snapshot: a dropped one stretches the
            # replay behind at() past SNAPSHOT_GAP. The timeout only guards a stuck disk;
            # then the newest pending snapshot is replaced, as a last resort.
            deadline = time.monotonic() + _SNAPSHOT_WAIT
            while len(self._pending) >= _SNAPSHOT_QUEUE and self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if len(self._pending) >= _SNAPSHOT_QUEUE:
                self._pending[-1] = (version, state)
            else:
                self._pending.append((version, state))
            if not self._busy:
                self._busy = True
                threading.Thread(target=self._run, name=f"snapshot-{self._job_id}", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._pending:
                    self._busy = False
                    self._cond.notify_all()
                    return
                version, state = self._pending.pop(0)
                self._cond.notify_all()  # a submitter may wait for room in the queue
            try:
                # A backend's owner-only store (no Snapshot decoded back) where it has one.
                if type(state) is bytes:  # encoded by JobState._take_snapshot
                    self._log._store_snapshot_body(  # type: ignore[attr-defined]
                        state, schema_version=ev.SCHEMA_VERSION, seq=version)
                else:
                    self._log.save_snapshot(state, schema_version=ev.SCHEMA_VERSION, seq=version)
            except Exception:  # noqa: BLE001 - logged; see the class docstring
                _log.exception("could not store a snapshot of job %s at version %s", self._job_id, version)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until no snapshot is pending or being written."""
        with self._cond:
            self._cond.wait_for(lambda: not self._busy, timeout)


class JobEvent(NamedTuple):
    """One event of a job, as returned by :meth:`JobState.events`.

    Attributes:
        seq: position in the job's log (the JobState ``version`` after it).
        ts: integer nanoseconds since the epoch.
        kind: the event kind (see :mod:`routilux.events`).
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


def _epoch_us(value: _dt.datetime) -> int:
    # replace(microsecond=0).timestamp() is an exact integer, so no float rounding at
    # microsecond level; naive values are local time, like the timestamps we hand out.
    return int(value.replace(microsecond=0).timestamp()) * 1_000_000 + value.microsecond


def _last_ns_at(value: _dt.datetime | int) -> int:
    """The largest event ts whose user-visible timestamp is <= ``value``."""
    if isinstance(value, _dt.datetime):
        return _epoch_us(value) * 1000 + 999
    if type(value) is int:
        return value
    msg = f"timestamp must be a datetime (naive local or aware) or int nanoseconds, got {type(value).__name__}"
    raise TypeError(msg)


def _first_ns_at(value: _dt.datetime | int) -> int:
    """The smallest event ts whose user-visible timestamp is >= ``value``."""
    if isinstance(value, _dt.datetime):
        return _epoch_us(value) * 1000
    return _last_ns_at(value)


@contextlib.contextmanager
def _gc_paused(count: int) -> Iterator[None]:
    """Pause the cyclic garbage collector while folding ``count`` events."""
    if count < _GC_PAUSE_THRESHOLD or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if not gc.get_freeze_count():
            # Every object built while paused is young: re-enabled as is, the collector
            # would traverse them all at its next (generation 0) pass, right away --
            # ~15% of a 100k-record load. freeze() + unfreeze() moves every tracked
            # object straight to the oldest generation in O(1) (a list splice), so they
            # are looked at only by the next full collection, like any long-lived data.
            # Skipped when the application has frozen objects itself (pre-fork servers):
            # unfreeze() would release theirs too.
            gc.freeze()
            gc.unfreeze()
        gc.enable()


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

    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY

    def __init__(self, flow_id: str = "") -> None:
        _check_str("flow_id", flow_id)
        self._setup(InMemoryEventLog(), JobProjection(), readonly=False)
        self._create(flow_id, None)

    # -- construction helpers ---------------------------------------------------------
    def _setup(self, log: EventLog | None, projection: JobProjection, *, readonly: bool,
               records: list[Any] | None = None) -> None:
        sa = object.__setattr__
        # The in-memory hot path appends pre-encoded bytes under the log's own lock
        # (InMemoryEventLog._append_event_locked); without that method, the durable-style
        # path below (append_encoded or append) serves in-memory logs too.
        fast = log if type(log) is InMemoryEventLog and hasattr(log, "_append_event_locked") else None
        # An in-memory log's own (reentrant) lock is the job's lock: one acquisition
        # covers append + apply on the hot path, and the log's order is the one order.
        lock = fast._lock if fast is not None else threading.RLock()
        sa(self, "_lock", lock)
        counters = _Counters()
        counters.status = projection.status
        counters.snapshot_at = projection.version  # the policy counts from here (open() refines it)
        sa(self, "_c", counters)
        sa(self, "_condition", _CountingCondition(lock, counters))
        sa(self, "_log_obj", log)
        sa(self, "_fast_log", fast)
        sa(self, "_records", records)  # from_events without a log: the log is built on demand
        sa(self, "_p", projection)
        sa(self, "_readonly", readonly)
        sa(self, "_tx", None)
        # Hot-path execution records not yet in _p.execution_history (see record_execution):
        # seqs (in-memory log), or flat ts, event_bytes pairs (other logs).
        sa(self, "_pending", [])
        sa(self, "_durable", log is not None and fast is None)
        # A trusted append of pre-encoded event bytes (eventlog's append_encoded, where the
        # backend has it): record_execution validates flat data itself and skips the
        # log's general encode-and-check, the largest cost of a durable call.
        sa(self, "_append_encoded", getattr(log, "append_encoded", None) if fast is None and not readonly
           else None)
        # The same for a transaction's batch (eventlog's append_batch_encoded): the events
        # were encoded (and checked) when the mutators were called inside it.
        sa(self, "_append_batch_encoded", getattr(log, "append_batch_encoded", None) if not readonly else None)
        sa(self, "_snapshot_writer", None)
        sa(self, "output_handler", None)
        if log is not None and not readonly:
            # Hot-path records join execution_history lazily; the list asks for them
            # before every read, so a reference kept by user code stays live. A weak
            # reference: the list must not keep its JobState alive.
            owner = weakref.ref(self)

            def sync() -> None:
                js = owner()
                if js is not None and js._pending:
                    with js._lock:
                        if js._pending:
                            js._flush_pending()

            projection.execution_history.sync = sync

    @classmethod
    def _view(cls, log: EventLog | None, projection: JobProjection, *, readonly: bool,
              records: list[Any] | None = None) -> JobState:
        obj = cls.__new__(cls)
        obj._setup(log, projection, readonly=readonly, records=records)
        return obj

    def _create(self, flow_id: str, job_id: str | None) -> None:
        job_id = str(uuid.uuid4()) if job_id is None else job_id
        self._emit(ev.JOB_CREATED, {"job_id": job_id, "flow_id": flow_id, "schema": ev.SCHEMA_VERSION})

    # -- attributes -----------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _ASSIGNABLE or name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        hint = _READ_ONLY_HINTS.get(name)
        if hint is not None:
            msg = f"JobState.{name} cannot be assigned (every change is recorded as an event); use {hint}"
        else:
            msg = (f"JobState.{name} cannot be assigned; only status, current_routine_id, pending_tasks, "
                   "deferred_events and output_handler are assignable")
        raise AttributeError(msg)

    @property
    def flow_id(self) -> str:
        """The flow identifier."""
        return self._p.flow_id

    @property
    def job_id(self) -> str:
        """The job identifier (a uuid4 string unless restored by ``deserialize``)."""
        return self._p.job_id

    @property
    def status(self) -> str:
        """The job status; assigning records a ``status_set`` event.

        Raises:
            ValueError: (on assignment) not one of the six statuses.
        """
        return self._p.status

    @status.setter
    def status(self, value: str) -> None:
        if value not in _STATUSES or type(value) is not str:
            msg = f"invalid job status {value!r}; allowed: {', '.join(ev.JOB_STATUSES)}"
            raise ValueError(msg)
        self._emit(ev.STATUS_SET, {"status": value})

    @property
    def current_routine_id(self) -> str | None:
        """The routine being executed (str or None); assigning records an event."""
        return self._p.current_routine_id

    @current_routine_id.setter
    def current_routine_id(self, value: str | None) -> None:
        if value is not None:
            _check_str("current_routine_id", value)
        self._emit(ev.CURRENT_ROUTINE_SET, {"routine_id": value})

    @property
    def routine_states(self) -> FrozenDict:
        """routine id -> state dict (read-only)."""
        return self._p.routine_states

    @property
    def shared_data(self) -> FrozenDict:
        """Data shared by the routines of this job (read-only; see :meth:`update_shared_data`)."""
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
        self._emit(kind, {field: list(value)})

    @property
    def open_tasks(self) -> FrozenDict:
        """task id -> ``{"task": dict, "state": "queued" | "started"}`` of unfinished tasks."""
        return self._p.open_tasks

    @property
    def execution_history(self) -> FrozenList:
        """Every :class:`ExecutionRecord`, in log order (read-only).

        The list is the job's own and stays live: it shows every record made since,
        as the original's attribute did.
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
        """The shared log (read-only list of dicts)."""
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
        return self._p.created_at  # type: ignore[return-value]

    @property
    def updated_at(self) -> _dt.datetime:
        """When the job last changed (the last event's ts, unless restored by deserialize)."""
        return self._p.updated_at  # type: ignore[return-value]

    @property
    def version(self) -> int:
        """The seq of the last applied event (1 right after construction)."""
        return self._p.version

    @property
    def readonly(self) -> bool:
        """True for a view (``at()``, ``from_events()``, ``open(readonly=True)``...)."""
        return self._readonly

    @property
    def log(self) -> EventLog:
        """The underlying event log (read it, never append to it directly)."""
        log = self._log_obj
        if log is None:
            with self._lock:
                log = self._log_obj
                if log is None:
                    log = _log_from_records(self._records or [])
                    object.__setattr__(self, "_log_obj", log)
                    object.__setattr__(self, "_records", None)
        return log

    @property
    def head_hash(self) -> str:
        """The hash-chain head of the job's log at :attr:`version` (32 hex digits)."""
        log = self.log
        version = self._p.version
        if version == log.head_seq:
            return log.head_hash.hex()
        return log.link_at(version).hex()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._log_obj is not None and self._log_obj.closed

    def __repr__(self) -> str:
        return f"JobState[{self._p.job_id}:{self._p.status}]"

    # -- the write path ---------------------------------------------------------------
    def _refuse_readonly(self) -> None:
        msg = (f"this JobState is read-only (a view of job {self._p.job_id!r} at version {self._p.version}); "
               "mutate the live JobState instead")
        raise ReadOnlyJobStateError(msg)

    def _emit(self, kind: str, data: dict[str, Any]) -> Record | None:
        """Append one event and apply it; inside :meth:`_transaction`, buffer it instead."""
        if self._readonly:
            self._refuse_readonly()
        with self._lock:
            tx = self._tx
            try:
                if tx is not None:
                    # Encode now so a bad value raises at the call, not at commit; the
                    # bytes are kept so the commit does not encode the event again.
                    event_bytes, decoded = encode_event(kind, data)
                    tx.append((kind, event_bytes, decoded))
                    return None
                # expected_seq: a log shared with other writers (PostgreSQL) refuses the
                # event with ConcurrencyError, nothing written, if someone else appended.
                rec = self._log_obj.append(kind, data, expected_seq=self._p.version)  # type: ignore[union-attr]
            except EventEncodingError as err:
                raise _by_argument(err) from None
            if self._pending and kind in _HISTORY_ORDER_KINDS:
                self._flush_pending()
            apply(self._p, rec)
            self._changed(1)
            return rec

    def _changed(self, count: int) -> None:
        # Called with the lock held, after events were applied.
        c = self._c
        p = self._p
        if c.waiters:
            self._condition.notify_all()
        if p.version - c.snapshot_at >= self.snapshot_every:
            self._take_snapshot()
        status = p.status
        if status != c.status:
            c.status = status
            if c.quiet_waiters and not c.waiters:
                self._condition.notify_all()
            if self._durable and status in _SYNC_STATUSES:
                # DESIGN.md: a durable log is flushed when the job reaches a terminal status.
                self._log_obj.sync()  # type: ignore[union-attr]

    def _take_snapshot(self) -> None:
        version = self._p.version
        self._c.snapshot_at = version
        state = snapshot_state(self._p)
        if self._fast_log is not None:
            try:
                self._fast_log._store_snapshot(state, schema_version=ev.SCHEMA_VERSION, seq=version)
            except (EventLogError, ValueError):
                _log.exception("could not store a snapshot of job %s at version %s", self._p.job_id, version)
            return
        # A durable snapshot is a file write + fsync + rename (milliseconds): done by a
        # background writer so the mutating thread does not wait for it. The state is
        # copied now, under the lock, because the projection keeps changing: where the
        # log takes encoded bytes, the copy is the encoding (as in memory above; cheaper
        # than a thaw now plus an encode later, both taking the GIL from the appenders).
        writer = self._snapshot_writer
        if writer is None:
            writer = _SnapshotWriter(self._log_obj, self._p.job_id)  # type: ignore[arg-type]
            object.__setattr__(self, "_snapshot_writer", writer)
        if _stores_encoded_snapshots(self._log_obj):
            # The state is storable by construction: every value in it came from an event
            # that passed the codec's checks at append, or is a str/int the projection
            # set. So it is packed in C without the checks' scan and decode round trip
            # (most of a snapshot's cost on the appending thread); only a failure, or the
            # size limit, goes through codec.encode, which names the problem.
            try:
                body = _pack_unchecked(state)
            except Exception:  # noqa: BLE001 - codec.encode below reports it properly
                body = None
            if body is None or len(body) > _SNAPSHOT_MAX_BYTES:
                try:
                    body = codec.encode(state, path="state", max_depth=_SNAPSHOT_MAX_DEPTH,
                                        max_bytes=_SNAPSHOT_MAX_BYTES)
                except (EventLogError, ValueError):
                    _log.exception("could not store a snapshot of job %s at version %s", self._p.job_id, version)
                    return
            writer.submit(version, body)
        else:
            writer.submit(version, thaw(state))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """Buffer the mutators called inside and append them as ONE atomic batch at exit.

        The lock is held throughout, so other threads wait; reads inside see the state
        before the transaction. An exception discards the buffered events. Nested
        transactions join the outer one.
        """
        if self._readonly:
            self._refuse_readonly()
        with self._lock:
            if self._tx is not None:
                yield
                return
            object.__setattr__(self, "_tx", [])
            try:
                yield
                pending = self._tx
            finally:
                object.__setattr__(self, "_tx", None)
            if pending:
                append_encoded = self._append_batch_encoded
                if append_encoded is not None:
                    records = append_encoded(pending, expected_seq=self._p.version)
                else:
                    records = self._log_obj.append_batch(  # type: ignore[union-attr]
                        [(kind, data) for kind, _, data in pending], expected_seq=self._p.version)
                if self._pending:
                    self._flush_pending()
                for rec in records:
                    apply(self._p, rec)
                self._changed(len(records))

    def _flush_pending(self) -> None:
        """Build the ExecutionRecords of hot-path events from their bytes (lock held).

        Decoding the bytes that were written gives exactly what a replay builds.
        """
        pending = self._pending
        history = self._p.execution_history
        fast = self._fast_log
        if fast is not None:
            read = fast._record
            for seq in pending:
                _, ts, _, data = read(seq)
                _list_append(history, _event_record(data["routine_id"], data["event_name"], data["data"], ts))
        else:
            for ts, event_bytes in zip(pending[::2], pending[1::2], strict=True):
                data = decode_event(event_bytes)[1]
                _list_append(history, _event_record(data["routine_id"], data["event_name"], data["data"], ts))
        pending.clear()

    def _change_mark(self) -> tuple[int, int]:
        """A value that differs after any applied event or _notify_waiters() call."""
        return (self._p.version, self._c.notified)

    def _notify_waiters(self) -> None:
        """Wake :meth:`wait_for_completion` / :meth:`wait_until_condition` waiters."""
        with self._lock:
            self._c.notified += 1
            self._condition.notify_all()

    # -- original API: mutators -------------------------------------------------------
    def update_routine_state(self, routine_id: str, state: dict[str, Any]) -> None:
        """Set the state of a routine, replacing the previous one (a copy is stored).

        Raises:
            TypeError: ``routine_id`` is not a str, ``state`` not a dict, or a value
                cannot be stored (``EventEncodingError`` naming its path).
        """
        _check_str("routine_id", routine_id)
        self._emit(ev.ROUTINE_STATE_SET, {"routine_id": routine_id, "state": _check_dict("state", state)})

    def get_routine_state(self, routine_id: str) -> FrozenDict | None:
        """Return the state of a routine (read-only dict), or None."""
        return self._p.routine_states.get(routine_id)

    def record_execution(self, routine_id: str, event_name: str, data: dict[str, Any] | None) -> None:
        """Append an :class:`ExecutionRecord` (timestamped by its event) to the history.

        Raises:
            TypeError: ``routine_id``/``event_name`` not str, ``data`` not a dict, or a
                value cannot be stored.
        """
        if type(routine_id) is not str or type(event_name) is not str:
            _check_str("routine_id", routine_id)
            _check_str("event_name", event_name)
        if type(data) is not dict:
            data = {} if data is None else _check_dict("data", data)
        if self._readonly:
            self._refuse_readonly()
        fast = self._fast_log
        encoded_append = self._append_encoded
        if fast is not None or encoded_append is not None:
            # The hot path (benchmarks/bench_job_state.py): flat data -- str keys and
            # scalar values -- is packed once without the codec's general checks (they
            # are what this loop proves) and without decoding a copy back. Anything
            # else (a container, a non-str key, NaN/inf, an int out of range) takes the
            # general path below, which names the offending value.
            for key, value in data.items():
                kind = type(value)
                if type(key) is not str or (kind not in _SCALARS and not (kind is float and value - value == 0.0)):
                    break
            else:
                event = {"routine_id": routine_id, "event_name": event_name, "data": data}
                try:
                    event_bytes = _EXEC_PREFIX + _pack_unchecked(event)
                except Exception:  # e.g. an int out of range: the general path names it
                    event_bytes = None
                if event_bytes is not None and len(event_bytes) <= _MAX_RECORD_BYTES:
                    # Both branches inline _recorded() (a method call is ~5% of a call here).
                    with self._lock:
                        tx = self._tx
                        if tx is not None:
                            # Inside a transaction: buffer the bytes just packed with the
                            # value a read of them returns (flat data: a shallow copy).
                            _list_append(tx, (_EXEC, event_bytes, {"routine_id": routine_id,
                                                                   "event_name": event_name,
                                                                   "data": data.copy()}))
                            return
                        p = self._p
                        if fast is not None:
                            # Only the seq is noted: the ExecutionRecord is built from
                            # the log's bytes when the history is next read
                            # (_flush_pending), so it equals what a replay builds.
                            seq, ts = fast._append_event_locked(event_bytes)
                            _list_append(self._pending, seq)
                        else:
                            # expected_seq: a shared log (PostgreSQL) refuses the event,
                            # nothing written, if another writer got there first.
                            seq, ts, _, _ = encoded_append(_EXEC, event_bytes, event, expected_seq=p.version)
                            # Only the bytes are kept (immutable, invisible to the cyclic
                            # gc, and a copy of the data as it was at this call); the
                            # record is decoded from them when the history is next read.
                            pending = self._pending
                            _list_append(pending, ts)
                            _list_append(pending, event_bytes)
                        if seq != p.version + 1:  # someone appended to the log directly
                            msg = f"job log advanced outside the JobState (seq {seq}, version {p.version})"
                            raise ReplayError(msg, seq)
                        p.version = seq
                        p.last_ts = p.updated = ts
                        counts = p.kind_counts
                        counts[_EXEC] = counts.get(_EXEC, 0) + 1
                        c = self._c
                        if c.waiters:
                            self._condition.notify_all()
                        if seq - c.snapshot_at >= self.snapshot_every:
                            self._take_snapshot()
                        return
        event = {"routine_id": routine_id, "event_name": event_name, "data": data}
        with self._lock:
            try:
                if self._tx is not None:
                    self._tx.append((ev.EXECUTION_RECORDED, *encode_event(ev.EXECUTION_RECORDED, event)))
                    return
                if self._pending:
                    self._flush_pending()
                p = self._p
                seq, ts, _, recorded = self._log_obj.append(  # type: ignore[union-attr]
                    ev.EXECUTION_RECORDED, event, expected_seq=p.version)
            except EventEncodingError as err:
                raise _by_argument(err) from None
            # apply() for this one kind, without its dispatch.
            self._recorded(p, seq, ts)
            _list_append(p.execution_history, _event_record(routine_id, event_name, recorded["data"], ts))

    def _recorded(self, p: JobProjection, seq: int, ts: int) -> None:
        """apply()'s and _changed()'s bookkeeping for an execution record at ``seq`` (lock held)."""
        if seq != p.version + 1:  # someone appended to the log directly
            msg = f"job log advanced outside the JobState (seq {seq}, version {p.version})"
            raise ReplayError(msg, seq)
        p.version = seq
        p.last_ts = p.updated = ts
        counts = p.kind_counts
        counts[_EXEC] = counts.get(_EXEC, 0) + 1
        c = self._c
        if c.waiters:
            self._condition.notify_all()
        if seq - c.snapshot_at >= self.snapshot_every:
            self._take_snapshot()

    def get_execution_history(self, routine_id: str | None = None) -> list[ExecutionRecord]:
        """Return a new list of records (optionally of one routine), sorted by timestamp."""
        history = self.execution_history
        if routine_id is not None:
            history = [r for r in history if r.routine_id == routine_id]  # type: ignore[assignment]
        return sorted(history, key=_record_time)

    def add_deferred_event(self, routine_id: str, event_name: str, data: dict[str, Any]) -> None:
        """Add an event to emit on resume (with an iso ``timestamp`` from its event)."""
        _check_str("routine_id", routine_id)
        _check_str("event_name", event_name)
        data = {} if data is None else _check_dict("data", data)
        self._emit(ev.DEFERRED_EVENT_ADDED, {"routine_id": routine_id, "event_name": event_name, "data": data})

    def update_shared_data(self, key: str, value: Any) -> None:
        """Set ``shared_data[key] = value`` (thread-safe: one event under the job's lock).

        Raises:
            TypeError: ``key`` is not a str or ``value`` cannot be stored.
        """
        _check_str("key", key)
        self._emit(ev.SHARED_DATA_SET, {"key": key, "value": value})

    def get_shared_data(self, key: str, default: Any = None) -> Any:
        """Return ``shared_data[key]``, or ``default``."""
        return self._p.shared_data.get(key, default)

    def append_to_shared_log(self, entry: dict[str, Any]) -> None:
        """Append a copy of ``entry`` (plus an iso ``timestamp`` if it has none).

        Raises:
            ValueError: ``entry`` is not a dict.
        """
        if not isinstance(entry, dict):
            msg = f"shared log entry must be a dict, got {type(entry).__name__}"
            raise ValueError(msg)
        self._emit(ev.SHARED_LOG_APPENDED, {"entry": dict(entry)})

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
        rec = self._emit(ev.OUTPUT_SENT, {"routine_id": routine_id, "output_type": output_type, "data": data})
        handler = self.output_handler
        if handler is not None:
            stamp = ts_to_datetime(rec.ts) if rec is not None else _dt.datetime.now()
            try:
                handler.handle(job_id=self._p.job_id, routine_id=routine_id, output_type=output_type,
                               data=data, timestamp=stamp)
            except Exception as exc:  # the original turns handler failures into warnings
                warnings.warn(f"Output handler failed: {exc}", stacklevel=2)

    # -- engine hooks -----------------------------------------------------------------
    def _set_paused(self, reason: str = "", checkpoint: dict[str, Any] | None = None) -> None:
        """Set status ``paused`` and add a pause point (used by Flow.pause)."""
        self._emit(ev.PAUSED, {"reason": reason, "checkpoint": checkpoint or {}})

    def _set_running(self) -> None:
        """Set status ``running`` if it is ``paused`` (used by Flow.resume)."""
        self._emit(ev.RESUMED, {})

    def _set_cancelled(self, reason: str = "") -> None:
        """Set status ``cancelled`` (and ``routine_states['_cancellation']`` for a reason)."""
        self._emit(ev.CANCELLED, {"reason": reason})

    def _add_pause_point(self, point: dict[str, Any]) -> None:
        """Append the engine's own pause-point dict to ``pause_points``."""
        self._emit(ev.PAUSE_POINT_ADDED, {"point": _check_dict("point", point)})

    def _task_queued(self, task_id: str, task: dict[str, Any]) -> None:
        """Record that a task was queued (it stays in ``open_tasks`` until finished/failed)."""
        _check_str("task_id", task_id)
        self._emit(ev.TASK_QUEUED, {"task_id": task_id, "task": _check_dict("task", task)})

    def _task_started(self, task_id: str) -> None:
        """Record that a queued task started (unknown ids change nothing)."""
        _check_str("task_id", task_id)
        self._emit(ev.TASK_STARTED, {"task_id": task_id})

    def _task_finished(self, task_id: str) -> None:
        """Record that a task finished (removed from ``open_tasks``)."""
        _check_str("task_id", task_id)
        self._emit(ev.TASK_FINISHED, {"task_id": task_id})

    def _task_failed(self, task_id: str, error: dict[str, Any]) -> None:
        """Record that a task failed with ``error`` (removed from ``open_tasks``)."""
        _check_str("task_id", task_id)
        self._emit(ev.TASK_FAILED, {"task_id": task_id, "error": _check_dict("error", error)})

    # -- serialize / deserialize ------------------------------------------------------
    @property
    def fields_to_serialize(self) -> list[str]:
        """The serialized fields, in the original's order."""
        return list(_JOB_FIELDS)

    def serialize(self) -> dict[str, Any]:
        """Return the original dict shape: ``_type``, the fields, ISO timestamps, plain copies."""
        with self._lock:
            self._ensure_history()  # under the lock: no hot-path record can slip in between
            p = self._p
            return {
                "_type": "JobState",
                "flow_id": p.flow_id,
                "job_id": p.job_id,
                "status": p.status,
                "current_routine_id": p.current_routine_id,
                "routine_states": thaw(p.routine_states),
                "execution_history": [r.serialize() for r in p.execution_history],
                "created_at": _iso(p.created_at),
                "updated_at": _iso(p.updated_at),
                "pause_points": thaw(p.pause_points),
                "pending_tasks": thaw(p.pending_tasks),
                "deferred_events": thaw(p.deferred_events),
                "shared_data": thaw(p.shared_data),
                "shared_log": thaw(p.shared_log),
                "output_log": thaw(p.output_log),
            }

    def deserialize(self, data: dict[str, Any]) -> None:
        """Replace this job's fields with those of a :meth:`serialize` dict (one event).

        Missing fields keep their current values.

        Raises:
            ValueError: ``data`` is not a JobState dict (wrong ``_type``, unknown field,
                invalid status, malformed history or timestamps).
            TypeError: a value cannot be stored.
        """
        if self._readonly:
            self._refuse_readonly()
        state = _normalize_state(data)
        with self._lock:
            self._ensure_history()
            p = self._p
            current = {
                "execution_history": [_record_dict(r) for r in p.execution_history],
                "shared_log": thaw(p.shared_log),
                "output_log": thaw(p.output_log),
                "pause_points": thaw(p.pause_points),
            }
            for name, value in current.items():
                state.setdefault(name, value)
            self._emit(ev.DESERIALIZED, {"state": state})

    # -- new API: time travel -----------------------------------------------------------
    def _ensure_history(self) -> None:
        if self._pending:
            with self._lock:
                if self._pending:
                    self._flush_pending()
        p = self._p
        if p.history_from:
            with self._lock:
                if p.history_from:
                    log = self.log
                    with _gc_paused(p.history_from):
                        complete_history(p, log.read(1, p.history_from))

    def events(self, kind: str | Iterable[str] | None = None, routine_id: str | None = None,
               start: int | None = None, stop: int | None = None, since: _dt.datetime | int | None = None,
               until: _dt.datetime | int | None = None) -> list[JobEvent]:
        """Return this job's events up to :attr:`version`, filtered.

        Args:
            kind: one kind or several.
            routine_id: only events whose payload has this ``routine_id``.
            start, stop: seq range (inclusive).
            since, until: timestamp range (inclusive, at the microsecond users see; a
                datetime, naive local or aware, or int nanoseconds).
        """
        log = self.log
        head = self._p.version
        lo = 1 if start is None else max(1, start)
        hi = head if stop is None else min(stop, head)
        if since is not None:
            lo = max(lo, log.seq_at_time(_first_ns_at(since) - 1) + 1)
        if until is not None:
            hi = min(hi, log.seq_at_time(_last_ns_at(until)))
        kinds = None if kind is None else ({kind} if isinstance(kind, str) else set(kind))
        out = []
        for rec in log.read(lo, hi) if lo <= hi else ():
            if kinds is not None and rec.kind not in kinds:
                continue
            if routine_id is not None and rec.data.get("routine_id") != routine_id:
                continue
            out.append(JobEvent(rec.seq, rec.ts, rec.kind, rec.data))
        return out

    def _version_for(self, version: int | None, timestamp: _dt.datetime | int | None, head: int) -> int:
        return _resolve_version(self.log, version, timestamp, head, f"job {self._p.job_id!r}")

    def at(self, version: int | None = None, timestamp: _dt.datetime | int | None = None) -> JobState:
        """Return a read-only JobState as it was at ``version`` and/or ``timestamp``.

        ``timestamp`` includes every event whose user-visible timestamp is <= it. Built
        from the newest snapshot at or before the point plus the events after it; the
        history lists are read from the log on first access.

        Raises:
            ValueError: the version is out of range, or nothing happened by ``timestamp``.
        """
        with self._lock:
            head = self._p.version
        version = self._version_for(version, timestamp, head)
        projection = _rebuild(self.log, version)
        return JobState._view(self.log, projection, readonly=True)

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
            projection = _rebuild(events, events.head_seq)
            return cls._view(events, projection, readonly=True)
        records = events if isinstance(events, list) else list(events)
        projection = JobProjection()
        with _gc_paused(len(records)):
            fold(records, projection)
        if projection.version == 0:
            msg = "from_events needs at least the job_created event"
            raise ReplayError(msg)
        return cls._view(None, projection, readonly=True, records=records)

    # -- durable jobs ----------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str], flow_id: str = "", durability: str = "batch",
             key: bytes | None = None, readonly: bool = False, *, job_id: str | None = None) -> JobState:
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

        Raises:
            ValueError: ``flow_id`` differs from the job's, the log is not a job log, or
                a PostgreSQL location has no ``#<job id>``.
            FileNotFoundError: ``readonly=True`` and there is no job at ``path``.
            eventlog.LogLockedError: another writer holds the (directory) log.
            eventlog.ConcurrencyError: (later, on a mutation) another writer appended to
                the same PostgreSQL job; nothing was written, reopen to continue.
        """
        if is_pg_location(path):
            log, where = _open_pg(str(path), key=key, readonly=readonly)
            if job_id is None:
                job_id = log.job_id
        else:
            open_log = _file_api("open_log")
            where = os.fspath(path)
            if readonly and not os.path.exists(where):
                msg = f"no job log at {where!r}"
                raise FileNotFoundError(msg)
            # snapshot_gap: the log's retention keeps old snapshots at most this far
            # apart, so at(version=k) for any k replays at most ~SNAPSHOT_GAP events.
            log = open_log(where, readonly=readonly, durability=durability, key=key, snapshot_gap=SNAPSHOT_GAP)
        try:
            if log.head_seq == 0:
                if readonly:
                    msg = f"the log at {where!r} is empty (no job was created there)"
                    raise ValueError(msg)
                state = cls._view(log, JobProjection(), readonly=False)
                _check_str("flow_id", flow_id)
                state._create(flow_id, job_id)
                return state
            head = log.head_seq
            projection = _rebuild(log, head, where=where)
            if flow_id and flow_id != projection.flow_id:
                msg = f"job log {where!r} belongs to flow {projection.flow_id!r}, not {flow_id!r}"
                raise ValueError(msg)
            state = cls._view(log, projection, readonly=readonly)
            # Count events since the newest snapshot so the policy continues from there.
            snap = log.latest_snapshot(schema_version=ev.SCHEMA_VERSION)
            state._c.snapshot_at = snap.seq if snap else 0
            return state
        except BaseException:
            log.close()
            raise

    def sync(self) -> int:
        """Make every recorded event (and any snapshot being written) durable; return the durable version."""
        writer = self._snapshot_writer
        if writer is not None:
            writer.drain()
        return self.log.sync()

    def close(self) -> None:
        """Sync and close the job's log (idempotent). Views keep reading until then."""
        log = self._log_obj
        if log is not None and not log.closed:
            with self._lock:
                writer = self._snapshot_writer
                if writer is not None:
                    writer.drain()  # finish a pending snapshot before the log goes away
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
        write_bundle = _file_api("write_bundle")
        filepath = os.fspath(filepath)
        parent = os.path.dirname(os.path.abspath(filepath))
        os.makedirs(parent, exist_ok=True)
        with self._lock:
            write_bundle(filepath, self.log, state=snapshot_state(self._p) if self._p.version == self.log.head_seq
                         else None, schema_version=ev.SCHEMA_VERSION)

    @classmethod
    def load(cls, filepath: str | os.PathLike[str], version: int | None = None,
             timestamp: _dt.datetime | int | None = None, *, key: bytes | None = None) -> JobState:
        """Load a job saved with :meth:`save` (its latest state, or an earlier point).

        At the latest version the result is an in-memory job that can keep going and be
        saved again; an earlier point gives a read-only JobState.

        Raises:
            FileNotFoundError: no file at ``filepath``.
            ValueError: the file is not a job file, or is damaged (the message says what).
        """
        filepath = os.fspath(filepath)
        if not os.path.exists(filepath):
            msg = f"no job file at {filepath!r}"
            raise FileNotFoundError(msg)
        # A load builds one object per event (records, their data): with the cyclic
        # collector running, its passes over the growing heap cost about a third of
        # the load (benchmarks/bench_job_state.py). Nothing here creates cycles.
        with _gc_paused(_GC_PAUSE_THRESHOLD):
            return cls._load(filepath, version, timestamp, key)

    @classmethod
    def _load(cls, filepath: str, version: int | None, timestamp: _dt.datetime | int | None,
              key: bytes | None) -> JobState:
        read_bundle = _file_api("read_bundle")
        try:
            # read_bundle stores the bundle's snapshot in the log it returns, where
            # _rebuild (latest snapshot <= version, then the tail) finds it.
            log, _snap = read_bundle(filepath, key=key)
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
            version = _resolve_version(log, version, timestamp, head, repr(filepath))
            projection = _rebuild(log, version, where=filepath)
        except ReplayError as exc:
            msg = f"{filepath!r} is damaged or not a routilux job file: {exc}"
            raise ValueError(msg) from exc
        state = cls._view(log, projection, readonly=version != head)
        try:
            # Build the history now: the log still holds the values decoded while the
            # bundle was checked, so this is the cheapest moment (no second decode).
            state._ensure_history()
        except ReplayError as exc:
            msg = f"{filepath!r} is damaged or not a routilux job file: {exc}"
            raise ValueError(msg) from exc
        return state

    # -- waiting ---------------------------------------------------------------------
    def _wait_change(self, seen: tuple[int, int], timeout: float | None, *, every_event: bool = True) -> None:
        with self._condition:
            if self._change_mark() != seen:
                return
            if every_event:
                self._condition.wait(timeout)
                return
            c = self._c
            c.quiet_waiters += 1  # the lock is held here
            try:
                # The plain Condition.wait: this waiter is counted as quiet, not as "every event".
                threading.Condition.wait(self._condition, timeout)
            finally:
                c.quiet_waiters -= 1

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
        deadline = None if timeout is None else time.monotonic() + timeout
        activity = getattr(flow, "_job_activity", None)
        last_progress = time.monotonic()
        while True:
            seen = job_state._change_mark()
            status = job_state._p.status
            if status in ("paused", "cancelled", "failed"):
                return True
            queue_size, active = activity(job_state) if activity is not None else (len(job_state._p.open_tasks), 0)
            if status in ("running", "completed") and queue_size == 0 and active == 0:
                with job_state._lock:
                    if job_state._p.status != "running":
                        if job_state._p.status != status and job_state._change_mark() != seen:
                            continue  # changed under us: look again
                        return True
                    if job_state._change_mark() != seen:
                        continue
                    failed = any(isinstance(s, dict) and s.get("status") in ("failed", "error")
                                 for s in job_state._p.routine_states.values())
                    job_state.status = "failed" if failed else "completed"
                return True
            now = time.monotonic()
            if progress_callback is not None and now - last_progress >= 5.0:
                last_progress = now
                progress_callback(queue_size, active, status)
            if deadline is not None and now >= deadline:
                return False
            wait = max(check_interval, 0.001)
            if deadline is not None:
                wait = min(wait, deadline - now)
            # With the flow's activity hook, only a status change or the engine's
            # _notify_waiters() can make the job complete: no need to wake on every event.
            job_state._wait_change(seen, wait, every_event=activity is None)

    @staticmethod
    def wait_until_condition(flow: Any, job_state: JobState, condition: Callable[[Any, JobState], bool],
                             timeout: float | None = None, check_interval: float = 0.1,
                             progress_callback: Callable[[int, int, str], None] | None = None) -> bool:
        """Wait until ``condition(flow, job_state)`` is true; False if ``timeout`` passes first.

        Re-checks on every state change of the job, and at least every ``check_interval``
        seconds (the condition may look at the flow too).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        activity = getattr(flow, "_job_activity", None)
        last_progress = time.monotonic()
        while True:
            seen = job_state._change_mark()
            if condition(flow, job_state):
                return True
            now = time.monotonic()
            if progress_callback is not None and now - last_progress >= 5.0:
                last_progress = now
                queue_size, active = (activity(job_state) if activity is not None
                                      else (len(job_state._p.open_tasks), 0))
                progress_callback(queue_size, active, job_state._p.status)
            if deadline is not None and now >= deadline:
                return False
            wait = max(check_interval, 0.001)
            if deadline is not None:
                wait = min(wait, deadline - now)
            job_state._wait_change(seen, wait)


# -- helpers ------------------------------------------------------------------------------
def _record_time(record: ExecutionRecord) -> _dt.datetime:
    return record.timestamp


def _iso(value: _dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _record_dict(record: ExecutionRecord) -> dict[str, Any]:
    return {"routine_id": record.routine_id, "event_name": record.event_name, "data": thaw(record.data),
            "timestamp": record.timestamp.isoformat()}


def _stores_encoded_snapshots(log: Any) -> bool:
    """True if ``log`` stores snapshot bytes encoded by its owner (``_store_snapshot_body``).

    Not when ``save_snapshot`` was replaced on the instance (a wrapper, a test's slow
    writer): every snapshot then goes through that replacement, as before.
    """
    return hasattr(type(log), "_store_snapshot_body") and "save_snapshot" not in getattr(log, "__dict__", {})


def _file_api(name: str) -> Any:
    func = getattr(eventlog, name, None)
    if func is None:  # pragma: no cover - only while the file backend is being written
        msg = f"eventlog.{name} is not available: the file backend is not installed"
        raise NotImplementedError(msg)
    return func


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


def _log_from_records(records: list[Any]) -> InMemoryEventLog:
    log = InMemoryEventLog()
    for rec in records:
        log.append(rec.kind, rec.data, ts=rec.ts)
    return log


def _rebuild(log: EventLog, version: int, *, where: str | None = None) -> JobProjection:
    """The projection at ``version``: newest usable snapshot <= version, then the tail."""
    snap = None
    try:
        snap = log.latest_snapshot(max_seq=version, schema_version=ev.SCHEMA_VERSION)
    except EventLogError:
        snap = None  # a broken snapshot store only costs a longer replay
    projection = None
    if snap is not None and snap.seq > 0:
        try:
            projection = from_snapshot(snap.state, snap.seq)
        except ReplayError:
            _log.warning("ignoring unusable snapshot %s of %s", snap.name, where or log.location)
            projection = None
    start = 1 if projection is None else projection.version + 1
    if projection is None:
        projection = JobProjection()
    with _gc_paused(version - start + 1):
        fold(log.read(start, version), projection)
    if projection.version != version:
        msg = f"the log {where or log.location!r} ends at seq {projection.version}, expected {version}"
        raise ReplayError(msg)
    return projection


def rebuild_projection(log: EventLog, version: int | None = None) -> JobProjection:
    """The :class:`~routilux.projection.JobProjection` of a job log at ``version`` (default: its head).

    Built like :meth:`JobState.at`: the newest usable snapshot at or before ``version``
    plus the events after it (never a replay from the start when snapshots exist). Its
    ``kind_counts`` give the number of events of each kind in ``1..version``; its
    history lists hold only the events after the snapshot (see
    :func:`~routilux.projection.complete_history`).

    Raises:
        ValueError: ``version`` is not between 1 and the log's head.
        ReplayError: the log is not a readable job log.
    """
    head = log.head_seq
    version = _resolve_version(log, version, None, head, repr(log.location))
    return _rebuild(log, version)


def _resolve_version(log: EventLog, version: int | None, timestamp: _dt.datetime | int | None, head: int,
                     what: str) -> int:
    """The version a caller asked for (``version`` and/or ``timestamp``), checked against ``head``."""
    if timestamp is not None:
        at_time = log.seq_at_time(_last_ns_at(timestamp))
        if at_time == 0:
            msg = f"{what} has no event at or before {timestamp!r}"
            raise ValueError(msg)
        version = at_time if version is None else min(version, at_time)
    if version is None:
        return head
    if type(version) is not int or not 1 <= version <= head:
        msg = f"version must be an int from 1 to {head} (the job's current version), got {version!r}"
        raise ValueError(msg)
    return version


_TOP_FIELDS = frozenset(_JOB_FIELDS)


def _normalize_state(data: Any) -> dict[str, Any]:
    """Check a serialize() dict and return the payload of a ``deserialized`` event."""
    if not isinstance(data, dict):
        msg = f"deserialize needs a dict made by JobState.serialize(), got {type(data).__name__}"
        raise ValueError(msg)
    tag = data.get("_type", "JobState")
    if tag != "JobState":
        msg = f"cannot deserialize a {tag!r} dict into a JobState (its _type must be 'JobState')"
        raise ValueError(msg)
    unknown = sorted(str(k) for k in data if k != "_type" and k not in _TOP_FIELDS)
    if unknown:
        msg = f"unknown JobState field(s) {', '.join(unknown)}; known: {', '.join(_JOB_FIELDS)}"
        raise ValueError(msg)
    state: dict[str, Any] = {}
    for name in ("flow_id", "job_id"):
        if name in data:
            _check_str(name, data[name])
            state[name] = data[name]
    if "status" in data:
        if data["status"] not in _STATUSES:
            msg = f"invalid job status {data['status']!r}; allowed: {', '.join(ev.JOB_STATUSES)}"
            raise ValueError(msg)
        state["status"] = data["status"]
    if "current_routine_id" in data:
        if data["current_routine_id"] is not None:
            _check_str("current_routine_id", data["current_routine_id"])
        state["current_routine_id"] = data["current_routine_id"]
    for name in ("created_at", "updated_at"):
        if data.get(name) is not None:
            state[name] = _iso_string(name, data[name])
    for name in ("routine_states", "shared_data"):
        if name in data:
            value = data[name]
            if not isinstance(value, dict):
                msg = f"{name} must be a dict, got {type(value).__name__}"
                raise ValueError(msg)
            if name == "routine_states":
                for rid, rstate in value.items():
                    if not isinstance(rstate, dict):
                        msg = f"routine_states[{rid!r}] must be a dict, got {type(rstate).__name__}"
                        raise ValueError(msg)
            state[name] = value
    for name in ("pause_points", "pending_tasks", "deferred_events", "shared_log", "output_log"):
        if name in data:
            value = data[name]
            if not isinstance(value, list):
                msg = f"{name} must be a list, got {type(value).__name__}"
                raise ValueError(msg)
            state[name] = value
    if "execution_history" in data:
        history = data["execution_history"]
        if not isinstance(history, list):
            msg = f"execution_history must be a list, got {type(history).__name__}"
            raise ValueError(msg)
        records = []
        for i, item in enumerate(history):
            if isinstance(item, ExecutionRecord):
                records.append(_record_dict(item))
                continue
            if not isinstance(item, dict):
                msg = f"execution_history[{i}] must be an ExecutionRecord dict, got {type(item).__name__}"
                raise ValueError(msg)
            rid, name_, rdata = item.get("routine_id", ""), item.get("event_name", ""), item.get("data")
            if type(rid) is not str or type(name_) is not str:
                msg = f"execution_history[{i}]: routine_id and event_name must be str"
                raise ValueError(msg)
            if rdata is None:
                rdata = {}
            if not isinstance(rdata, dict):
                msg = f"execution_history[{i}]['data'] must be a dict, got {type(rdata).__name__}"
                raise ValueError(msg)
            stamp = item.get("timestamp")
            records.append({"routine_id": rid, "event_name": name_, "data": rdata,
                            "timestamp": None if stamp is None else _iso_string(f"execution_history[{i}]", stamp)})
        state["execution_history"] = records
    return state


def _iso_string(name: str, value: Any) -> str:
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            iso_to_datetime(value)
        except ValueError:
            msg = f"{name} {value!r} is not an ISO datetime"
            raise ValueError(msg) from None
        return value
    msg = f"{name} must be an ISO datetime string or a datetime, got {type(value).__name__}"
    raise ValueError(msg)
