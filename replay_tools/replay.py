"""Time travel: the state at a point, diff, bisect and blame.

State is rebuilt the way ``eventsourcing`` rebuilds an aggregate: the newest snapshot
at or before the target, then the events after it folded in with the one pure
``routilux.projection.apply``. Snapshots hold only the *current* state, so the
append-only history lists are read from the log only when a caller needs them.

* :func:`projection_at`: the projection at a version (the fast building block);
* :func:`state_dict`: a projection as the ``JobState.serialize()`` dict;
* :func:`diff`: field-level differences between two versions;
* :func:`bisect`: the first version where a condition holds, by an incremental scan of
  the events that can change the fields it reads (:mod:`replay_tools.scan`), or by
  binary search when the caller knows it stays true once true;
* :func:`transitions`: every version where a condition becomes true or false;
* :func:`blame` / :func:`iter_blame`: every event that changed a field, with the routine
  that made the change (:mod:`replay_tools.attribution`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, NamedTuple

from eventlog import CorruptionError
from eventlog.encoding import decode_event
from routilux.frozen import thaw
from routilux.job_events import EDIT_KINDS, KINDS
from routilux.projection import JobProjection, LoggedEvent, complete_history, ensure_history, fold_raw
from routilux.projection import snapshot_state as _snapshot_state
from routilux.rebuild import rebuild

from .attribution import ATTRIBUTION_KINDS, acting_routine, last_actor_before
from .condition import Condition, FieldUse, parse_field, unknown_field
from .diff import Difference, diff_states, same_value
from .paths import MISSING, FieldPath, resolve
from .scan import EventFilter, ScanStats, apply_sparse, no_gc, relevant_events
from .source import Job, damaged

__all__ = [
    "HISTORY_FIELDS",
    "BisectResult",
    "BlameEntry",
    "ListSummary",
    "Transition",
    "bisect",
    "blame",
    "decode_raw",
    "diff",
    "iter_blame",
    "projection_at",
    "state_at",
    "state_dict",
    "transitions",
]

#: The append-only lists that snapshots do not hold (rebuilt from the log on demand).
HISTORY_FIELDS = ("execution_history", "shared_log", "output_log", "pause_points")

Progress = Callable[[int], None]


def decode_raw(job: Job, seq: int, event_bytes: bytes) -> tuple[str, Any]:
    """Decode one event's raw bytes into ``(kind, data)`` (eventlog's one decoder)."""
    return decode_event(event_bytes, where=job.path, seq=seq)


def fast_tuples(job: Job, start: int = 1, stop: int | None = None) -> Iterator[LoggedEvent]:
    """Yield the events ``start..stop`` as :class:`~routilux.projection.LoggedEvent` s.

    Each carries its decoded data and its stored bytes, so :func:`routilux.projection.apply`
    folds it without encoding it again. Damage is reported as the job's
    :class:`~replay_tools.errors.DamagedLogError`.
    """
    where = job.path
    try:
        for seq, ts, event_bytes in job.log.read_raw(start, stop):
            kind, data = decode_event(event_bytes, where=where, seq=seq)
            yield LoggedEvent(seq, ts, kind, data, event_bytes)
    except CorruptionError as exc:
        raise damaged(job.path, exc) from None


def fast_read(job: Job, start: int = 1, stop: int | None = None) -> Iterator[LoggedEvent]:
    """The same as :func:`fast_tuples` (a LoggedEvent has a Record's ``seq``/``ts``/``kind``/``data``)."""
    return fast_tuples(job, start, stop)


def _raw(job: Job, start: int, stop: int) -> Iterator[tuple[int, int, bytes]]:
    try:
        yield from job.log.read_raw(start, stop)
    except CorruptionError as exc:
        raise damaged(job.path, exc) from None


def _needs_history(paths: Sequence[Sequence[str]]) -> bool:
    return any(path and path[0] in HISTORY_FIELDS for path in paths)


def _detach(p: JobProjection, history: bool) -> JobProjection:
    """Make ``p`` build its history lists as later events are applied (blame, bisect).

    With ``history`` the lists are completed from the log first; without, they are
    declared to start after ``p.version`` (the part before is not needed).
    """
    if history:
        ensure_history(p)
    else:
        p.history_from = p.history_upto = p.version
    p.history_source = None
    return p


def projection_at(job: Job, version: int | None = None, *, history: bool = False) -> JobProjection:
    """Return the job's projection after event ``version`` (default: the head).

    Built by the one rebuild (:func:`routilux.rebuild.rebuild`): the newest snapshot
    ``<= version`` and the events after it. With ``history=True`` the history lists are
    completed from the start of the log.
    """
    version = job.head if version is None else job.check_version(version)
    try:
        with no_gc():
            return _detach(rebuild(job.log, version, where=job.path), history)
    except CorruptionError as exc:
        raise damaged(job.path, exc) from None


def state_at(job: Job, version: int | None = None, *, time: _dt.datetime | None = None) -> Any:
    """Return a read-only ``JobState`` of ``job`` at ``version`` and/or ``time`` (default: head).

    ``time`` (naive = local time) includes every event whose user-visible timestamp is
    at or before it. The JobState is built from the newest snapshot at or before the
    point plus the events after it; its history lists are read on first access.

    Raises:
        BadPointError: the version is outside the log, or the time is before its start.
    """
    if time is not None:
        at_time = job.version_at(time)
        version = at_time if version is None else min(job.check_version(version), at_time)
    version = job.head if version is None else job.check_version(version)
    return job.job_state().at(version=version)


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def state_dict(p: JobProjection, *, history: bool = True) -> dict[str, Any]:
    """Return ``p`` as the dict ``JobState.serialize()`` gives (plain types, ISO times).

    Same keys, order and conversions as ``routilux.job_state.JobState.serialize`` (a
    test checks they agree). With ``history=False`` the four history lists are left out:
    they need the whole log when ``p`` was rebuilt from a snapshot.
    """
    if history and p.history_from:
        msg = "the projection's history lists are incomplete; build it with history=True"
        raise ValueError(msg)
    out: dict[str, Any] = {
        "_type": "JobState",
        "flow_id": p.flow_id,
        "job_id": p.job_id,
        "status": p.status,
        "current_routine_id": p.current_routine_id,
        "routine_states": thaw(p.routine_states),
    }
    if history:
        out["execution_history"] = [rec.serialize() for rec in p.execution_history]
    out["created_at"] = _iso(p.created_at)
    out["updated_at"] = _iso(p.updated_at)
    if history:
        out["pause_points"] = thaw(p.pause_points)
    out["pending_tasks"] = thaw(p.pending_tasks)
    out["deferred_events"] = thaw(p.deferred_events)
    out["shared_data"] = thaw(p.shared_data)
    if history:
        out["shared_log"] = thaw(p.shared_log)
        out["output_log"] = thaw(p.output_log)
    return out


def diff(job: Job, a: int, b: int, *, history: bool = True) -> list[Difference]:
    """Return the field-level differences from version ``a`` to version ``b``."""
    pa = projection_at(job, a, history=history)
    pb = projection_at(job, b, history=history)
    return diff_states(state_dict(pa, history=history), state_dict(pb, history=history))


# -- bisect ---------------------------------------------------------------------------
class BisectResult(NamedTuple):
    """The outcome of :func:`bisect`.

    Attributes:
        version: the first version where the condition holds (``None``: at no version).
        ts: that event's timestamp (ns), or ``None``.
        kind: that event's kind, or ``None``.
        data: that event's payload, or ``None``.
        probes: how many states the condition was evaluated on.
        exhaustive: True when the answer is exact for any condition (the default scan);
            False for the binary search of ``assume_monotonic``.
        events_read: events the scan read (0 for a binary search); the rest of the log
            was passed over thanks to snapshot counters.
        lo: the first version searched.
        hi: the last version searched.
    """

    version: int | None
    ts: int | None
    kind: str | None
    data: Any
    probes: int
    exhaustive: bool
    events_read: int = 0
    lo: int = 1
    hi: int = 0


class Transition(NamedTuple):
    """A version where a condition changes: ``holds`` is its value from that version on.

    Attributes:
        version: the event's seq; ts, kind, data: that event's.
        holds: True where the condition becomes true, False where it becomes false.
    """

    version: int
    ts: int
    kind: str
    data: Any
    holds: bool


#: How often (in events) :class:`_Rebuilder` keeps an in-memory checkpoint while folding.
CHECKPOINT_EVERY = 4096


class _Rebuilder:
    """Rebuilds projections for many probes, keeping in-memory checkpoints as it folds.

    A log may keep only its newest few snapshots; then every probe below them would
    replay from the first event. While folding, this keeps a copy of the current state
    every ``every`` events, so a later probe starts from the nearest stored snapshot or
    checkpoint, and over a whole binary search each event is folded about once.
    """

    def __init__(self, job: Job, every: int | None = None) -> None:
        self.job = job
        self.every = CHECKPOINT_EVERY if every is None else every
        self.checkpoints: dict[int, dict[str, Any]] = {}

    def at(self, version: int, *, history: bool) -> JobProjection:
        job = self.job
        every = self.every
        mine = max((seq for seq in self.checkpoints if seq <= version), default=0)
        base = (mine, self.checkpoints[mine]) if mine else None
        # Stop at each multiple of ``every`` on the way (not too close to ``version``) and
        # keep a copy of the state there for later probes.
        marks = range((mine // every + 1) * every, version - every + 1, every)
        p: JobProjection | None = None
        try:
            with no_gc():
                for stop in (*marks, version):
                    if p is None:  # the one rebuild, from the best snapshot or checkpoint
                        p = _detach(rebuild(job.log, stop, where=job.path, base=base), False)
                    else:
                        fold_raw(p, _raw(job, p.version + 1, stop))
                    if stop != version:
                        self.checkpoints[stop] = thaw(_snapshot_state(p))
                assert p is not None
                if history and p.history_from:
                    complete_history(p, fast_tuples(job, 1, p.history_from))
        except CorruptionError as exc:
            raise damaged(job.path, exc) from None
        return p


def _job_state_at(job: Job, version: int) -> Any:
    """A read-only JobState at ``version`` for user callables (snapshot + tail)."""
    return job.job_state().at(version=version)


class _Watch:
    """Evaluates a condition at versions and remembers which of its fields ever existed."""

    def __init__(self, cond: Condition) -> None:
        self.cond = cond
        self.evaluate = cond.evaluate
        self.pending: list[FieldUse] = [u for u in cond.uses if u.needs_existence]
        self.seen: set[FieldPath] = set()
        self.probes = 0

    def __call__(self, state: Any, version: int) -> bool:
        self.probes += 1
        if self.pending:
            self._see(state)
        return self.evaluate(state, version)

    def _see(self, state: Any) -> None:
        for use in list(self.pending):
            if resolve(state, use.path) is not MISSING:
                self.seen.add(use.path)
                self.pending.remove(use)

    def check_known(self, job: Job) -> None:
        """Raise UnknownFieldError for a field seen at no version (the head counts too)."""
        if not self.pending:
            return
        head = projection_at(job, job.head, history=_needs_history([u.path for u in self.pending]))
        self.cond.check_known(self.seen, known_at=head)


def _start_state(job: Job, lo: int, history: bool) -> JobProjection:
    """The projection just before version ``lo`` (empty before version 1)."""
    return JobProjection() if lo <= 1 else projection_at(job, lo - 1, history=history)


def transitions(job: Job, cond: Condition, *, lo: int = 1, hi: int | None = None, allow_missing: bool = False,
                progress: Progress | None = None, stats: ScanStats | None = None) -> Iterator[Transition]:
    """Yield every version in ``lo..hi`` where ``cond`` becomes true or false, in order.

    The first transition is where it first holds (a condition that holds at ``lo``
    yields a transition at ``lo``); then each flip. One incremental scan (see
    :mod:`replay_tools.scan`), exact for any condition.

    Raises:
        ConditionTypeError: a comparison of mismatched types at some version.
        UnknownFieldError: a field that exists at no version (unless ``allow_missing``).
    """
    hi = job.head if hi is None else job.check_version(hi)
    lo = job.check_version(lo)
    stats = stats if stats is not None else ScanStats()
    watch = _Watch(cond)
    flt = EventFilter(cond.paths)
    p = _start_state(job, lo, _needs_history(cond.paths))
    held = False
    pending_lo = True
    with no_gc():
        for item in relevant_events(job, flt, lo, hi, stats, progress=progress):
            seq, ts, kind, data = item.seq, item.ts, item.kind, item.data
            if pending_lo and seq > lo:
                held = watch(p, lo)  # the state before `seq` (unchanged since lo)
                if held:
                    rec = job.log.get(lo)
                    yield Transition(lo, rec.ts, rec.kind, rec.data, True)
            pending_lo = False
            apply_sparse(p, item)
            now = watch(p, seq)
            if now != held:
                held = now
                yield Transition(seq, ts, kind, data, now)
        if pending_lo and watch(p, lo):
            rec = job.log.get(lo)
            yield Transition(lo, rec.ts, rec.kind, rec.data, True)
    if not allow_missing:
        watch.check_known(job)


def bisect(job: Job, predicate: Callable[[Any], bool], *, lo: int = 1, hi: int | None = None,
           assume_monotonic: bool = False, allow_missing: bool = False, exhaustive: bool | None = None,
           progress: Progress | None = None) -> BisectResult:
    """Find the first version in ``lo..hi`` at which ``predicate`` holds.

    ``predicate`` is a :class:`~replay_tools.condition.Condition` (evaluated on the
    projection: fast) or any callable taking a read-only ``JobState``.

    By default the answer is exact for every condition, also one that becomes true and
    later false again: an incremental scan evaluates a Condition at every version where
    one of its fields can change (a callable at every version). With
    ``assume_monotonic=True`` a binary search (like ``git bisect``) rebuilds O(log n)
    states instead; it is right only if the predicate stays true once it holds.
    ``exhaustive`` is accepted for compatibility (the default scan is exhaustive).

    Raises:
        ConditionTypeError, UnknownFieldError: see :func:`transitions`.
    """
    del exhaustive  # the scan is always exact; kept so older callers keep working
    hi = job.head if hi is None else job.check_version(hi)
    lo = job.check_version(lo)
    if assume_monotonic:
        return _binary(job, predicate, lo, hi, allow_missing, progress)
    if not isinstance(predicate, Condition):
        for version in range(lo, hi + 1):
            if progress is not None and version % 4096 == 0:
                progress(version)
            if predicate(_job_state_at(job, version)):
                return _found(job, version, version - lo + 1, True, version - lo + 1, lo, hi)
        return BisectResult(None, None, None, None, hi - lo + 1, True, hi - lo + 1, lo, hi)
    stats = ScanStats()
    watch = _Watch(predicate)
    flt = EventFilter(predicate.paths)
    p = _start_state(job, lo, _needs_history(predicate.paths))
    found: int | None = None
    with no_gc():
        pending_lo = True
        # Only folded (the answer's record is read again): no need to decode each event.
        for item in relevant_events(job, flt, lo, hi, stats, progress=progress, with_data=False):
            seq = item[0]
            if pending_lo and seq > lo and watch(p, lo):
                found = lo
                break
            pending_lo = False
            apply_sparse(p, item)
            if watch(p, seq):
                found = seq
                break
        else:
            if pending_lo and watch(p, lo):
                found = lo
    if not allow_missing:
        watch.check_known(job)
    if found is None:
        return BisectResult(None, None, None, None, watch.probes, True, stats.read, lo, hi)
    return _found(job, found, watch.probes, True, stats.read, lo, hi)


def _found(job: Job, version: int, probes: int, exhaustive: bool, read: int, lo: int, hi: int) -> BisectResult:
    rec = job.log.get(version)
    return BisectResult(version, rec.ts, rec.kind, rec.data, probes, exhaustive, read, lo, hi)


def _binary(job: Job, predicate: Callable[[Any], bool], lo: int, hi: int, allow_missing: bool,
            progress: Progress | None) -> BisectResult:
    """Binary search, assuming the predicate stays true once true (O(log n) rebuilds)."""
    first = lo
    if isinstance(predicate, Condition):
        watch = _Watch(predicate)
        history = _needs_history(predicate.paths)
        rebuild = _Rebuilder(job)

        def test(version: int) -> bool:
            return watch(rebuild.at(version, history=history), version)
    else:
        watch = None

        def test(version: int) -> bool:
            return bool(predicate(_job_state_at(job, version)))

    probes = 1
    holds = test(hi)
    if holds:
        # Invariant: the predicate holds at hi; below lo it is false or unknown.
        while lo < hi:
            mid = (lo + hi) // 2
            probes += 1
            if test(mid):
                hi = mid
            else:
                lo = mid + 1
            if progress is not None:
                progress(probes)
    if watch is not None and not allow_missing:
        watch.check_known(job)
    if not holds:
        return BisectResult(None, None, None, None, probes, False, 0, first, hi)
    return _found(job, hi, probes, False, 0, first, job.head)


# -- blame ----------------------------------------------------------------------------
class BlameEntry(NamedTuple):
    """One event that changed the blamed field.

    Attributes:
        version: the event's seq.
        ts: its timestamp (ns).
        kind: its kind.
        routine_id: the routine the event belongs to (:func:`~replay_tools.attribution.acting_routine`:
            the one rule every command uses), or ``None``.
        old: the field's value before (:data:`~replay_tools.paths.MISSING` if absent), as
            plain data (a list longer than :data:`LONG_LIST` as a :class:`ListSummary`).
        new: the value after (:data:`~replay_tools.paths.MISSING` if removed).
    """

    version: int
    ts: int
    kind: str
    routine_id: str | None
    old: Any
    new: Any


_SCALARS = (type(None), bool, int, float, str, bytes)


#: Lists longer than this are tracked by blame as a summary (length, first and last
#: entry) rather than copied and compared whole after every event, which would cost
#: O(n) per event on the append-only history lists and O(n^2) over a scan.
LONG_LIST = 64


class ListSummary(NamedTuple):
    """What :func:`blame` reports for a list longer than :data:`LONG_LIST`."""

    length: int
    first: Any
    last: Any


def _copy(value: Any) -> Any:
    if isinstance(value, _SCALARS) or value is MISSING:
        return value
    if isinstance(value, list) and len(value) > LONG_LIST:
        return ListSummary(len(value), _plain(value[0]), _plain(value[-1]))
    return thaw(value) if not isinstance(value, list) else [_plain(v) for v in value]


def _plain(item: Any) -> Any:
    # History entries are ExecutionRecords: compare and report them as their dicts.
    return item.serialize() if hasattr(item, "serialize") else thaw(item)


def _changed(prev: Any, cur: Any) -> bool:
    if prev is MISSING or cur is MISSING:
        return prev is not cur
    if isinstance(prev, ListSummary):
        if not isinstance(cur, list) or len(cur) != prev.length:
            return True
        return not (same_value(prev.first, _plain(cur[0])) and same_value(prev.last, _plain(cur[-1])))
    if isinstance(prev, list) and isinstance(cur, list):
        if len(prev) != len(cur):
            return True  # cheap test first: append-only lists change length
        return not same_value(prev, [_plain(v) for v in cur])
    return not same_value(prev, cur)


def _edits_inside(kind: str, data: Any) -> bool:
    """Whether an event is an in-place edit of one value (not of a whole map): it can change
    a long list anywhere, which its summary (length, first, last) would not show."""
    if kind not in EDIT_KINDS or not isinstance(data, dict):
        return False
    key_field = KINDS[kind].key
    return key_field is None or data.get(key_field) is not None


def _last_actor_finder(job: Job, seq: int) -> Callable[[Collection[str]], str | None]:
    """Finds the last actor before ``seq`` only if attribution needs it (several open tasks)."""
    def find(_candidates: Collection[str]) -> str | None:
        return last_actor_before(job, seq)

    return find


def iter_blame(job: Job, field: str | FieldPath, *, start: int = 1, stop: int | None = None,
               progress: Progress | None = None, stats: ScanStats | None = None) -> Iterator[BlameEntry]:
    """Yield every event in ``start..stop`` that changed ``field``, oldest first, as found.

    One incremental scan (:mod:`replay_tools.scan`): only the events that can change the
    field (and the task events the routine attribution needs) are decoded and folded.

    Raises:
        FieldPathError, UnknownFieldError: ``field`` does not parse, or names no field
            of a job's state; after the scan, a field that exists at no version.
    """
    text = str(field)
    path = field if isinstance(field, FieldPath) else parse_field(field)
    stop = job.head if stop is None else job.check_version(stop)
    start = job.check_version(start)
    history = _needs_history([path])
    p = _start_state(job, start, history)
    prev = MISSING if start <= 1 else _copy(resolve(p, path))
    changes = EventFilter([path])
    flt = EventFilter([path], extra_kinds=ATTRIBUTION_KINDS)
    stats = stats if stats is not None else ScanStats()
    existed = prev is not MISSING
    with no_gc():
        for item in relevant_events(job, flt, start, stop, stats, progress=progress):
            seq, ts, kind, data = item.seq, item.ts, item.kind, item.data
            # Judged before the event is applied: a task_finished closes the task whose
            # routine made the change.
            routine = acting_routine(p, kind, data, _last_actor_finder(job, seq))
            apply_sparse(p, item)
            if not changes.wants(kind, data):
                continue
            cur = resolve(p, path)
            if _changed(prev, cur) or (isinstance(prev, ListSummary) and _edits_inside(kind, data)):
                new = _copy(cur)
                yield BlameEntry(seq, ts, kind, routine, prev, new)
                prev = new
                existed = True
    if not existed and resolve(projection_at(job, job.head, history=history), path) is MISSING:
        use = FieldUse(path, 1, text, True)
        raise unknown_field(text, use, projection_at(job, job.head, history=history), what="field path")


def blame(job: Job, field: str | FieldPath, *, start: int = 1, stop: int | None = None,
          progress: Progress | None = None) -> list[BlameEntry]:
    """Every event in ``start..stop`` that changed ``field``, oldest first (see :func:`iter_blame`)."""
    return list(iter_blame(job, field, start=start, stop=stop, progress=progress))
