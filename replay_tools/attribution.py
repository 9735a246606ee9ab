"""Which routine an event belongs to: the one rule every command uses.

``events`` (its ROUTINE column and ``--routine``), ``tail``, ``blame`` and ``bisect``
all call :func:`acting_routine`, so the routine named for an event is the same wherever
it is shown. The rule, judged on the job's state just *before* the event:

1. the event names a routine in its payload (``routine_id``): that routine;
2. ``task_queued``: the routine the queued task will run;
3. ``task_started`` / ``task_finished`` / ``task_failed``: the routine of that task;
4. otherwise a routine with an open task (queued or started, not finished): the only
   one if there is one; if several, the one that most recently named itself in an
   event (its *last actor*: the ``routine_id`` of the newest earlier event that has
   one), else the only one marked started;
5. otherwise the job's current routine (``current_routine_id``), or none.

Why open tasks rather than ``task_started``: the engine records a task's start lazily,
in the job's next batch, so a running task's first changes usually come before its
``task_started`` (and a short task may finish without one). Why the last actor: when a
routine hands work on, the next task is queued while the first is still open, and the
first change of the next routine comes before either mark; the routine that just
named itself (``output_sent``, ``execution_recorded``, ...) is the one running.

Only the open tasks, the current routine and the last actor are needed, so a scan that
wants routines applies :data:`ATTRIBUTION_KINDS` besides the kinds it needs, and asks
:func:`last_actor_before` (a short backward read) only in the rare case of several open
tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from routilux import events as ev
from routilux.projection import LoggedEvent

__all__ = ["ATTRIBUTION_KINDS", "Attributor", "acting_routine", "actor_of", "last_actor_before", "task_routine"]

#: The event kinds that change what :func:`acting_routine` reads from the state (the
#: open tasks and the current routine), from the one declaration in routilux.job_events.
ATTRIBUTION_KINDS = (ev.kinds_touching("open_tasks") or frozenset()) | (ev.kinds_touching("current_routine_id")
                                                                        or frozenset())
_TASK_CLOSING = frozenset({ev.TASK_STARTED, ev.TASK_FINISHED, ev.TASK_FAILED})
_TASK_KEYS = ("routine_id", "slot_routine_id", "target_routine_id", "connection_target_routine_id")

#: ``last_actor``: a routine id, ``None``, or a function of the candidate routines that
#: finds it (so it is computed only when several tasks are open).
LastActor = str | None | Callable[[Collection[str]], "str | None"]


def task_routine(task: Any) -> str | None:
    """The routine a recorded task runs (its ``routine_id``, or an older key naming it)."""
    if isinstance(task, dict):
        for key in _TASK_KEYS:
            value = task.get(key)
            if isinstance(value, str):
                return value
    return None


def actor_of(data: Any) -> str | None:
    """The routine an event's payload names as its own (``routine_id``), if any."""
    if isinstance(data, dict):
        rid = data.get("routine_id")
        if isinstance(rid, str):
            return rid
    return None


def acting_routine(state: Any, kind: str, data: Any, last_actor: LastActor = None) -> str | None:
    """The routine event ``(kind, data)`` belongs to, judged on ``state`` just before it.

    Args:
        state: a projection (anything with ``open_tasks`` and ``current_routine_id``)
            with at least the :data:`ATTRIBUTION_KINDS` events before this one applied.
        kind, data: the event.
        last_actor: the ``routine_id`` of the newest earlier event that names one, or a
            function returning it for the given candidate routines (rule 4).
    """
    named = actor_of(data)
    if named is not None:
        return named
    if isinstance(data, dict):
        if kind == ev.TASK_QUEUED:
            routine = task_routine(data.get("task"))
            if routine is not None:
                return routine
        elif kind in _TASK_CLOSING:
            entry = state.open_tasks.get(data.get("task_id"))
            if entry is not None:
                routine = task_routine(entry.get("task"))
                if routine is not None:
                    return routine
    open_tasks = state.open_tasks
    if open_tasks:
        routines: dict[str, bool] = {}  # routine -> has a started task
        for entry in open_tasks.values():
            routine = task_routine(entry.get("task"))
            if routine is not None:
                routines[routine] = routines.get(routine, False) or entry.get("state") == "started"
        if len(routines) == 1:
            return next(iter(routines))
        if routines:
            actor = last_actor(routines.keys()) if callable(last_actor) else last_actor
            if actor in routines:
                return actor
            started = [r for r, on in routines.items() if on]
            if len(started) == 1:
                return started[0]
    current = state.current_routine_id
    return current if isinstance(current, str) else None


def last_actor_before(job: Any, seq: int) -> str | None:
    """The ``routine_id`` of the newest event before ``seq`` that names one (read backwards)."""
    from .replay import fast_tuples

    hi = seq - 1
    step = 64
    while hi >= 1:
        lo = max(1, hi - step + 1)
        for rec in reversed(list(fast_tuples(job, lo, hi))):
            actor = actor_of(rec.data)
            if actor is not None:
                return actor
        hi = lo - 1
        step = min(step * 4, 65536)
    return None


class Attributor:
    """Follows a forward read of a job's events and names each event's routine.

    Call :meth:`routine` with each event before :meth:`observe` with it. ``state`` is the
    projection just before the first event to come (it is folded forward sparsely:
    only :data:`ATTRIBUTION_KINDS`), ``last_actor`` the last actor before it.
    """

    __slots__ = ("last_actor", "state")

    def __init__(self, state: Any, last_actor: str | None = None) -> None:
        self.state = state
        self.last_actor = last_actor

    @classmethod
    def at(cls, job: Any, start: int) -> Attributor:
        """An attributor for a read that starts at version ``start``."""
        from routilux.projection import JobProjection

        from .replay import projection_at

        if start <= 1:
            return cls(JobProjection())
        return cls(projection_at(job, start - 1, history=False), last_actor_before(job, start))

    def routine(self, kind: str, data: Any) -> str | None:
        """The routine of the next event (see the module doc)."""
        return acting_routine(self.state, kind, data, self.last_actor)

    def observe(self, item: LoggedEvent | tuple[int, int, str, Any]) -> None:
        """Take the event ``(seq, ts, kind, data)`` into account for the ones after it."""
        from .scan import apply_sparse

        actor = actor_of(item[3])
        if actor is not None:
            self.last_actor = actor
        if item[2] in ATTRIBUTION_KINDS:
            apply_sparse(self.state, item)
