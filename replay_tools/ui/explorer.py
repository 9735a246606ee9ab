"""What the page asks for, answered from a job: the API behind ``routilux-replay ui``.

:class:`Explorer` is a thin layer over :mod:`replay_tools` (``projection_at``, ``diff``,
``blame``, ``bisect``, ``verify_job``) and a :class:`~replay_tools.ui.index.JobIndex`.
Every method takes the request's parameters as strings, validates them, and returns
plain JSON-able data (or bytes for the task table). The HTTP server
(:mod:`replay_tools.ui.server`) only routes to these methods; the ``html`` command calls
the same methods to embed their answers in one file, so both show the same thing.

Parameters are validated strictly: versions must be decimal integers inside the log,
kinds and routines must be known ones, texts have a length limit, a condition is parsed
by :func:`replay_tools.condition.parse_condition` and a field by
:func:`replay_tools.paths.parse_path` (nothing is ever evaluated as code). A bad
parameter raises :class:`~replay_tools.ui.errors.BadRequestError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from eventlog import EventLogError, Record

from ..condition import parse_condition
from ..diff import GROUP_TITLES, GROUPS, group_differences
from ..errors import ReplayError
from ..jsonform import iso_utc_ns
from ..paths import MISSING, parse_path
from ..replay import ListSummary, blame, diff, transitions
from ..source import Job
from ..timefmt import format_time
from ..verify import VerifyResult, verify_job
from .display import summary, to_display
from .errors import BadRequestError
from .index import COUNTED_LISTS, Filter, JobIndex
from .routines import RoutinePass, RoutineReader
from .windows import WINDOW, compute_window, iter_windows, window_base

__all__ = ["BLAME_LIMIT", "DIFF_HISTORY_LIMIT", "DIFF_ITEMS", "ROWS_MAX", "Explorer", "Params"]

Params = Mapping[str, Sequence[str]]

#: Most rows one ``rows`` request returns.
ROWS_MAX = 1000
#: Most changes one ``blame`` request returns (``after=`` continues).
BLAME_LIMIT = 2000
#: Blame scans the log in slices of this many events, so it stops soon after the limit.
BLAME_SLICE = 65536
#: Diffs between versions up to this one compare the history lists entry by entry
#: (like ``routilux-replay diff``); beyond it, by their lengths (a full replay each).
DIFF_HISTORY_LIMIT = 100_000
#: Most differences listed per group (the rest are counted).
DIFF_ITEMS = 500
#: Longest text filter, condition or field path accepted.
TEXT_MAX = 1000
#: Complete windows kept in memory.
WINDOW_CACHE = 256
#: Rows not attributed yet get their routines on demand when they span at most this many
#: versions (a rebuild from the nearest snapshot plus this many events: tens of ms).
ON_DEMAND_SPAN = 20_000


def _one(params: Params, name: str, default: str | None = None) -> str | None:
    values = params.get(name)
    if not values:
        return default
    if len(values) > 1:
        raise BadRequestError(name, "given more than once")
    return values[0]


def _int(params: Params, name: str, *, lo: int, hi: int | None = None, default: int | None = None) -> int:
    raw = _one(params, name)
    if raw is None:
        if default is None:
            raise BadRequestError(name, "missing")
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise BadRequestError(name, f"expected a non-negative integer, got {raw[:40]!r}")
    value = int(raw)
    if value < lo or (hi is not None and value > hi):
        upper = "" if hi is None else f"..{hi}"
        raise BadRequestError(name, f"{value} is outside {lo}{upper}")
    return value


def _text(params: Params, name: str, *, required: bool = False) -> str:
    raw = _one(params, name)
    if raw is None or not raw.strip():
        if required:
            raise BadRequestError(name, "missing")
        return ""
    if len(raw) > TEXT_MAX:
        raise BadRequestError(name, f"longer than {TEXT_MAX} characters")
    return raw.strip()


def _flag(params: Params, name: str) -> bool:
    raw = _one(params, name, "0")
    if raw not in ("0", "1"):
        raise BadRequestError(name, "expected 0 or 1")
    return raw == "1"


def _blame_value(value: Any) -> Any:
    if value is MISSING:
        return None
    if isinstance(value, ListSummary):
        return {"length": value.length, "first": to_display(value.first), "last": to_display(value.last)}
    return to_display(value)


class Explorer:
    """Answers the page's questions about one open job (thread-safe).

    Args:
        job: the job, opened read-only by :func:`replay_tools.open_job`.
        location: where it was opened from (a PostgreSQL URL keeps its password here,
            for the verify child process; ``job.path`` hides it).
        index: its index; :meth:`start` runs its first pass (and, with ``follow``, keeps
            it growing with the log) in background threads.
    """

    def __init__(self, job: Job, index: JobIndex | None = None, *, location: str | None = None) -> None:
        self.job = job
        self._location = location if location is not None else job.path
        self.index = index if index is not None else JobIndex(job)
        self.routines = RoutinePass(self.index, self._location)
        self.opened_head = job.head
        self.first_ts = job.first_ts
        # The head's time when opened: the timeline spans the whole run before it is indexed.
        self.opened_ts = self.first_ts
        if self.opened_head:
            with contextlib.suppress(EventLogError, KeyError):  # damage is reported by the index
                self.opened_ts = job.log.get(self.opened_head).ts
        self._windows: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._windows_lock = threading.Lock()
        # One long scan (blame, diff, bisect, a text filter, verify) at a time: on two
        # cores a second one would only slow both and the page's quick requests.
        self._heavy = threading.Lock()
        self._verify: dict[str, Any] = {"state": "pending"}
        self._verify_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._waiting = 0
        self._child: subprocess.Popen[str] | None = None
        self._waiting_lock = threading.Lock()
        self.index.others_waiting = lambda: self._waiting > 0

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Mark a request in progress (the index's first pass gives way to it)."""
        with self._waiting_lock:
            self._waiting += 1
        try:
            yield
        finally:
            with self._waiting_lock:
                self._waiting -= 1

    # -- life cycle --------------------------------------------------------------------------
    def start(self, *, follow: bool = True, verify: bool = True) -> None:
        """Start the index's first pass and the routines' pass, then following and verifying, in threads."""

        def run() -> None:
            self.index.scan(routines=False)
            if verify:  # in its own thread: following a running job must not wait for it
                checker = threading.Thread(target=self._run_verify, name="replay-ui-verify", daemon=True)
                checker.start()
                self._threads.append(checker)
            if follow:
                self.index.follow()

        thread = threading.Thread(target=run, name="replay-ui-index", daemon=True)
        thread.start()
        self._threads.append(thread)
        self.routines.start(follow=follow)

    def stop(self) -> None:
        """Stop the background threads (they finish their current chunk) and a verify child."""
        self.index.stop()
        self.routines.stop()
        child = self._child
        if child is not None and child.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(child.pid, signal.SIGTERM)
        for thread in self._threads:
            thread.join(timeout=5)

    @property
    def head(self) -> int:
        """The newest version the page may show: the index's, or the log's at opening."""
        return max(self.index.head, self.opened_head)

    def _version(self, params: Params, name: str, default: int | None = None) -> int:
        head = self.head
        value = _int(params, name, lo=1, default=default)
        if value > head:
            raise BadRequestError(name, f"version {value} is past the head ({head})")
        return value

    # -- meta ----------------------------------------------------------------------------------
    def meta(self, params: Params | None = None) -> dict[str, Any]:
        """Who the job is, how far the index got, the kinds, routines and group titles."""
        ix = self.index
        with ix.lock:
            error = str(ix.error) if ix.error is not None else None
            kinds, routines, indexed, scanned = list(ix.kinds), list(ix.routines), ix.head, ix.scanned
            attributed = ix.attributed
            failure = ix.failures[0] if ix.failures else None
            last_ts = max(ix.ts[indexed - 1] if indexed else self.first_ts, self.opened_ts)
        head = self.head
        return {
            "mode": "server",
            "job_id": self.job.job_id,
            "flow_id": self.job.flow_id,
            "path": self.job.path,
            "form": self.job.form,
            "head": head,
            "first_time": format_time(self.first_ts),
            "first_time_ns": iso_utc_ns(self.first_ts),
            "span_ms": (last_ts - self.first_ts) / 1e6,
            "indexed": indexed,
            "scanned": scanned,
            "attributed": attributed,
            "index_error": error,
            "kinds": kinds,
            "routines": routines,
            "first_failure": failure,
            "live": self.job.form != "file",
            "window": WINDOW,
            "groups": list(GROUPS),
            "group_titles": dict(GROUP_TITLES),
            "counted": list(COUNTED_LISTS),
            "range": [1, head],
            "left_out": None,
        }

    # -- events ----------------------------------------------------------------------------------
    def _filter(self, params: Params) -> Filter:
        kinds_raw = _text(params, "kinds")
        kinds = frozenset(k for k in kinds_raw.split(",") if k) if kinds_raw else frozenset()
        for kind in kinds:
            if not kind.replace("_", "").isalnum() or len(kind) > 64:
                raise BadRequestError("kinds", f"{kind[:40]!r} is not an event kind")
        routine = _text(params, "routine") or None
        # Control characters are dropped (the page drops them too): a match never spans two atoms.
        text = "".join(ch for ch in _text(params, "text") if ch >= " " and ch != "\x7f").strip()
        return Filter(kinds, routine, text)

    def _records(self, seqs: Sequence[int]) -> list[Record]:
        """The records of ``seqs`` (ascending), read in contiguous runs."""
        out: list[Record] = []
        i = 0
        while i < len(seqs):
            j = i
            while j + 1 < len(seqs) and seqs[j + 1] == seqs[j] + 1:
                j += 1
            out.extend(self.job.read(seqs[i], seqs[j]))
            i = j + 1
        return out

    def routines_of(self, seqs: Sequence[int]) -> dict[int, str | None] | None:
        """The routine of each of ``seqs`` (ascending), by the one attribution rule.

        From the index where it has attributed them; the others are attributed here, from
        the nearest snapshot, when they span at most :data:`ON_DEMAND_SPAN` versions.
        ``None`` when some are not attributed yet and too far apart (the page waits).
        """
        ix = self.index
        with ix.lock:
            done = ix.attributed
            known = {s: ix.routine_of(s) for s in seqs if s <= done}
        rest = [s for s in seqs if s > done]
        if not rest:
            return known
        if rest[-1] - rest[0] >= ON_DEMAND_SPAN:
            return None
        routines = RoutineReader(self.job, rest[0]).read(rest[-1])
        known.update((s, routines[s - rest[0]]) for s in rest)
        return known

    def _rows(self, records: Sequence[Record]) -> tuple[list[list[Any]], int | None]:
        """List rows ``[seq, ms since the first event, time, kind, routine, data]`` for ``records``,
        and the version after which routines are not known yet (``None``: all are known)."""
        routines = self.routines_of([rec.seq for rec in records])
        unknown_after = None if routines is not None else self.index.attributed
        t0 = self.first_ts
        return [[rec.seq, (rec.ts - t0) / 1e6, format_time(rec.ts), rec.kind,
                 routines.get(rec.seq) if routines is not None else None, summary(rec.data)]
                for rec in records], unknown_after

    def _matching(self, flt: Filter) -> tuple[Sequence[int], bool]:
        """The seqs passing ``flt`` so far, and whether they are final for the current head."""
        with self._heavy if flt.text else _NoLock():
            result = self.index.matching(flt)
        ix = self.index
        with ix.lock:
            final = (ix.scanned or ix.error is not None) and result.upto >= ix.head >= self.opened_head
            return result.seqs, final

    def rows(self, params: Params) -> dict[str, Any]:
        """A page of the (filtered) event list: ``from`` (position), ``count``, filter params.

        Each row is ``[seq, ms since the first event, time (UTC), kind, routine, data]``.
        A filtered list covers the events indexed so far (and, with a routine, attributed
        so far): ``complete`` is false while it may still grow, ``upto`` the last version
        it covers. ``routines_after``: rows past this version have no routine known yet.
        """
        flt = self._filter(params)
        start = _int(params, "from", lo=0, default=0)
        count = _int(params, "count", lo=1, hi=ROWS_MAX, default=200)
        if flt.empty:
            total = self.head
            seqs: Sequence[int] = range(start + 1, min(total, start + count) + 1)
            upto, complete = total, True
        else:
            matched, complete = self._matching(flt)
            total = len(matched)
            seqs = matched[start : start + count]
            upto = self.index.reach(flt)
        rows, unknown_after = self._rows(self._records(seqs))
        return {"total": total, "from": start, "rows": rows, "complete": complete, "upto": upto,
                "routines_after": unknown_after}

    def position(self, params: Params) -> dict[str, Any]:
        """Where version ``v`` is in the (filtered) list: the first row at or after it."""
        flt = self._filter(params)
        version = self._version(params, "v")
        if flt.empty:
            return {"position": version - 1}
        from bisect import bisect_left

        matched, _complete = self._matching(flt)
        return {"position": bisect_left(matched, version)}

    def event(self, params: Params) -> dict[str, Any]:
        """One event in full: ``v``."""
        version = self._version(params, "v")
        rec = self.job.log.get(version)
        routines = self.routines_of([version])
        return {"seq": rec.seq, "time": format_time(rec.ts), "time_ns": iso_utc_ns(rec.ts), "kind": rec.kind,
                "routine": routines[version] if routines is not None else None, "data": to_display(rec.data)}

    # -- states ----------------------------------------------------------------------------------
    def window(self, params: Params) -> dict[str, Any]:
        """The window of states holding version ``v`` (see :mod:`replay_tools.ui.windows`)."""
        version = self._version(params, "v")
        return self.window_at(version)

    def window_at(self, version: int, *, lo: int = 1, hi: int | None = None) -> dict[str, Any]:
        """The window holding ``version``, inside ``lo..hi`` (default: the whole log), with counts."""
        base = max(window_base(version), lo)
        full = base == window_base(version)
        if full:
            with self._windows_lock:
                cached = self._windows.get(base)
                if cached is not None:
                    self._windows.move_to_end(base)
                    return cached
        last = min(base + WINDOW - 1, self.head if hi is None else hi)
        win = self._decorate(compute_window(self.job, base, last))
        complete = full and win["last"] == base + WINDOW - 1 and win["counts"] is not None
        if complete:
            with self._windows_lock:
                self._windows[base] = win
                while len(self._windows) > WINDOW_CACHE:
                    self._windows.popitem(last=False)
        return win

    def windows(self, lo: int, hi: int) -> Iterator[dict[str, Any]]:
        """Every window of ``lo..hi`` in order, folded in one pass (for the ``html`` command)."""
        for win in iter_windows(self.job, lo, hi):
            yield self._decorate(win)

    def _decorate(self, win: dict[str, Any]) -> dict[str, Any]:
        """Add the history counts, local times and ms offsets of each version of ``win``."""
        base = win["base"]
        counts = [self.index.counts(v) for v in range(base, win["last"] + 1)]
        win["counts"] = None if any(c is None for c in counts) else [[c[n] for n in COUNTED_LISTS]
                                                                      for c in counts if c is not None]
        stamps = self._timestamps(base, win["last"])
        win["times"] = [format_time(ts) for ts in stamps]
        win["ms"] = [(ts - self.first_ts) / 1e6 for ts in stamps]
        return win

    def _timestamps(self, lo: int, hi: int) -> list[int]:
        ix = self.index
        with ix.lock:
            if hi <= ix.head:
                return list(ix.ts[lo - 1 : hi])
        return [rec.ts for rec in self.job.read(lo, hi)]

    # -- diff, blame, bisect ---------------------------------------------------------------------
    def diff(self, params: Params) -> dict[str, Any]:
        """Differences between versions ``a`` and ``b``, grouped like ``routilux-replay diff``."""
        a = self._version(params, "a")
        b = self._version(params, "b")
        history = max(a, b) <= DIFF_HISTORY_LIMIT
        with self._heavy:
            diffs = diff(self.job, a, b, history=history)
        groups = []
        for group, items in group_differences(diffs).items():
            groups.append({
                "group": group,
                "title": GROUP_TITLES.get(group, group),
                "total": len(items),
                "items": [{"path": d.path, "change": d.change, "old": to_display(d.old), "new": to_display(d.new)}
                          for d in items[:DIFF_ITEMS]],
            })
        out: dict[str, Any] = {"a": a, "b": b, "groups": groups, "history": "entries" if history else "counts"}
        if not history:
            ca, cb = self.index.counts(a), self.index.counts(b)
            if ca is not None and cb is not None:
                out["counts"] = {n: [ca[n], cb[n]] for n in COUNTED_LISTS if ca[n] != cb[n]}
        return out

    def blame(self, params: Params) -> dict[str, Any]:
        """Every event that changed ``path``, from version ``after`` + 1 on (at most BLAME_LIMIT)."""
        text = _text(params, "path", required=True)
        try:
            path = parse_path(text)
        except ReplayError as exc:
            raise BadRequestError("path", str(exc)) from None
        head = self.head
        start = _int(params, "after", lo=0, hi=head, default=0) + 1
        entries: list[Any] = []
        reached = start - 1
        with self._heavy:
            while reached < head and len(entries) < BLAME_LIMIT:
                stop = min(head, reached + BLAME_SLICE)
                entries.extend(blame(self.job, path, start=reached + 1, stop=stop))
                reached = stop
        more = len(entries) > BLAME_LIMIT or reached < head
        if len(entries) > BLAME_LIMIT:
            reached = entries[BLAME_LIMIT - 1].version
            entries = entries[:BLAME_LIMIT]
        return {
            "field": str(path),
            "path": list(path),
            "changes": [{"version": e.version, "time": format_time(e.ts), "kind": e.kind, "routine": e.routine_id,
                         "old": _blame_value(e.old), "new": _blame_value(e.new),
                         "old_exists": e.old is not MISSING, "new_exists": e.new is not MISSING}
                        for e in entries],
            "scanned_to": reached,
            "more": more,
        }

    def bisect(self, params: Params) -> dict[str, Any]:
        """Where condition ``where`` first holds, and every later flip (``routilux-replay bisect --all``).

        ``exhaustive`` is accepted for older pages (every answer is exact now).
        """
        text = _text(params, "where", required=True)
        _flag(params, "exhaustive")
        try:
            cond = parse_condition(text)
        except ReplayError as exc:  # the message names the bad token and its column
            raise BadRequestError("where", str(exc)) from None
        with self._heavy:
            try:
                return bisect_answer(self.job, cond, text, self.head)
            except ReplayError as exc:  # a type mismatch or an unknown field, named with its token
                raise BadRequestError("where", str(exc)) from None

    def failure(self, params: Params | None = None) -> dict[str, Any]:
        """The first version that records a failure (``None`` if none, or not indexed yet)."""
        return {"version": self.index.first_failure(), "scanned": self.index.scanned}

    def version_at(self, params: Params) -> dict[str, Any]:
        """The last version at or before ``ms`` milliseconds after the first event."""
        raw = _text(params, "ms", required=True)
        try:
            ms = float(raw)
        except ValueError:
            raise BadRequestError("ms", f"expected a number, got {raw[:40]!r}") from None
        if not ms >= 0 or ms > 1e15:
            raise BadRequestError("ms", "out of range")
        version = self.index.version_at_ts(self.first_ts + int(ms * 1e6))
        return {"version": max(1, version)}

    # -- verify -------------------------------------------------------------------------------------
    def _run_verify(self) -> None:
        with self._verify_lock:
            if self._verify.get("state") == "running":
                return
            self._verify = {"state": "running"}
        started = time.monotonic()
        try:
            result = self._verify_result()
            self._verify = {"state": "done", "seconds": round(time.monotonic() - started, 2), **result}
        except ReplayError as exc:
            self._verify = {"state": "done", "ok": False, "problems": [{"kind": "open", "message": str(exc)}],
                            "head_hash": None, "head_seq": None, "snapshots_checked": 0, "checks": {}}

    def _verify_result(self) -> dict[str, Any]:
        """``verify_job`` on the job; in a child process when it can, to leave the GIL to the page.

        The child is ``routilux-replay verify --json`` on the same location (its result is
        the same function's); a keyed job is verified here, so its key never leaves
        this process, and so is a PostgreSQL job (its URL may hold a password).
        """
        if self.job.key is None and self.job.form != "postgres":  # a database URL may hold a password: not in argv
            cmd = [sys.executable, "-m", "replay_tools", "verify", self._location, "--json"]
            try:
                # Its own process group: stop() ends it together with the helpers it starts.
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                        start_new_session=True,
                                        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
                self._child = proc
                out, _err = proc.communicate()
                data = json.loads(out)
                if isinstance(data, dict) and "ok" in data:
                    return data
            except (OSError, ValueError, subprocess.SubprocessError):
                pass  # verify here instead
            finally:
                self._child = None
            if self.index.stopped:
                msg = "verify was stopped"
                raise ReplayError(msg)
        with self._heavy:
            result: VerifyResult = verify_job(self.job)
        return result.to_json()

    def verify(self, params: Params) -> dict[str, Any]:
        """The verify result (``again=1`` starts a new check in the background)."""
        if _flag(params, "again") and self._verify.get("state") != "running":
            thread = threading.Thread(target=self._run_verify, name="replay-ui-verify", daemon=True)
            thread.start()
            self._verify = {"state": "running"}
        return dict(self._verify)

    # -- timeline -----------------------------------------------------------------------------------
    def timeline(self, params: Params) -> dict[str, Any]:
        """Lanes, marks and pauses of the timeline, changed after ``since`` (0: everything)."""
        since = _int(params, "since", lo=0, default=0)
        ix = self.index
        with ix.lock:
            ts = ix.ts
            t0 = self.first_ts

            def ms(seq: int) -> float:
                return (ts[seq - 1] - t0) / 1e6 if seq else -1.0

            marks = [[seq, lane, kind, ms(seq)] for seq, lane, kind in ix.marks if seq > since]
            pauses = [[p0, p1, ms(p0), ms(p1)] for p0, p1 in ix.pauses if p0 > since or p1 == 0 or p1 > since]
            return {"since": since, "upto": ix.head, "routines": list(ix.routines), "marks": marks,
                    "pauses": pauses, "end_ms": ms(ix.head), "tasks": len(ix.task_ids),
                    "failures": list(ix.failures[:1000])}

    def tasks_binary(self, params: Params) -> bytes:
        """Tasks changed after ``since``, packed for the timeline (see :func:`pack_tasks`)."""
        since = _int(params, "since", lo=0, default=0)
        return pack_tasks(self.index, since)


#: Most transitions one bisect answer lists (the rest are counted).
TRANSITIONS_MAX = 1000


def bisect_answer(job: Job, cond: Any, text: str, head: int) -> dict[str, Any]:
    """The page's bisect answer for ``cond`` over versions ``1..head``: the first version where
    it holds and every flip after it (one exact scan: :func:`replay_tools.replay.transitions`)."""
    flips: list[dict[str, Any]] = []
    count = 0
    for t in transitions(job, cond, hi=head):
        count += 1
        if len(flips) < TRANSITIONS_MAX:
            flips.append({"version": t.version, "holds": t.holds, "kind": t.kind, "time": format_time(t.ts)})
    first = next((f for f in flips if f["holds"]), None)
    return {"condition": text, "version": first["version"] if first else None,
            "kind": first["kind"] if first else None, "time": first["time"] if first else None,
            "transitions": flips, "transitions_total": count, "upto": head,
            "holds_at_end": bool(flips) and flips[-1]["holds"]}


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def pack_tasks(index: JobIndex, since: int = 0, keep: Callable[[int, int, int], bool] | None = None) -> bytes:
    """The tasks changed after ``since`` as little-endian columns, for a ``DataView`` in the page.

    Layout: ``u32 n``, ``u32 0`` (padding), then ``f64 queued_ms[n]``, ``f64 started_ms[n]``,
    ``f64 ended_ms[n]`` (milliseconds after the first event; -1 when not recorded),
    ``i32 row[n]``, ``i32 lane[n]``, ``i32 queued_seq[n]``, ``i32 ended_seq[n]``,
    ``u8 state[n]`` (0 queued, 1 started, 2 finished, 3 failed). ``keep(queued, started,
    ended)`` may leave tasks out (the ``html`` command keeps those in its range).
    """
    rows = index.tasks_since(since)
    if keep is not None:
        rows = [r for r in rows if keep(r.queued, r.started, r.ended)]
    with index.lock:
        ts = index.ts
        t0 = index.ts[0] if index.head else 0

        def ms(seq: int) -> float:
            return (ts[seq - 1] - t0) / 1e6 if seq else -1.0

        parts = [struct.pack("<II", len(rows), 0)]
        for times in ([ms(r.queued) for r in rows], [ms(r.started) for r in rows], [ms(r.ended) for r in rows]):
            parts.append(_little(array("d", times)))
        for ints in ([r.row for r in rows], [r.lane for r in rows], [r.queued for r in rows], [r.ended for r in rows]):
            parts.append(_little(array("i", ints)))
        parts.append(bytes(r.state for r in rows))
    return b"".join(parts)


def _little(column: array[Any]) -> bytes:
    import sys

    if sys.byteorder != "little":
        column = array(column.typecode, column)
        column.byteswap()
    return column.tobytes()
