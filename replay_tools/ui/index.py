"""Compact columns over a job's events, so the page can browse a big log quickly.

The page needs, for every event, its time, kind and routine (the event list, its filters
and the timeline), and a handful of facts the fold does not keep: when each task was
queued, started and ended, where the job paused, where it failed, and how many entries
each history list had at any version. :class:`JobIndex` keeps:

* per event: ``ts`` (ns) and a kind id, in arrays (9 bytes an event);
* tasks: one row per ``task_id`` with the routine (its lane), the seqs that queued,
  started and ended it, and how it ended;
* marks on the lanes: handler errors, errors continued past, retried runs, restarts;
* pauses (``paused`` to the next ``resumed`` or status change) and failures;
* the seqs that appended to each history list, so ``counts(v)`` is a few bisections;
* per event, the routine it belongs to (4 bytes an event), by the one attribution rule
  (:mod:`replay_tools.attribution`, the rule ``routilux-replay events`` and ``blame``
  use), filled in by :mod:`replay_tools.ui.routines`.

The first pass (:meth:`JobIndex.scan`) reads the log raw and takes the few fields it
needs from the stored bytes (:mod:`replay_tools.ui.peek`), decoding only the events
whose bytes are not in the writer's shape: the timeline is complete long before every
event could be decoded. It publishes each chunk as it goes, so the page shows the
timeline growing. The routines come from a second pass: attribution folds task events
(see :mod:`replay_tools.attribution`), which costs several times the first pass on a
task-heavy log, so it runs beside it (in a second process for a big job) and the page
asks for the routines of a few rows on demand until it is done.

The index never changes the state a user reads: the state itself always comes from the
one fold (``routilux.projection.apply``) through :mod:`replay_tools.replay`. The history
counts mirror what ``apply`` appends to each list; ``tests/ui/test_index.py`` checks them
against the lists of real projections, including ``deserialize``.

After the first pass the index can follow a job that is still being written
(:meth:`JobIndex.follow`): the log is read-only to it, like ``routilux-replay tail -f``.
"""

from __future__ import annotations

import re
import threading
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from eventlog import CorruptionError, EventLogError
from routilux import job_events as ev

from ..attribution import task_routine
from ..errors import DamagedLogError, ReplayError
from ..replay import decode_raw
from ..source import Job, damaged
from . import peek
from .textsearch import fold, scan_text

__all__ = ["CHUNK", "COUNTED_LISTS", "Filter", "FilterResult", "JobIndex", "TaskRow"]

#: Events indexed per chunk; readers wait at most one chunk for a consistent view.
CHUNK = 4096

#: The lists whose lengths the state pane shows, in display order. ``errors`` counts the
#: execution-history entries whose event name is ``error`` (every handler error the
#: engine records); the others are the JobState's history lists.
COUNTED_LISTS = ("execution_history", "errors", "output_log", "shared_log", "pause_points")

# What ``routilux.projection.apply`` appends to each counted list (pinned by a test).
_APPENDS = {
    ev.EXECUTION_RECORDED: ("execution_history",),
    ev.OUTPUT_SENT: ("output_log",),
    ev.SHARED_LOG_APPENDED: ("shared_log",),
    ev.PAUSE_POINT_ADDED: ("pause_points",),
    ev.PAUSED: ("pause_points",),
}
_TASK_KINDS = (ev.TASK_QUEUED, ev.TASK_STARTED, ev.TASK_FINISHED, ev.TASK_FAILED)
# Kinds that end a pause (a status set to anything but paused included).
_ENDS_PAUSE = frozenset({ev.RESUMED, ev.CANCELLED, ev.STATUS_SET})

#: Task states in :attr:`TaskRow.state`.
QUEUED, STARTED, FINISHED, FAILED = 0, 1, 2, 3

#: A routine column entry: the event belongs to no routine.
NO_ROUTINE = -1

_RETRIED = peek.map_key("retried") + b"\xc3"  # "retried": true, as the writer packs it
_TASK_KEY = peek.map_key("task")
_ROUTINE_KEY = peek.map_key("routine_id")
_EVENT_NAME_KEY = peek.map_key("event_name")


class TaskRow(NamedTuple):
    """One task, for the timeline (seqs are 0 when not recorded)."""

    row: int
    task_id: str
    lane: int
    queued: int
    started: int
    ended: int
    state: int


class Filter(NamedTuple):
    """An event-list filter: kinds (empty: all), a routine, a text (see :mod:`.textsearch`)."""

    kinds: frozenset[str]
    routine: str | None
    text: str

    @property
    def empty(self) -> bool:
        """True when it keeps every event."""
        return not self.kinds and self.routine is None and not self.text


class FilterResult:
    """The seqs that pass one filter among versions ``1..upto``, extended as the index grows."""

    def __init__(self) -> None:
        self.seqs = array("i")
        self.upto = 0


def _head(kind: str, size: int, key: str) -> bytes:
    """The bytes that start an event of ``kind`` whose payload has ``size`` keys, ``key`` first."""
    return b"\x92" + peek.map_key(kind) + bytes([0x80 | size]) + peek.map_key(key)


_TASK_HEADS = {ev.TASK_QUEUED: _head(ev.TASK_QUEUED, 2, "task_id"), ev.TASK_STARTED: _head(ev.TASK_STARTED, 1, "task_id"),
               ev.TASK_FINISHED: _head(ev.TASK_FINISHED, 1, "task_id"), ev.TASK_FAILED: _head(ev.TASK_FAILED, 2, "task_id")}
_RECORDED_HEAD = _head(ev.EXECUTION_RECORDED, 3, "routine_id")
_STATUS_HEAD = _head(ev.STATUS_SET, 1, "status")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class JobIndex:
    """Columns over a job's events (see the module docstring).

    Every public reader takes :attr:`lock`, so it sees whole chunks only.
    """

    def __init__(self, job: Job) -> None:
        self.job = job
        self.lock = threading.RLock()
        #: Notified (under :attr:`lock`) whenever :attr:`head` or :attr:`attributed` moves or a pass ends.
        self.changed = threading.Condition(self.lock)
        self.head = 0
        self.ts = array("q")
        self.kind_ids = bytearray()
        self.kinds: list[str] = []
        #: Routine names; a lane of the timeline is a position in this list.
        self.routines: list[str] = []
        self._kind_id: dict[str, int] = {}
        self._kind_by_bytes: dict[bytes, int] = {}
        self._routine_id: dict[str, int] = {}
        #: The routine (a position in :attr:`routines`, or NO_ROUTINE) of events 1..attributed.
        self.actors = array("i")
        # tasks, column-wise
        self.task_ids: list[str] = []
        self._task_row: dict[str, int] = {}
        self.t_lane = array("i")
        self.t_queued = array("i")
        self.t_started = array("i")
        self.t_ended = array("i")
        self.t_state = bytearray()
        #: The seq and task row of every change to a task: what changed since a seq.
        self.touch_seq = array("i")
        self.touch_row = array("i")
        #: (seq, lane, mark): ``error``, ``continued``, ``retried``, ``restarted``.
        self.marks: list[tuple[int, int, str]] = []
        #: [paused seq, seq that ended the pause or 0].
        self.pauses: list[list[int]] = []
        #: Seqs of failures: failed tasks, handler errors, a status set to failed.
        self.failures = array("i")
        self.appends: dict[str, array[int]] = {name: array("i") for name in COUNTED_LISTS}
        self._append_to = {kind: [self.appends[name] for name in names] for kind, names in _APPENDS.items()}
        #: (seq, {list: length}) where ``deserialize`` replaced history lists.
        self.resets: list[tuple[int, dict[str, int]]] = []
        #: Set when the scan stopped on a damaged or unreadable log.
        self.error: ReplayError | None = None
        #: True once the first pass reached the head the log had when it started.
        self.scanned = False
        self._filters: dict[Filter, FilterResult] = {}
        # What the first pass does with an event of each kind whose payload it reads.
        self._handlers: dict[str, Callable[[int, str, bytes, Any], None]] = {
            **{kind: self._on_task for kind in _TASK_KINDS},
            ev.EXECUTION_RECORDED: self._on_recorded, ev.PAUSED: self._on_paused,
            **{kind: self._on_pause_end for kind in _ENDS_PAUSE},
            ev.DESERIALIZED: self._on_deserialized,
        }
        self._stop = threading.Event()
        #: Returns True while someone is waiting for an answer: long passes then pause
        #: between chunks (see :meth:`give_way`).
        self.others_waiting: Callable[[], bool] = lambda: False

    @property
    def attributed(self) -> int:
        """How many events (from version 1) have their routine in :attr:`actors`."""
        return len(self.actors)

    # -- building -------------------------------------------------------------------------
    def _intern_kind(self, kind: str) -> int:
        kid = self._kind_id.get(kind)
        if kid is None:
            if len(self.kinds) >= 255:
                msg = "more than 255 distinct event kinds; this is not a routilux job log"
                raise DamagedLogError(self.job.path, msg)
            kid = self._kind_id[kind] = len(self.kinds)
            self.kinds.append(kind)
        return kid

    def intern_routine(self, routine: str) -> int:
        """The lane of ``routine`` (added to :attr:`routines` when new). Call with :attr:`lock` held."""
        rid = self._routine_id.get(routine)
        if rid is None:
            rid = self._routine_id[routine] = len(self.routines)
            self.routines.append(routine)
        return rid

    def _new_task(self, task_id: str, seq: int, lane: int) -> int:
        row = self._task_row[task_id] = len(self.task_ids)
        self.task_ids.append(task_id)
        self.t_lane.append(lane)
        self.t_queued.append(seq)
        self.t_started.append(0)
        self.t_ended.append(0)
        self.t_state.append(QUEUED)
        return row

    def _fold_chunk(self, items: Sequence[tuple[int, int, bytes]]) -> None:
        """Index one chunk of raw events ``(seq, ts, bytes)``. Called with :attr:`lock` held.

        The hot loop of the first pass: an event of a kind whose payload is not needed
        costs a slice and two lookups; the others go to their kind's handler, which reads
        what it needs from the bytes where the writer put it (see :mod:`.peek`) and
        decodes the event only when they are not in that shape.
        """
        ts_append = self.ts.append
        kind_append = self.kind_ids.append
        by_bytes = self._kind_by_bytes
        kinds = self.kinds
        append_to = self._append_to
        handlers = self._handlers
        head = self.head
        for seq, ts, body in items:
            if seq != head + 1:
                continue  # already indexed (a follow that overlapped the first pass)
            h = body[1] if len(body) > 1 else 0
            kid = by_bytes.get(body[2 : 2 + (h & 0x1F)], -1) if 0xA0 <= h <= 0xBF and body[0] == 0x92 else -1
            data: Any = None
            if kid < 0:  # a kind not seen yet (or not a short string): decode to learn it
                kind, data = decode_raw(self.job, seq, body)
                kid = self._intern_kind(kind)
                raw_kind = peek.kind_bytes(body)
                if raw_kind is not None:
                    by_bytes[raw_kind] = kid
            kind = kinds[kid]
            ts_append(ts)
            kind_append(kid)
            lists = append_to.get(kind)
            if lists is not None:
                for target in lists:
                    target.append(seq)
            handler = handlers.get(kind)
            if handler is not None:
                handler(seq, kind, body, data)
            head = seq
        self.head = head

    def _payload(self, seq: int, body: bytes, data: Any) -> dict[str, Any]:
        """The decoded payload (``data`` if the caller decoded it already; ``{}`` if not a dict)."""
        if data is None:
            data = decode_raw(self.job, seq, body)[1]
        return data if isinstance(data, dict) else {}

    def _on_task(self, seq: int, kind: str, body: bytes, data: Any) -> None:
        task_id: str | None = None
        routine: str | None = None
        if data is None:
            prefix = _TASK_HEADS[kind]
            if body.startswith(prefix):
                at = len(prefix)
                found = peek.string_at(body, at)
                if found is not None:
                    task_id = found[0]
                    if kind == ev.TASK_QUEUED:
                        routine = self._queued_routine(body, found[1])
                        if routine is None:
                            task_id = None
        if task_id is None:
            payload = self._payload(seq, body, data)
            task_id = str(payload.get("task_id"))
            routine = _str(payload.get("routine_id"))
            if kind == ev.TASK_QUEUED and routine is None:
                routine = task_routine(payload.get("task"))
        lane = self.intern_routine(routine) if routine is not None else -1
        row = self._task_row.get(task_id, -1)
        if row < 0:
            row = self._new_task(task_id, seq, lane)
        if kind == ev.TASK_QUEUED:
            self.t_queued[row] = seq
            if lane >= 0:
                self.t_lane[row] = lane
        elif kind == ev.TASK_STARTED:
            self.t_started[row] = seq
            self.t_state[row] = STARTED
        else:
            self.t_ended[row] = seq
            if kind == ev.TASK_FAILED:
                self.t_state[row] = FAILED
                self.failures.append(seq)
            else:
                self.t_state[row] = FINISHED
        self.touch_seq.append(seq)
        self.touch_row.append(row)

    def _queued_routine(self, body: bytes, at: int) -> str | None:
        """The routine of a queued task, from ``{"task": {"routine_id": <str>, ...}}`` at ``at`` (writer's shape)."""
        key = _TASK_KEY
        if not body.startswith(key, at):
            return None
        at += len(key)
        # The task's first key is routine_id: task_routine's first choice.
        if at >= len(body) or not 0x81 <= body[at] <= 0x8F or not body.startswith(_ROUTINE_KEY, at + 1):
            return None
        found = peek.string_at(body, at + 1 + len(_ROUTINE_KEY))
        return None if found is None else found[0]

    def _on_recorded(self, seq: int, kind: str, body: bytes, data: Any) -> None:
        routine: str | None = None
        name: str | None = None
        retried = False
        read = False
        if data is None and body.startswith(_RECORDED_HEAD) and _RETRIED not in body:
            # {"routine_id": <str>, "event_name": <str>, "data": ...}; "retried": true
            # nowhere in the bytes means the data holds no such flag.
            rid = peek.string_at(body, len(_RECORDED_HEAD))
            if rid is not None and body.startswith(_EVENT_NAME_KEY, rid[1]):
                found = peek.string_at(body, rid[1] + len(_EVENT_NAME_KEY))
                if found is not None:
                    routine, name, read = rid[0], found[0], True
        if not read:
            payload = self._payload(seq, body, data)
            routine, name = _str(payload.get("routine_id")), _str(payload.get("event_name"))
            inner = payload.get("data")
            retried = isinstance(inner, dict) and inner.get("retried") is True
        lane = self.intern_routine(routine) if routine is not None else -1
        if name == "error":
            self.appends["errors"].append(seq)
            self.marks.append((seq, lane, "error"))
            if not self.failures or self.failures[-1] != seq:
                self.failures.append(seq)
        elif name == "error_continued":
            self.marks.append((seq, lane, "continued"))
        elif name == "resumed_after_interruption":
            self.marks.append((seq, lane, "restarted"))
        elif retried:
            self.marks.append((seq, lane, "retried"))

    def _on_paused(self, seq: int, kind: str, body: bytes, data: Any) -> None:
        self.pauses.append([seq, 0])

    def _on_pause_end(self, seq: int, kind: str, body: bytes, data: Any) -> None:
        status: str | None = None
        if kind == ev.STATUS_SET:
            found = peek.string_at(body, len(_STATUS_HEAD)) if data is None and body.startswith(_STATUS_HEAD) else None
            status = found[0] if found is not None else _str(self._payload(seq, body, data).get("status"))
        if status != "paused":
            if self.pauses and not self.pauses[-1][1]:
                self.pauses[-1][1] = seq
            if status == "failed":
                self.failures.append(seq)

    def _on_deserialized(self, seq: int, kind: str, body: bytes, data: Any) -> None:
        self._reset(seq, self._payload(seq, body, data).get("state"))

    def _reset(self, seq: int, state: Any) -> None:
        if not isinstance(state, dict):
            return
        lengths: dict[str, int] = {}
        for name in ("execution_history", "output_log", "shared_log", "pause_points"):
            items = state.get(name)
            if isinstance(items, list):
                lengths[name] = len(items)
        history = state.get("execution_history")
        if isinstance(history, list):
            lengths["errors"] = sum(1 for r in history if isinstance(r, dict) and r.get("event_name") == "error")
        if lengths:
            self.resets.append((seq, lengths))

    def _absorb(self, items: Iterable[tuple[int, int, bytes]]) -> None:
        """Index ``items`` in chunks of :data:`CHUNK`, publishing the head after each.

        If reading fails part-way, what was read before the failure is still published.
        """
        it = iter(items)
        while not self._stop.is_set():
            chunk: list[tuple[int, int, bytes]] = []
            try:
                for item in it:
                    chunk.append(item)
                    if len(chunk) >= CHUNK:
                        break
            finally:
                if chunk:
                    with self.changed:
                        self._fold_chunk(chunk)
                        self.changed.notify_all()
            if len(chunk) < CHUNK:
                return
            self.give_way()

    def give_way(self) -> None:
        """Let the page's requests run first: long passes and the requests share one GIL.

        Without this, a request that reads the log (each read releases the GIL) waits a
        switch interval to get it back every time, and a 20 ms answer takes hundreds of
        ms while a pass runs (measured by benchmarks/bench_ui.py).
        """
        deadline = time.monotonic() + 0.25  # the pass still makes progress under a stream of requests
        while self.others_waiting() and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.002)

    def _raw(self, start: int, stop: int) -> Iterator[tuple[int, int, bytes]]:
        return self.job.log.read_raw(start, stop)

    def scan(self, progress: Callable[[int], None] | None = None, *, routines: bool = True,
             stop: int | None = None) -> None:
        """Index every event up to the log's current head (the first pass), or up to ``stop``.

        With ``routines`` the routines are attributed here too, after the first pass (the
        ``ui`` server attributes them beside it instead: :mod:`replay_tools.ui.routines`).
        A damaged log stops the scan where the damage is: :attr:`error` says what and
        where, and everything before it stays browsable. :attr:`scanned` is set once the
        head the log had at the start is reached (or the damage).
        """
        head = self.job.head
        stop = head if stop is None else min(stop, head)
        try:
            start = self.head + 1
            while start <= stop and not self._stop.is_set():
                upto = min(stop, start + 16 * CHUNK - 1)
                self._absorb(self._raw(start, upto))
                start = self.head + 1
                if progress is not None:
                    progress(self.head)
        except ReplayError as exc:
            self._fail(exc)
        except CorruptionError as exc:
            self._fail(damaged(self.job.path, exc))
        except EventLogError as exc:
            self._fail(DamagedLogError(self.job.path, str(exc)))
        finally:
            with self.changed:
                self.scanned = self.scanned or self.head >= head or self.error is not None or self._stop.is_set()
                self.changed.notify_all()
        if routines:
            from .routines import RoutineReader

            reader = RoutineReader(self.job, self.attributed + 1)
            while self.attributed < self.head and not self._stop.is_set():
                first = self.attributed + 1
                self.add_routines(first, reader.read(min(self.head, first + 16 * CHUNK - 1)))

    def _fail(self, exc: ReplayError) -> None:
        with self.changed:
            self.error = exc
            self.changed.notify_all()

    def add_routines(self, first: int, routines: Sequence[str | None]) -> None:
        """Record the routines of events ``first, first + 1, ...`` (``first`` must be ``attributed + 1``)."""
        with self.changed:
            if first != self.attributed + 1:
                msg = f"routines for version {first} arrived while {self.attributed} were attributed"
                raise ValueError(msg)
            ids = array("i", [NO_ROUTINE if r is None else self.intern_routine(r) for r in routines])
            self.actors.extend(ids)
            self.changed.notify_all()

    def follow(self, poll: float = 0.1, stop_check: float = 1.0) -> None:
        """Keep indexing events another process appends, until :meth:`stop` is called."""
        if self.job.form == "file" or self.error is not None:
            return  # a saved job file never grows
        while not self._stop.is_set():
            try:
                # The follow only says that the log grew (after ``stop_check`` s without a
                # new event it returns, to look at the stop flag); the new events are
                # then read raw, like the first pass.
                for _first in self.job.log.follow(self.head + 1, timeout=stop_check, poll_interval=poll):
                    break
                else:
                    continue
                self._absorb(self._raw(self.head + 1, self.job.head))
            except CorruptionError as exc:
                self._fail(damaged(self.job.path, exc))
                return
            except EventLogError as exc:
                if self._stop.is_set():
                    return  # closed under us at shutdown
                self._fail(DamagedLogError(self.job.path, str(exc)))
                return
            except ReplayError as exc:
                self._fail(exc)
                return
            except Exception as exc:  # a database that went away: report, stop following
                if self._stop.is_set():
                    return
                self._fail(DamagedLogError(self.job.path, f"following the log stopped: {exc}"))
                return

    def stop(self) -> None:
        """Ask :meth:`scan` and :meth:`follow` to return."""
        self._stop.set()
        with self.changed:
            self.changed.notify_all()

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    def wait_for(self, version: int, timeout: float) -> bool:
        """Wait until ``version`` is indexed (or indexing stopped on an error); True if it is."""
        with self.changed:
            self.changed.wait_for(lambda: self.head >= version or self.error is not None or self._stop.is_set(),
                                  timeout=timeout)
            return self.head >= version

    # -- reading ---------------------------------------------------------------------------
    def kind_of(self, seq: int) -> str:
        """The kind of event ``seq`` (indexed)."""
        return self.kinds[self.kind_ids[seq - 1]]

    def routine_of(self, seq: int) -> str | None:
        """The routine event ``seq`` belongs to (``seq`` must be attributed: see :attr:`attributed`)."""
        lane = self.actors[seq - 1]
        return self.routines[lane] if lane >= 0 else None

    def counts(self, version: int) -> dict[str, int] | None:
        """The length of each counted list after ``version`` (``None``: not indexed yet)."""
        with self.lock:
            if version > self.head:
                return None
            out = {}
            for name in COUNTED_LISTS:
                base_seq, base = 0, 0
                for seq, lengths in self.resets:
                    if seq > version:
                        break
                    if name in lengths:
                        base_seq, base = seq, lengths[name]
                seqs = self.appends[name]
                out[name] = base + bisect_right(seqs, version) - bisect_right(seqs, base_seq)
            return out

    def first_failure(self) -> int | None:
        """The first version that records a failure, or ``None``."""
        with self.lock:
            return self.failures[0] if self.failures else None

    def version_at_ts(self, ts: int) -> int:
        """The last indexed version whose ts is ``<= ts`` (0 if none)."""
        with self.lock:
            return bisect_right(self.ts, ts, 0, self.head)

    def tasks_since(self, seq: int) -> list[TaskRow]:
        """Every task changed by an event after ``seq`` (all of them for 0)."""
        with self.lock:
            if seq <= 0:
                rows: Iterable[int] = range(len(self.task_ids))
            else:
                pos = bisect_right(self.touch_seq, seq)
                rows = sorted(set(self.touch_row[pos:]))
            return [TaskRow(r, self.task_ids[r], self.t_lane[r], self.t_queued[r], self.t_started[r],
                            self.t_ended[r], self.t_state[r]) for r in rows]

    def reach(self, flt: Filter) -> int:
        """The last version ``flt`` can be decided for now: the indexed head, or the attributed one."""
        with self.lock:
            return self.head if flt.routine is None else min(self.head, self.attributed)

    def matching(self, flt: Filter, *, progress: Callable[[int], None] | None = None) -> FilterResult:
        """The seqs that pass ``flt`` among versions ``1..reach(flt)`` (cached, extended as the index grows).

        A text filter reads the events' stored bytes (:func:`~replay_tools.ui.textsearch.scan_text`);
        it does so without holding :attr:`lock`, so the page's other requests and the
        index's growth never wait for it.
        """
        with self.lock:
            result = self._filters.get(flt)
            if result is None:
                if len(self._filters) > 32:
                    self._filters.clear()
                result = self._filters[flt] = FilterResult()
            head = self.reach(flt)
            lo = result.upto + 1
            if lo > head:
                return result
            candidates = self._candidates(flt, lo, head)
            if not flt.text:
                result.seqs.extend(range(lo, head + 1) if candidates is None else candidates)
                result.upto = head
                return result
        found = scan_text(self.job, fold(flt.text), lo, head, self.kind_of, candidates, progress)
        with self.lock:
            if result.upto == lo - 1:  # not extended meanwhile by the same filter's other request
                result.seqs.extend(found)
                result.upto = head
            return result

    def _candidates(self, flt: Filter, lo: int, head: int) -> list[int] | None:
        """Seqs in ``lo..head`` of the filter's kinds and routine (``None``: every one)."""
        kids = {self._kind_id[k] for k in flt.kinds if k in self._kind_id}
        lane = self._routine_id.get(flt.routine, -2) if flt.routine is not None else None
        if flt.kinds and not kids or lane == -2:
            return []  # an unknown kind or routine matches nothing (yet)
        if not kids and lane is None:
            return None
        if kids and lane is None:
            cls = b"[" + b"".join(re.escape(bytes([k])) for k in sorted(kids)) + b"]"
            view = memoryview(self.kind_ids)[lo - 1 : head]
            return [m.start() + lo for m in re.finditer(cls, view)]
        actors = self.actors
        kinds = self.kind_ids
        return [s for s in range(lo, head + 1)
                if actors[s - 1] == lane and (not kids or kinds[s - 1] in kids)]
