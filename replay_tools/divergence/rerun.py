"""Re-run a recorded job with current code and report the first divergent event.

:func:`rerun` reads the recorded job's inputs (:func:`~.script.actions_of`), performs
them on a fresh flow from a factory, and compares the two event streams
(:func:`~.compare.compare_events`). For the first divergence it also gives:

* the field-level difference of the job state right after it: the recorded state at
  that version, next to the same state with the new run's event in place of the
  recorded one, so the difference shows exactly what the divergent event changed;
* the routine and the task that produced the event, as the recorded log tells them.

The flow version each side declares (``Flow(version=...)``) is reported as well, so a
divergence caused by a code change is named as such.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import attrs

from routilux import JobState
from routilux import events as ev
from routilux.errors import ReplayError as FoldError
from routilux.job_state import JobEvent

from ..diff import Difference
from ..source import open_job
from .compare import Comparison, Divergence, compare_events, state_changes
from .rules import CompareRules
from .script import DEFAULT_TIMEOUT, Action, FlowFactory, actions_of, flow_version_of, run_actions

__all__ = ["RerunReport", "TaskRef", "explain", "producing_task", "read_events", "rerun"]


@attrs.frozen
class TaskRef:
    """The task whose handler produced an event, as the recorded log tells it.

    Attributes:
        task_id: the task's id in the recorded job.
        routine_id: the routine it ran (its id in the flow).
        slot: the slot it delivered to (``trigger`` for an entry task).
        source: ``(routine id, event name)`` that queued it, or None for an entry task.
        queued_at: the version of its ``task_queued`` event.
        candidates: how many candidate tasks were open at that point (more than 1: the
            log does not say which of them ran; this is the one started last, or queued
            first).
    """

    task_id: str
    routine_id: str | None
    slot: str | None
    source: tuple[str, str] | None
    queued_at: int
    candidates: int

    def label(self) -> str:
        """``price.accepted (queued at version 28 by validate.validated)`` (``by execute`` for an entry)."""
        by = f" by {self.source[0]}.{self.source[1]}" if self.source else " by execute"
        more = f"; one of {self.candidates} open tasks" if self.candidates > 1 else ""
        return f"{self.routine_id}.{self.slot} (queued at version {self.queued_at}{by}{more})"

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {"task_id": self.task_id, "routine_id": self.routine_id, "slot": self.slot,
                "source": list(self.source) if self.source else None, "queued_at": self.queued_at,
                "candidates": self.candidates}


@attrs.frozen
class RerunReport:
    """What :func:`rerun` found.

    Attributes:
        job_id, flow_id: the recorded job's.
        recorded_version: the flow version the job was recorded with (None: undeclared).
        current_version: the version the factory's flow declares (None: undeclared).
        actions: the inputs that were performed again.
        comparison: the event-by-event comparison.
        state_diff: the state difference right after the divergence (None: no divergence,
            or the new event cannot be applied to the recorded state, see ``state_note``).
        state_note: why there is no state difference, when there is a divergence.
        task: the task that produced the divergent event, when the log tells it.
        recorded_head, actual_head: the number of events of each run.
    """

    job_id: str
    flow_id: str
    recorded_version: str | None
    current_version: str | None
    actions: tuple[Action, ...]
    comparison: Comparison
    state_diff: tuple[Difference, ...] | None
    state_note: str | None
    task: TaskRef | None
    recorded_head: int
    actual_head: int

    @property
    def ok(self) -> bool:
        """True when the new run matches the recording."""
        return self.comparison.ok

    @property
    def divergence(self) -> Divergence | None:
        """The first divergence, if any."""
        return self.comparison.divergence

    @property
    def version_mismatch(self) -> bool:
        """True when the recording and the current flow declare different versions."""
        return self.recorded_version != self.current_version

    def version_line(self) -> str:
        """One plain line about the flow versions."""
        rec = self.recorded_version if self.recorded_version is not None else "(none declared)"
        cur = self.current_version if self.current_version is not None else "(none declared)"
        if not self.version_mismatch:
            return f"flow version: {rec} (same as recorded)"
        return f"flow version MISMATCH: recorded with {rec}, re-run with {cur}"

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of ``routilux-replay rerun --json``."""
        from .report import divergence_json

        div = self.divergence
        return {
            "job_id": self.job_id,
            "flow_id": self.flow_id,
            "recorded_version": self.recorded_version,
            "current_version": self.current_version,
            "version_mismatch": self.version_mismatch,
            "recorded_events": self.recorded_head,
            "actual_events": self.actual_head,
            "events_compared": self.comparison.compared,
            "diverged": div is not None,
            "divergence": None if div is None else {
                **divergence_json(div),
                "routine_id": div.routine_id,
                "task": self.task.to_json() if self.task else None,
                "state": None if self.state_diff is None else [d.to_json() for d in self.state_diff],
                "state_note": self.state_note,
            },
        }

    def text(self) -> str:
        """The report as plain text (what the command line prints)."""
        from .report import rerun_text

        return rerun_text(self)


def read_events(source: Any, *, key: bytes | None = None) -> tuple[list[JobEvent], str, str]:
    """Return ``(events, job_id, flow_id)`` of a job given as a JobState, events or a path.

    A path is anything :func:`replay_tools.open_job` opens (a saved job file, a durable
    job directory, a PostgreSQL location).
    """
    if isinstance(source, JobState):
        events = source.events()
    elif isinstance(source, (str, os.PathLike)):
        with open_job(source, key=key) as job:
            events = [JobEvent(r.seq, r.ts, r.kind, r.data) for r in job.read()]
    else:
        events = [e if isinstance(e, JobEvent) else JobEvent(*e) for e in source]
    if not events or events[0].kind != ev.JOB_CREATED:
        msg = "the recorded events do not start with job_created: not a job's history"
        raise ValueError(msg)
    first = events[0].data
    return events, str(first.get("job_id", "")), str(first.get("flow_id", ""))


def producing_task(events: Sequence[JobEvent], version: int, routine_id: str | None) -> TaskRef | None:
    """The task of ``routine_id`` that was running at ``version``, as far as the log says.

    Candidates are the tasks aimed at the routine (at any routine when ``routine_id`` is
    None: shared data and the shared log do not name their writer) that were queued
    before ``version`` and not yet recorded as ended. Task starts and ends are recorded lazily (with the
    job's next batch), so several may look open: the one recorded as started last wins,
    else the one queued first (the queue is FIFO).
    """
    open_tasks: dict[str, tuple[JobEvent, bool]] = {}
    order: list[str] = []
    for e in events:
        if e.seq >= version:
            break
        tid = str(e.data.get("task_id")) if isinstance(e.data, dict) else ""
        target = (e.data.get("task") or {}).get("routine_id") if e.kind == ev.TASK_QUEUED else None
        if e.kind == ev.TASK_QUEUED and (routine_id is None or target == routine_id):
            open_tasks[tid] = (e, False)
            order.append(tid)
        elif e.kind == ev.TASK_STARTED and tid in open_tasks:
            open_tasks[tid] = (open_tasks[tid][0], True)
            order.remove(tid)
            order.append(tid)  # started last: moved to the end
        elif e.kind in (ev.TASK_FINISHED, ev.TASK_FAILED) and tid in open_tasks:
            del open_tasks[tid]
            order.remove(tid)
    if not open_tasks:
        return None
    started = [t for t in order if open_tasks[t][1]]
    chosen = started[-1] if started else order[0]
    queued = open_tasks[chosen][0]
    task = queued.data.get("task") or {}
    src = task.get("source")
    source = (str(src[0]), str(src[1])) if isinstance(src, list) and len(src) == 2 and src[0] is not None else None
    return TaskRef(str(chosen), task.get("routine_id"), task.get("slot"), source, queued.seq, len(open_tasks))


def _state(events: Sequence[JobEvent]) -> dict[str, Any]:
    return JobState.from_events(list(events)).serialize()


def explain(recorded: Sequence[JobEvent], div: Divergence) -> tuple[tuple[Difference, ...] | None, str | None]:
    """The state difference right after ``div`` (see the module docstring), or a note why not."""
    v = div.version
    if div.change == "extra":
        before = list(recorded[:v])
        ts = before[-1].ts if before else 0
        assert div.actual is not None
        after = [*before, JobEvent(v + 1, ts, div.actual.kind, div.aligned)]
        expected_events, actual_events = before, after
    elif div.change == "missing":
        expected_events, actual_events = list(recorded[:v]), list(recorded[: v - 1])
    else:
        assert div.actual is not None
        expected_events = list(recorded[:v])
        actual_events = [*recorded[: v - 1], JobEvent(v, recorded[v - 1].ts, div.actual.kind, div.aligned)]
    try:
        return tuple(state_changes(_state(expected_events), _state(actual_events))), None
    except FoldError as exc:
        return None, f"the new event cannot be applied to the recorded state ({exc})"


def rerun(recorded: Any, factory: FlowFactory, *, rules: CompareRules | None = None,
          timeout: float = DEFAULT_TIMEOUT, sequential: bool = True, key: bytes | None = None) -> RerunReport:
    """Re-run a recorded job's inputs with ``factory``'s flow and compare the two runs.

    Args:
        recorded: the recorded job: a path (saved file, directory, PostgreSQL
            location), a JobState, or its events.
        factory: builds the flow with the current code (its flow id must be the job's).
        rules: what may differ between runs (default :class:`CompareRules`).
        timeout: seconds to wait for the new run to settle after each input.
        sequential: run one task at a time (see :func:`~.script.build_flow`).
        key: the hash-chain key of a keyed recorded log.

    Raises:
        FlowFactoryError: the factory fails or builds another flow.
        RerunTimeoutError: the new run did not settle in time.
    """
    events, job_id, flow_id = read_events(recorded, key=key)
    actions = actions_of(events)
    flow, job = run_actions(factory, actions, flow_id=flow_id, timeout=timeout, sequential=sequential)
    actual = job.events()
    comparison = compare_events(events, actual, rules)
    div = comparison.divergence
    state_diff: tuple[Difference, ...] | None = None
    note: str | None = None
    task: TaskRef | None = None
    if div is not None:
        state_diff, note = explain(events, div)
        task = producing_task(events, div.version if div.change != "extra" else div.version + 1, div.routine_id)
    return RerunReport(job_id, flow_id, flow_version_of(events), _declared(flow), tuple(actions), comparison,
                       state_diff, note, task, len(events), len(actual))


def _declared(flow: Any) -> str | None:
    version = getattr(flow, "version", None)
    return None if version is None else str(version)
