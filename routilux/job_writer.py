"""The write path of a JobState, and its snapshot policy.

One function turns a mutation into an encoded event (:func:`eventlog.encoding.encode_event`,
called by :meth:`JobWriter.emit`), the log stores the bytes (``append_encoded``, the
public fast path every backend has), and one function applies them
(:func:`~routilux.projection.apply_event`), the same one every rebuild uses. There is no
other way into a job's state.

Rules (DESIGN.md, "The event model"): a mutation is encoded first, outside the lock, so a
value that cannot be stored raises at the call (naming its path) and nothing is written;
the event is appended and applied under the job's lock, so the log's order is the order of
the state; the applied value is the one in the event's bytes, never the caller's object.
An in-memory job stores placeholders for values no codec can represent (one warning per
type), as routilux 0.10 passed anything through; a durable job refuses them.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

from eventlog import EventEncodingError, EventLog, EventLogError
from eventlog.audit import StoredCheckpoint
from eventlog.encoding import encode_event
from eventlog.personal import SealedValue

from . import job_events as ev
from .errors import ReadOnlyJobStateError
from .job_audit import CheckpointPolicy, take_checkpoint
from .projection import JobProjection, apply_event, snapshot_state

__all__ = ["DEFAULT_SNAPSHOT_EVERY", "JOB_SNAPSHOT_GAP", "JobWriter", "SnapshotWriter"]

_log = logging.getLogger("routilux.job_state")

#: Take a snapshot of the current state every this many events (``JobState.snapshot_every``).
DEFAULT_SNAPSHOT_EVERY = 4096
#: Retention asked of a durable log (``open_log(snapshot_gap=...)``): policy snapshots
#: that are kept are at most this many events apart, so ``at(version=k)`` replays at most
#: this many events for any k while a 1M-event job keeps ~120 small snapshot files.
#: Twice the policy interval: every other policy snapshot survives.
JOB_SNAPSHOT_GAP = 2 * DEFAULT_SNAPSHOT_EVERY
#: Policy snapshots a durable job may have waiting for its background writer; a mutator
#: that would queue one more waits (at most _SNAPSHOT_WAIT seconds) for the writer.
_SNAPSHOT_QUEUE = 4
_SNAPSHOT_WAIT = 10.0
# Statuses after which a durable log is flushed to disk (the run is over or parked).
_SYNC_STATUSES = ev.TERMINAL_STATUSES | {"paused"}
#: No checkpoint is due (Counters.checkpoint_due without a policy).
_NEVER = 2**63
_SHAPE_CHECKS = ev.SHAPE_CHECKS
#: An event field at the start of an encoding error's path: ``data['value']``.
_EVENT_FIELD = re.compile(r"data\['([A-Za-z_][A-Za-z0-9_]*)'\]")


def by_argument(err: EventEncodingError) -> EventEncodingError:
    """The same error, its path starting at the caller's argument, not the event's field.

    Every mutator stores its arguments under event fields of the same names, so
    ``update_shared_data("k", lock)`` reports ``value: ...`` and
    ``record_execution(..., data={"x": lock})`` reports ``data['x']: ...`` (the event's own
    ``data['value']`` / ``data['data']['x']`` would name a dict the caller never saw).
    """
    found = _EVENT_FIELD.match(err.path)
    if found is None:
        return err
    return type(err)(found.group(1) + err.path[found.end():], err.problem)


class Counters:
    """Mutable counters of a JobState (slots: cheap to bump on the hot path)."""

    __slots__ = ("checkpoint_due", "due", "notified", "quiet_waiters", "snapshot_at", "status", "waiters")

    def __init__(self, status: str, snapshot_at: int) -> None:
        self.checkpoint_due = _NEVER  # the version at which the checkpoint policy signs next
        # The version at which the next policy snapshot or checkpoint is due (the earlier
        # of the two): the one number an append compares with (see rearm).
        self.due = _NEVER
        self.status = status  # the status last seen by changed() (a change to a terminal one syncs)
        self.notified = 0  # bumped by notify_waiters(); with the version, tells a waiter "changed"
        self.snapshot_at = snapshot_at  # version of the last snapshot (the policy counts from it)
        self.waiters = 0  # threads in a wait that want a wake-up after every event
        # wait_for_completion with a flow that reports its activity: woken only by a status
        # change or notify_waiters() (the engine calls it when the job's work runs out), so
        # a durable run's worker threads are not interrupted on every append.
        self.quiet_waiters = 0

    def rearm(self, snapshot_every: int) -> None:
        """Recompute :attr:`due` after ``snapshot_at``, ``checkpoint_due`` or the snapshot interval changed."""
        self.due = min(self.snapshot_at + snapshot_every, self.checkpoint_due)


class CountingCondition(threading.Condition):
    """A Condition that counts its waiters, so appends skip ``notify_all`` when nobody waits."""

    def __init__(self, lock: Any, counters: Counters) -> None:
        super().__init__(lock)
        self._counters = counters

    def wait(self, timeout: float | None = None) -> bool:
        """Wait (counted as a waiter that wants every event)."""
        counters = self._counters
        counters.waiters += 1  # the lock is held here (Condition.wait requires it)
        try:
            return super().wait(timeout)
        finally:
            counters.waiters -= 1


class SnapshotWriter:
    """Stores policy snapshots of a durable job from a short-lived background thread.

    A durable snapshot is a file write + fsync + rename (milliseconds): the mutating
    thread only assembles the state (copies of encoded values) and queues it. Snapshots
    are written in order: a burst of appends that outruns the writer does not lose the
    ones in between, which would leave gaps longer than the policy interval for ``at()``
    to replay. Only when :data:`_SNAPSHOT_QUEUE` snapshots are already waiting does the
    submitter wait for the writer (and, after :data:`_SNAPSHOT_WAIT` seconds of a stuck
    disk, replace the newest waiting one). Failures are logged, never raised: the events
    are already recorded and a missing snapshot only costs a longer replay.
    """

    def __init__(self, log: EventLog, job_id: str) -> None:
        self._log = log
        self._job_id = job_id
        self._cond = threading.Condition()
        self._pending: list[tuple[int, dict[str, Any]]] = []
        self._busy = False

    def submit(self, version: int, state: dict[str, Any]) -> None:
        """Queue the state at ``version`` (an independent copy) for writing."""
        with self._cond:
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
                self._log.store_snapshot(state, schema_version=ev.SCHEMA_VERSION, seq=version)
            except Exception:  # noqa: BLE001 - logged; see the class docstring
                _log.exception("could not store a snapshot of job %s at version %s", self._job_id, version)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until no snapshot is pending or being written."""
        with self._cond:
            self._cond.wait_for(lambda: not self._busy, timeout)


class JobWriter:
    """Encodes, appends and applies the events of one job; takes its policy snapshots.

    Args:
        log: the job's log (append target and history source).
        projection: the state events are applied to.
        lock: the job's re-entrant lock (append + apply under one acquisition).
        readonly: refuse every mutation (views, ``open(readonly=True)``).
    """

    # Slots: every attribute is read on each event.
    __slots__ = ("_snapshot_every", "_snapshots", "append", "checkpoints", "condition", "counters", "lenient",
                 "lock", "log", "projection", "readonly", "tx", "tx_sealed")

    def __init__(self, log: EventLog, projection: JobProjection, lock: Any, *, readonly: bool) -> None:
        self.log = log
        # Bound once (called for every event); the job's lock is held around each call.
        self.append = log.appender(lock)
        self.projection = projection
        self.lock = lock
        self.readonly = readonly
        # DESIGN.md: an in-memory job keeps running with placeholders; a durable one refuses.
        self.lenient = not log.persistent
        self.counters = Counters(projection.status, projection.version)
        self.condition = CountingCondition(lock, self.counters)
        self._snapshot_every = DEFAULT_SNAPSHOT_EVERY
        self.counters.rearm(DEFAULT_SNAPSHOT_EVERY)
        self.tx: list[bytes] | None = None
        self.tx_sealed: list[SealedValue] = []  # personal values of the events buffered in tx
        self._snapshots: SnapshotWriter | None = None
        self.checkpoints: CheckpointPolicy | None = None

    @property
    def snapshot_every(self) -> int:
        """A policy snapshot is taken every this many events."""
        return self._snapshot_every

    @snapshot_every.setter
    def snapshot_every(self, value: int) -> None:
        self._snapshot_every = value
        self.counters.rearm(value)

    def snapshot_taken_at(self, version: int) -> None:
        """Count the snapshot policy's events from ``version`` (a snapshot of it exists)."""
        self.counters.snapshot_at = version
        self.counters.rearm(self._snapshot_every)

    def set_checkpoints(self, policy: CheckpointPolicy | None) -> None:
        """Sign checkpoints by ``policy`` from now on (``None``: stop)."""
        self.checkpoints = policy
        every = policy.every if policy is not None else None
        c = self.counters
        c.checkpoint_due = _NEVER if every is None else self.projection.version + every
        c.rearm(self._snapshot_every)

    # -- the write path ---------------------------------------------------------------
    def refuse_readonly(self) -> None:
        """Raise the error for a mutation of a read-only JobState."""
        p = self.projection
        msg = (f"this JobState is read-only (a view of job {p.job_id!r} at version {p.version}); "
               "mutate the live JobState instead")
        raise ReadOnlyJobStateError(msg)

    def emit(self, kind: str, data: dict[str, Any], exact: bool = False) -> tuple[int, int] | None:
        """Record one event and apply it; return its ``(seq, ts)`` (None inside a transaction).

        ``exact``: the caller vouches that ``data`` is what decoding the event gives, types
        included (it holds only exact str/int/float/bool/None values and lists of them), so
        apply may use it instead of decoding the bytes again (the in-place append of a
        scalar, benchmarks/bench_job_state.py).

        Raises:
            EventEncodingError: a value cannot be stored (its path starts at the argument).
            PayloadShapeError: ``data`` does not have the declared shape of ``kind``
                (routilux.job_events); nothing is written.
            ReadOnlyJobStateError: the JobState is read-only.
            eventlog.ConcurrencyError: another writer appended to the same log first.
        """
        if self.readonly:
            self.refuse_readonly()
        # Personal values (eventlog.Personal) in data are sealed into this list, for the
        # log's vault: the event itself stores only their commitments.
        sealed: list[SealedValue] = []
        # The declared shape is checked before anything is encoded: replay checks it
        # again, and an event the log holds must always replay.
        if not _SHAPE_CHECKS[kind](data):
            ev.check_payload(kind, data)
        try:
            event_bytes = encode_event(kind, data, self.lenient, sealed)
        except EventEncodingError as err:
            raise by_argument(err) from None
        lock = self.lock
        # acquire/release rather than "with": half the cost, on a path taken per event.
        lock.acquire()
        try:
            tx = self.tx
            if tx is not None:
                tx.append(event_bytes)  # encoded now, so a bad value raises at the call
                self.tx_sealed += sealed
                return None
            p = self.projection
            # expected_seq: a log shared with other writers (PostgreSQL) refuses the event
            # with ConcurrencyError, nothing written, if someone else appended.
            seq, ts = self.append(event_bytes, expected_seq=p.version, personal=sealed)
            # checked: the payload's shape was checked above (it keeps it through the codec).
            apply_event(p, seq, ts, event_bytes, data if exact else None, kind, True)
            c = self.counters
            # changed() only when it has something to do (most events: nothing).
            if seq >= c.due or c.waiters or p.status != c.status:
                self.changed()
            return seq, ts
        finally:
            lock.release()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Buffer the events emitted inside and append them as ONE atomic batch at exit.

        The lock is held throughout, so other threads wait; reads inside see the state
        before the transaction. An exception discards the buffered events. Nested
        transactions join the outer one.
        """
        if self.readonly:
            self.refuse_readonly()
        with self.lock:
            if self.tx is not None:
                yield
                return
            self.tx = []
            try:
                yield
                pending, sealed = self.tx, self.tx_sealed
            finally:
                self.tx = None
                self.tx_sealed = []
            if pending:
                p = self.projection
                first, ts = self.log.append_batch_encoded(pending, expected_seq=p.version, personal=sealed or None)
                for i, event_bytes in enumerate(pending):
                    apply_event(p, first + i, ts, event_bytes, None, None, True)
                self.changed()

    def changed(self) -> None:
        """After events were applied (lock held): wake waiters, snapshot, flush on a final status."""
        c = self.counters
        p = self.projection
        if c.waiters:
            self.condition.notify_all()
        if p.version - c.snapshot_at >= self._snapshot_every:
            self.take_snapshot()
        status = p.status
        policy = self.checkpoints
        if status != c.status:
            c.status = status
            if c.quiet_waiters and not c.waiters:
                self.condition.notify_all()
            if not self.lenient and status in _SYNC_STATUSES:
                # DESIGN.md: a durable log is flushed when the job reaches a terminal status.
                self.log.sync()
            if policy is not None and policy.at_terminal and status in ev.TERMINAL_STATUSES:
                self.checkpoint()
                return
        if p.version >= c.checkpoint_due:
            self.checkpoint()

    def checkpoint(self) -> StoredCheckpoint | None:
        """Sign and keep a checkpoint now (lock held), by the policy; the next one is due ``every`` events on."""
        policy = self.checkpoints
        if policy is None:
            return None
        p = self.projection
        if policy.every is not None:
            self.counters.checkpoint_due = p.version + policy.every
            self.counters.rearm(self._snapshot_every)
        return take_checkpoint(self.log, policy, p.job_id)

    def notify_waiters(self) -> None:
        """Wake every waiter (the engine calls it when a job's work may have run out)."""
        with self.lock:
            self.counters.notified += 1
            self.condition.notify_all()

    def change_mark(self) -> tuple[int, int]:
        """A value that differs after any applied event or :meth:`notify_waiters` call."""
        return (self.projection.version, self.counters.notified)

    # -- the snapshot policy -------------------------------------------------------------
    def take_snapshot(self) -> None:
        """Store a snapshot of the current state (lock held).

        The state is assembled from the projection's encoded values (no re-encoding, so
        its cost does not grow with the size of the values). An in-memory log stores it
        at once (it keeps only the newest couple); a durable one through
        :class:`SnapshotWriter`.
        """
        p = self.projection
        version = p.version
        self.snapshot_taken_at(version)
        state = snapshot_state(p)
        if self.lenient:
            try:
                self.log.store_snapshot(state, schema_version=ev.SCHEMA_VERSION, seq=version)
            except (EventLogError, ValueError):
                _log.exception("could not store a snapshot of job %s at version %s", p.job_id, version)
            return
        writer = self._snapshots
        if writer is None:
            writer = self._snapshots = SnapshotWriter(self.log, p.job_id)
        writer.submit(version, state)

    def drain_snapshots(self) -> None:
        """Wait for snapshots being written in the background."""
        if self._snapshots is not None:
            self._snapshots.drain()
