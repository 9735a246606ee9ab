"""0.10's ``routilux.flow.state_management``: pause, resume and cancel as functions.

They call :meth:`Flow.pause`, :meth:`Flow.resume` and :meth:`Flow.cancel`, which act on one job
(0.10 paused every job of the flow).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .._task import SlotActivationTask
    from ..job_state import JobState
    from .flow import Flow

__all__ = ["cancel_flow", "deserialize_pending_tasks", "pause_flow", "resume_flow", "serialize_pending_tasks",
           "wait_for_active_tasks"]


def pause_flow(flow: Flow, job_state: JobState, reason: str = "", checkpoint: dict[str, Any] | None = None) -> None:
    """``flow.pause(job_state, reason, checkpoint)``.

    Raises:
        ValueError: the job belongs to another flow ("does not match").
    """
    flow.pause(job_state, reason, checkpoint)


def resume_flow(flow: Flow, job_state: JobState) -> JobState:
    """``flow.resume(job_state)``.

    Raises:
        ValueError: the job belongs to another flow, or its current routine is not in the flow.
    """
    return flow.resume(job_state)


def cancel_flow(flow: Flow, job_state: JobState, reason: str = "") -> None:
    """``flow.cancel(job_state, reason)``.

    Raises:
        ValueError: the job belongs to another flow ("does not match").
    """
    flow.cancel(job_state, reason)


def wait_for_active_tasks(flow: Flow) -> None:
    """Wait up to 5 s (0.10's limit) until no task of ``flow`` is running."""
    sched = flow._scheduler
    if sched is not None:
        sched.wait_no_running(5.0)


def serialize_pending_tasks(flow: Flow, job_state: JobState) -> None:
    """Write the tasks of ``job_state`` held by a pause into ``job_state.pending_tasks``.

    :meth:`Flow.pause` already does this; the function is kept for 0.10 code that calls it.
    """
    sched = flow._scheduler
    held = sched.held_tasks(job_state) if sched is not None else []
    job_state.pending_tasks = [task.to_dict(flow) for task in held]


def deserialize_pending_tasks(flow: Flow, job_state: JobState) -> list[SlotActivationTask]:
    """Return the tasks of ``job_state.pending_tasks`` that ``resume`` would run, rebuilt for ``flow``.

    0.10 filled the flow's private pending list here, for its ``resume`` to queue; our
    :meth:`Flow.resume` reads ``pending_tasks`` itself, so this only shows what it will run
    (nothing changes). Tasks already queued, or finished according to the job's log, are left out.
    """
    known = flow._sched.task_ids(job_state)
    restored, fresh = flow._pending_to_rerun(job_state, known, job_state.open_tasks)
    return [*restored, *fresh]
