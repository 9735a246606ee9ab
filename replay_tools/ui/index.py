"""One forward scan of a job's log into compact columns the page can browse quickly.

The page needs, for every event, its time, kind and routine (the event list, its filters
and the timeline), and a handful of facts the fold does not keep: when each task was
queued, started and ended, where the job paused, where it failed, and how many entries
each history list had at any version. :class:`JobIndex` reads the log once (in a
background thread for ``routilux-replay ui``), in chunks, and keeps:

* per event: ``ts`` (ns), a kind id and a routine id, in arrays (about 17 bytes an event);
* tasks: one row per ``task_id`` with the routine (its lane), the seqs that queued,
  started and ended it, and how it ended;
* marks on the lanes: handler errors, errors continued past, retried runs, restarts;
* pauses (``paused`` to the next ``resumed`` or status change) and failures;
* the seqs that appended to each history list, so ``counts(v)`` is a few bisections.

It never changes the state a user reads: the state itself always comes from the one
fold (``routilux.projection.apply``) through :mod:`replay_tools.replay`. The history
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
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from eventlog import CorruptionError, EventLogError, Record
from routilux import events as ev
from routilux.projection import LoggedEvent

from ..errors import DamagedLogError, ReplayError
from ..replay import fast_read, fast_tuples
from ..source import Job, damaged
from ..summary import record_routine
from .display import summary

__all__ = ["COUNTED_LISTS", "CHUNK", "Filter", "JobIndex", "TaskRow"]

#: Events folded per chunk; readers wait at most one chunk for a consistent view.
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
_TASK_KINDS = frozenset({ev.TASK_QUEUED, ev.TASK_STARTED, ev.TASK_FINISHED, ev.TASK_FAILED})
# Kinds that end a pause (a status set to anything but paused included).
_ENDS_PAUSE = frozenset({ev.RESUMED, ev.CANCELLED, ev.STATUS_SET})

#: Task states in :attr:`TaskRow.state`.
QUEUED, STARTED, FINISHED, FAILED = 0, 1, 2, 3


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
    """An event-list filter: kinds (empty: all), a routine, a case-insensitive text."""

    kinds: frozenset[str]
    routine: str | None
    text: str

    @property
    def empty(self) -> bool:
        """True when it keeps every event."""
        return not self.kinds and self.routine is None and not self.text


class _FilterResult:
    """The seqs that pass one filter, extended as the index grows."""

    def __init__(self) -> None:
        self.seqs = array("i")
        self.upto = 0


class JobIndex:
    """Columns over a job's events (see the module docstring).

    Every public reader takes :attr:`lock`, so it sees whole chunks only.
    """

    def __init__(self, job: Job) -> None:
        self.job = job
        self.lock = threading.RLock()
        #: Notified (under :attr:`lock`) whenever :attr:`head` moves or the scan ends.
        self.changed = threading.Condition(self.lock)
        self.head = 0
        self.ts = array("q")
        self.kind_ids = bytearray()
        self.routine_ids = array("i")
        self.kinds: list[str] = []
        self.routines: list[str] = []
        self._kind_id: dict[str, int] = {}
        self._routine_id: dict[str, int] = {}
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
        #: (seq, {list: length}) where ``deserialize`` replaced history lists.
        self.resets: list[tuple[int, dict[str, int]]] = []
        #: Set when the scan stopped on a damaged or unreadable log.
        self.error: ReplayError | None = None
        #: True once the first pass reached the head the log had when it started.
        self.scanned = False
        self._filters: dict[Filter, _FilterResult] = {}
        self._stop = threading.Event()
        #: Returns True while someone is waiting for an answer: the scan then pauses
        #: between chunks (see :meth:`_absorb`).
        self.others_waiting: Callable[[], bool] = lambda: False

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

    def _intern_routine(self, routine: str) -> int:
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

    def _fold_chunk(self, items: Sequence[LoggedEvent | Record]) -> None:
        """Index one chunk of ``(seq, ts, kind, data)`` (the hot loop: locals, few calls per event).

        Called with :attr:`lock` held.
        """
        ts_append = self.ts.append
        kind_append = self.kind_ids.append
        routine_append = self.routine_ids.append
        kind_id = self._kind_id
        routine_id = self._routine_id
        task_row = self._task_row
        t_lane, t_queued, t_started, t_ended, t_state = (self.t_lane, self.t_queued, self.t_started,
                                                         self.t_ended, self.t_state)
        touch_seq, touch_row = self.touch_seq.append, self.touch_row.append
        appends = {kind: [self.appends[name].append for name in names] for kind, names in _APPENDS.items()}
        head = self.head
        for seq, ts, kind, data, *_ in items:  # LoggedEvents (read) or Records (follow)
            if seq != head + 1:
                continue  # already indexed (a follow that overlapped the first pass)
            ts_append(ts)
            kid = kind_id.get(kind)
            if kid is None:
                kid = self._intern_kind(kind)
            kind_append(kid)
            routine = data.get("routine_id")
            if kind in _TASK_KINDS:
                if kind == ev.TASK_QUEUED:
                    routine = record_routine(Record(seq, ts, kind, data))
                lane = routine_id.get(routine, -1) if isinstance(routine, str) else -1
                if lane < 0 and isinstance(routine, str):
                    lane = self._intern_routine(routine)
                task_id = str(data.get("task_id"))
                row = task_row.get(task_id, -1)
                if row < 0:
                    row = self._new_task(task_id, seq, lane)
                if kind == ev.TASK_QUEUED:
                    t_queued[row] = seq
                    if lane >= 0:
                        t_lane[row] = lane
                elif kind == ev.TASK_STARTED:
                    t_started[row] = seq
                    t_state[row] = STARTED
                else:
                    t_ended[row] = seq
                    if kind == ev.TASK_FAILED:
                        t_state[row] = FAILED
                        self.failures.append(seq)
                    else:
                        t_state[row] = FINISHED
                touch_seq(seq)
                touch_row(row)
                lane = t_lane[row]
            elif isinstance(routine, str):
                lane = routine_id.get(routine, -1)
                if lane < 0:
                    lane = self._intern_routine(routine)
            else:
                lane = -1
            routine_append(lane)
            adders = appends.get(kind)
            if adders is not None:
                for add in adders:
                    add(seq)
                if kind == ev.EXECUTION_RECORDED:
                    self._execution(seq, data, lane)
                elif kind == ev.PAUSED:
                    self.pauses.append([seq, 0])
            elif kind in _ENDS_PAUSE:
                status = data.get("status") if kind == ev.STATUS_SET else None
                if status != "paused":
                    if self.pauses and not self.pauses[-1][1]:
                        self.pauses[-1][1] = seq
                    if status == "failed":
                        self.failures.append(seq)
            elif kind == ev.DESERIALIZED:
                self._reset(seq, data.get("state"))
            head = seq
        self.head = head

    def _execution(self, seq: int, data: dict[str, Any], lane: int) -> None:
        name = data.get("event_name")
        payload = data.get("data")
        if name == "error":
            self.appends["errors"].append(seq)
            self.marks.append((seq, lane, "error"))
            if not self.failures or self.failures[-1] != seq:
                self.failures.append(seq)
        elif name == "error_continued":
            self.marks.append((seq, lane, "continued"))
        elif name == "resumed_after_interruption":
            self.marks.append((seq, lane, "restarted"))
        elif isinstance(payload, dict) and payload.get("retried") is True:
            self.marks.append((seq, lane, "retried"))

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

    def _absorb(self, items: Iterable[LoggedEvent | Record]) -> None:
        """Index ``items`` in chunks of :data:`CHUNK`, publishing the head after each.

        If reading fails part-way, what was read before the failure is still published.
        """
        it = iter(items)
        while not self._stop.is_set():
            chunk: list[LoggedEvent | Record] = []
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
            self._give_way()

    def _give_way(self) -> None:
        """Let the page's requests run first: the scan and the requests share one GIL.

        Without this, a request that reads the log (each read releases the GIL) waits a
        switch interval to get it back every time, and a 20 ms answer takes hundreds of
        ms while the first pass runs (measured by benchmarks/bench_ui.py).
        """
        deadline = time.monotonic() + 0.25  # the scan still makes progress under a stream of requests
        while self.others_waiting() and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.002)

    def scan(self, progress: Callable[[int], None] | None = None) -> None:
        """Index every event up to the log's current head (the first pass).

        A damaged log stops the scan where the damage is: :attr:`error` says what and
        where, and everything before it stays browsable.
        """
        try:
            stop = self.job.head
            start = self.head + 1
            while start <= stop and not self._stop.is_set():
                upto = min(stop, start + 16 * CHUNK - 1)
                self._absorb(fast_tuples(self.job, start, upto))
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
                self.scanned = True
                self.changed.notify_all()

    def _fail(self, exc: ReplayError) -> None:
        with self.changed:
            self.error = exc
            self.changed.notify_all()

    def follow(self, poll: float = 0.1, stop_check: float = 1.0) -> None:
        """Keep indexing events another process appends, until :meth:`stop` is called."""
        if self.job.form == "file" or self.error is not None:
            return  # a saved job file never grows
        while not self._stop.is_set():
            try:
                # Returns after ``stop_check`` s without a new event, to look at the stop flag.
                records = self.job.log.follow(self.head + 1, timeout=stop_check, poll_interval=poll)
                self._absorb(records)
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
        """The routine event ``seq`` is about (its lane), or ``None``."""
        lane = self.routine_ids[seq - 1]
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

    def matching(self, flt: Filter, *, progress: Callable[[int], None] | None = None) -> array[int]:
        """The seqs that pass ``flt`` among the indexed events (cached, extended as it grows).

        A text filter reads the events' payloads; it does so without holding :attr:`lock`,
        so the page's other requests and the index's growth never wait for it.
        """
        with self.lock:
            result = self._filters.get(flt)
            if result is None:
                if len(self._filters) > 32:
                    self._filters.clear()
                result = self._filters[flt] = _FilterResult()
            head = self.head
            lo = result.upto + 1
            if lo > head:
                return result.seqs
            candidates = self._candidates(flt, lo, head)
            if not flt.text:
                result.seqs.extend(range(lo, head + 1) if candidates is None else candidates)
                result.upto = head
                return result.seqs
        found = self._text_matches(flt.text, candidates, lo, head, progress)
        with self.lock:
            if result.upto == lo - 1:  # not extended meanwhile by the same filter's other request
                result.seqs.extend(found)
                result.upto = head
            return result.seqs

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
        rids = self.routine_ids
        kinds = self.kind_ids
        return [s for s in range(lo, head + 1)
                if rids[s - 1] == lane and (not kids or kinds[s - 1] in kids)]

    def _text_matches(self, text: str, candidates: list[int] | None, lo: int, hi: int,
                      progress: Callable[[int], None] | None) -> list[int]:
        if candidates is not None and not candidates:
            return []
        wanted = set(candidates) if candidates is not None else None
        needle = text.lower()
        out = []
        for rec in fast_read(self.job, lo, hi):
            seq = rec.seq
            if wanted is not None and seq not in wanted:
                continue
            routine = self.routine_of(seq) or ""
            line = f"{rec.kind} {routine} {summary(rec.data, 1 << 30)}".lower()
            if needle in line:
                out.append(seq)
            if progress is not None and not seq & 0xFFFF:
                progress(seq)
        return out
