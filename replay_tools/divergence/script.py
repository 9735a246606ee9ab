"""What was done to a job from outside its flow, and how to do it again with current code.

A job's log records the calls its user made: ``flow.execute(entry, params)`` (the
entry task and its ``start`` record), ``flow.pause`` / ``flow.resume`` / ``flow.cancel``,
and the status that ``JobState.wait_for_completion`` wrote at the end. Those are the
job's **inputs**; everything else was done by the flow's routines. :func:`actions_of`
reads them back as a list of :class:`Action` s, and :func:`run_actions` performs them on
a fresh flow built by a factory, so the new run can be compared with the recorded one.

A pause or cancel that a handler made on its own job is recorded together with the end
of that handler's task (one batch, one timestamp); it is the code's doing, not an
input, so it is left for the new code to repeat (or not).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from routilux import Flow, JobState
from routilux import events as ev
from routilux.flow import ENGINE_ROUTINE_ID, FLOW_VERSION
from routilux.job_state import JobEvent

from .errors import FlowFactoryError, RerunTimeoutError

__all__ = [
    "Action",
    "Cancel",
    "Execute",
    "FlowFactory",
    "Pause",
    "Resume",
    "Wait",
    "actions_of",
    "build_flow",
    "flow_version_of",
    "load_factory",
    "perform",
    "run_actions",
]

#: A callable that builds a new Flow (a module-level function, usually).
FlowFactory = Callable[[], Flow]

#: Seconds the driver waits for a re-run flow to settle after each action.
DEFAULT_TIMEOUT = 60.0


@attrs.frozen
class Execute:
    """``flow.execute(entry, params)``: start the flow at its entry routine."""

    entry: str
    params: Mapping[str, Any] | None = None


@attrs.frozen
class Pause:
    """``flow.pause(job, reason, checkpoint)`` once the job is idle (skipped if already paused)."""

    reason: str = ""
    checkpoint: Mapping[str, Any] | None = None


@attrs.frozen
class Resume:
    """``flow.resume(job)`` (skipped unless the job is paused)."""


@attrs.frozen
class Cancel:
    """``flow.cancel(job, reason)`` once the job is idle."""

    reason: str = ""


@attrs.frozen
class Wait:
    """``JobState.wait_for_completion(flow, job)``: a running, idle job turns completed or failed."""


#: One input of a job.
Action = Execute | Pause | Resume | Cancel | Wait


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def actions_of(events: Sequence[JobEvent]) -> list[Action]:
    """The inputs recorded in a job's events, in order (see the module docstring).

    A :class:`Wait` is placed before an input (and at the end) where the recorded job
    was completed or failed at that point, as a user's ``wait_for_completion`` leaves it.
    """
    actions: list[Action] = []
    status = "pending"
    for i, e in enumerate(events):
        action: Action | None = None
        if e.kind == ev.TASK_QUEUED and (e.data.get("task") or {}).get("kind") == "entry":
            task = e.data["task"]
            params = _plain(task.get("data"))
            for back in range(i - 1, -1, -1):  # the execute's own "start" record, same batch
                prev = events[back]
                if prev.ts != e.ts:
                    break
                if (prev.kind == ev.EXECUTION_RECORDED and prev.data.get("event_name") == "start"
                        and prev.data.get("routine_id") == task.get("routine_id")):
                    params = _plain(prev.data.get("data"))
                    break
            action = Execute(task.get("routine_id"), params)
        elif e.kind in (ev.PAUSED, ev.CANCELLED) and not _by_own_handler(events, i):
            if e.kind == ev.PAUSED:
                action = Pause(e.data.get("reason") or "", _plain(_pause_checkpoint(events, i)))
            else:
                action = Cancel(e.data.get("reason") or "")
        elif e.kind == ev.RESUMED:
            action = Resume()
        if action is not None:
            if actions and status in ("completed", "failed"):
                actions.append(Wait())
            actions.append(action)
        if e.kind == ev.STATUS_SET:
            status = e.data.get("status")
        elif e.kind in (ev.PAUSED, ev.CANCELLED):
            status = e.kind
        elif e.kind == ev.RESUMED and status == "paused":
            status = "running"
    if actions and status in ("completed", "failed"):
        actions.append(Wait())
    return actions


def _pause_checkpoint(events: Sequence[JobEvent], i: int) -> Any:
    # The `paused` event stores a missing checkpoint as {}; the pause point written in
    # the same batch (same timestamp) keeps what flow.pause() was given (None or a dict).
    for back in range(i - 1, -1, -1):
        prev = events[back]
        if prev.ts != events[i].ts:
            break
        if prev.kind == ev.PAUSE_POINT_ADDED:
            return (prev.data.get("point") or {}).get("checkpoint")
    return events[i].data.get("checkpoint")


def _by_own_handler(events: Sequence[JobEvent], i: int) -> bool:
    # Flow.pause/cancel called from a handler of the same job records the end of that
    # handler's task right after the pause, in the same batch (same timestamp).
    nxt = events[i + 1] if i + 1 < len(events) else None
    return nxt is not None and nxt.ts == events[i].ts and nxt.kind == ev.TASK_FINISHED


def flow_version_of(events: Iterable[JobEvent]) -> str | None:
    """The flow version recorded by ``execute`` (``Flow(version=...)``), or None."""
    for e in events:
        if (e.kind == ev.EXECUTION_RECORDED and e.data.get("routine_id") == ENGINE_ROUTINE_ID
                and e.data.get("event_name") == FLOW_VERSION):
            data = e.data.get("data") or {}
            version = data.get("version")
            return None if version is None else str(version)
    return None


def load_factory(spec: str) -> FlowFactory:
    """Import ``module:attribute`` (e.g. ``myflows:build_flow``) and return the callable.

    The current directory is importable, as with ``python -m``.

    Raises:
        FlowFactoryError: bad syntax, the module or attribute is missing, or it is not callable.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise FlowFactoryError(spec, "expected MODULE:FACTORY, e.g. myflows:build_flow")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise FlowFactoryError(spec, f"cannot import module {module_name!r} ({exc})") from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise FlowFactoryError(spec, f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(target):
        raise FlowFactoryError(spec, f"{attr!r} is not callable; give a function that returns a Flow")
    return target  # type: ignore[no-any-return]


def build_flow(factory: FlowFactory, *, flow_id: str | None = None, name: str | None = None,
               sequential: bool = True) -> Flow:
    """Call ``factory`` and check it returned a Flow (of ``flow_id``, when given).

    With ``sequential`` the flow runs one task at a time (``set_execution_strategy
    ("sequential")``): two runs can then differ only where the flow itself does.

    Raises:
        FlowFactoryError: the factory failed or returned something else.
    """
    label = str(name or getattr(factory, "__qualname__", repr(factory)))
    try:
        flow = factory()
    except Exception as exc:
        raise FlowFactoryError(label, f"calling it failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(flow, Flow):
        raise FlowFactoryError(label, f"it returned {type(flow).__name__}, not a routilux Flow")
    if flow_id is not None and flow.flow_id != flow_id:
        raise FlowFactoryError(label, f"it built flow {flow.flow_id!r}, but the job belongs to flow {flow_id!r}")
    if sequential:
        flow.set_execution_strategy("sequential")
    return flow


def _settled(flow: Any, job: JobState) -> bool:
    # Idle: nothing recorded as queued or running. The engine records every task's end
    # before its job looks idle, so an empty open_tasks means the flow is done for now.
    return job.status in ("paused", "cancelled", "failed") or not job.open_tasks


def _settle(flow: Flow, job: JobState, timeout: float, what: str) -> None:
    if not JobState.wait_until_condition(flow, job, _settled, timeout=timeout, check_interval=0.05):
        raise RerunTimeoutError(what, timeout)


def perform(flow: Flow, job: JobState, actions: Sequence[Action], *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Perform ``actions`` on ``job`` with ``flow``, letting the flow settle after each.

    Raises:
        RerunTimeoutError: the flow did not settle within ``timeout`` seconds.
    """
    for action in actions:
        if isinstance(action, Execute):
            flow.execute(action.entry, _plain(action.params), job_state=job)
        elif isinstance(action, Pause):
            if job.status != "paused":
                flow.pause(job, reason=action.reason, checkpoint=_plain(action.checkpoint))
        elif isinstance(action, Resume):
            if job.status == "paused":
                flow.resume(job)
        elif isinstance(action, Cancel):
            if job.status != "cancelled":
                flow.cancel(job, reason=action.reason)
        elif isinstance(action, Wait):
            if job.status == "running" and not JobState.wait_for_completion(flow, job, timeout=timeout):
                raise RerunTimeoutError("waiting for completion", timeout)
            continue
        _settle(flow, job, timeout, f"after {type(action).__name__.lower()}")


def run_actions(factory: FlowFactory, actions: Sequence[Action], *, job: JobState | None = None,
                flow_id: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                sequential: bool = True) -> tuple[Flow, JobState]:
    """Build a flow with ``factory`` and perform ``actions`` on a new in-memory job (or ``job``).

    The flow's workers are shut down before returning.

    Raises:
        FlowFactoryError: the factory failed or built another flow than ``flow_id``.
        RerunTimeoutError: the flow did not settle in time.
    """
    flow = build_flow(factory, flow_id=flow_id, sequential=sequential)
    target = job if job is not None else JobState(flow.flow_id)
    try:
        perform(flow, target, actions, timeout=timeout)
    finally:
        flow.shutdown(wait=True, timeout=5)
    return flow, target
