"""Time travel: the state at a point, diff, bisect and blame.

State is rebuilt the way ``eventsourcing`` rebuilds an aggregate: the newest snapshot
at or before the target, then the events after it folded in with the one pure
``routilux.projection.apply``. Snapshots hold only the *current* state, so the
append-only history lists are read from the log only when a caller needs them.

* :func:`projection_at`: the projection at a version (the fast building block);
* :func:`state_dict`: a projection as the ``JobState.serialize()`` dict;
* :func:`diff`: field-level differences between two versions;
* :func:`bisect`: the first version where a predicate holds, in O(log n) rebuilds;
* :func:`blame`: every event that changed a field, found by one incremental scan.
"""

from __future__ import annotations

import datetime as _dt
import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

from eventlog import CorruptionError
from eventlog.encoding import decode_event
from routilux.frozen import thaw
from routilux.projection import JobProjection, LoggedEvent, apply, complete_history, ensure_history, fold_raw
from routilux.projection import snapshot_state as _snapshot_state
from routilux.rebuild import rebuild

from .condition import Condition
from .diff import Difference, diff_states, same_value
from .paths import MISSING, FieldPath, parse_path, resolve
from .source import Job, damaged

__all__ = [
    "HISTORY_FIELDS",
    "BisectResult",
    "BlameEntry",
    "ListSummary",
    "bisect",
    "blame",
    "diff",
    "projection_at",
    "state_at",
    "state_dict",
]

#: The append-only lists that snapshots do not hold (rebuilt from the log on demand).
HISTORY_FIELDS = ("execution_history", "shared_log", "output_log", "pause_points")

Progress = Callable[[int], None]


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector during a bulk fold.

    A fold allocates many small containers and no cycles; with the collector on,
    replay runs at less than half the speed (DESIGN.md, "Performance facts").
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


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
        with _no_gc():
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
        version: the first version where the predicate holds (``None``: never, at head).
        ts: that event's timestamp (ns), or ``None``.
        kind: that event's kind, or ``None``.
        data: that event's payload, or ``None``.
        probes: how many states were rebuilt and tested.
        exhaustive: True when every version was tested (an exact "first").
    """

    version: int | None
    ts: int | None
    kind: str | None
    data: Any
    probes: int
    exhaustive: bool


#: How often (in events) :class:`_Rebuilder` keeps an in-memory checkpoint while folding.
CHECKPOINT_EVERY = 4096


class _Rebuilder:
    """Rebuilds projections for many probes, keeping in-memory checkpoints as it folds.

    A log may keep only its newest few snapshots; then every probe below them would
    replay from the first event. While folding, this keeps a copy of the current state
    every ``every`` events, so a later probe starts from the nearest stored snapshot or
    checkpoint, and over a whole bisect each event is folded about once.
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
            with _no_gc():
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


def _evaluator(job: Job, predicate: Callable[[Any], bool]) -> Callable[[int], bool]:
    """Return ``test(version)``: conditions run on the projection, callables on a JobState."""
    if isinstance(predicate, Condition):
        history = _needs_history(predicate.paths)
        rebuild = _Rebuilder(job)

        def test(version: int) -> bool:
            return predicate(rebuild.at(version, history=history))

        return test

    def test_state(version: int) -> bool:
        return bool(predicate(_job_state_at(job, version)))

    return test_state


def _job_state_at(job: Job, version: int) -> Any:
    """A read-only JobState at ``version`` for user callables (snapshot + tail)."""
    return job.job_state().at(version=version)


def bisect(job: Job, predicate: Callable[[Any], bool], *, lo: int = 1, hi: int | None = None,
           exhaustive: bool = False, progress: Progress | None = None) -> BisectResult:
    """Find the first version in ``lo..hi`` at which ``predicate`` holds.

    ``predicate`` is a :class:`~replay_tools.condition.Condition` (evaluated on the
    projection: fast) or any callable taking a read-only ``JobState``.

    Binary search (the default) assumes the predicate stays true once it becomes true
    (like ``git bisect``): it rebuilds O(log n) states and returns a version ``v`` with
    ``predicate(v - 1)`` false and ``predicate(v)`` true. If the predicate flips back and
    forth, ``exhaustive=True`` folds every event once and returns the exact first version.
    """
    hi = job.head if hi is None else job.check_version(hi)
    lo = job.check_version(lo)
    probes = 0
    if exhaustive:
        found, probes = _linear_first(job, predicate, lo, hi, progress)
    else:
        test = _evaluator(job, predicate)
        probes = 1
        if not test(hi):
            return BisectResult(None, None, None, None, probes, False)
        # Invariant: predicate(hi) is true; everything below lo is unknown or false.
        while lo < hi:
            mid = (lo + hi) // 2
            probes += 1
            if test(mid):
                hi = mid
            else:
                lo = mid + 1
            if progress is not None:
                progress(probes)
        found = hi
    if found is None:
        return BisectResult(None, None, None, None, probes, exhaustive)
    rec = job.log.get(found)
    return BisectResult(found, rec.ts, rec.kind, rec.data, probes, exhaustive)


def _linear_first(job: Job, predicate: Callable[[Any], bool], lo: int, hi: int,
                  progress: Progress | None) -> tuple[int | None, int]:
    if not isinstance(predicate, Condition):
        test = _evaluator(job, predicate)
        for version in range(lo, hi + 1):
            if test(version):
                return version, version - lo + 1
        return None, hi - lo + 1
    history = _needs_history(predicate.paths)
    p = projection_at(job, lo, history=history)
    probes = 1
    if predicate(p):
        return lo, probes
    with _no_gc():
        for rec in fast_tuples(job, lo + 1, hi):
            apply(p, rec)
            probes += 1
            if predicate(p):
                return rec.seq, probes
            if progress is not None and probes % 4096 == 0:
                progress(rec.seq)
    return None, probes


# -- blame ----------------------------------------------------------------------------
class BlameEntry(NamedTuple):
    """One event that changed the blamed field.

    Attributes:
        version: the event's seq.
        ts: its timestamp (ns).
        kind: its kind.
        routine_id: the routine that made the change: the event's own ``routine_id``,
            else the one task running at the time (or, when none is marked started yet,
            the one open task), else the job's current routine (``None`` if none is known).
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


def _task_routine(task: Any) -> str | None:
    if isinstance(task, dict):
        for key in ("routine_id", "slot_routine_id", "target_routine_id", "connection_target_routine_id"):
            value = task.get(key)
            if isinstance(value, str):
                return value
    return None


def _acting_routine(p: JobProjection, data: Any) -> str | None:
    if isinstance(data, dict) and isinstance(data.get("routine_id"), str):
        return data["routine_id"]  # type: ignore[no-any-return]
    open_tasks = list(p.open_tasks.values())
    started = [entry for entry in open_tasks if entry.get("state") == "started"]
    # The engine records a task's start lazily, in the job's next batch (routilux
    # _scheduler: "task lifecycle marks"), so a running task's first changes can come
    # before its task_started record. With no task marked started, the only open task
    # is the one running.
    candidates = started if started else open_tasks
    if len(candidates) == 1:
        routine = _task_routine(candidates[0].get("task"))
        if routine is not None:
            return routine
    return p.current_routine_id


def blame(job: Job, field: str | FieldPath, *, start: int = 1, stop: int | None = None,
          progress: Progress | None = None) -> list[BlameEntry]:
    """Return every event in ``start..stop`` that changed ``field``, oldest first.

    One incremental scan: the projection before ``start`` is rebuilt (from a snapshot),
    then each event is applied with ``routilux.projection.apply`` and the field's value
    is compared before and after it.
    """
    path = field if isinstance(field, FieldPath) else parse_path(field)
    stop = job.head if stop is None else job.check_version(stop)
    start = job.check_version(start)
    history = _needs_history([path])
    if start > 1:
        p = projection_at(job, start - 1, history=history)
        prev = _copy(resolve(p, path))
    else:
        # Before job_created nothing exists: the job's creation sets its first values.
        p = JobProjection()
        prev = MISSING
    out: list[BlameEntry] = []
    with _no_gc():
        for rec in fast_tuples(job, start, stop):
            # The routine is read before the event is applied: a task_finished event
            # closes the task whose routine made the change.
            routine = _acting_routine(p, rec.data)
            apply(p, rec)
            cur = resolve(p, path)
            if _changed(prev, cur):
                new = _copy(cur)
                out.append(BlameEntry(rec.seq, rec.ts, rec.kind, routine, prev, new))
                prev = new
            if progress is not None and rec.seq % 4096 == 0:
                progress(rec.seq)
    return out
