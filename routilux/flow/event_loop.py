"""0.10's ``routilux.flow.event_loop``: queueing and running tasks by hand.

0.10 moved tasks from a queue to a thread pool in an event-loop thread. Here worker threads take
tasks straight from the flow's queue (see :mod:`routilux._scheduler`); these functions keep 0.10's
names for code that drives a flow's tasks itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .._task import SlotActivationTask
    from .flow import Flow

__all__ = ["enqueue_task", "event_loop", "execute_task", "is_all_tasks_complete", "start_event_loop"]


def start_event_loop(flow: Flow) -> None:
    """Start workers for the tasks queued in ``flow`` (they also start by themselves)."""
    flow._sched.ensure_workers()


def event_loop(flow: Flow) -> None:
    """Block until ``flow`` has no queued or running task (0.10 ran its loop in the caller until then)."""
    flow._sched.wait_all_idle()


def execute_task(task: SlotActivationTask, flow: Flow) -> None:
    """Deliver ``task`` now, in this thread: mapping, handler, and errors recorded in its job.

    Like 0.10, this bypasses the queue and the task's lifecycle records; use
    :func:`enqueue_task` for a task that must survive a crash.
    """
    slot = task.slot
    if slot is None:
        return
    data = task.connection._apply_mapping(task.data) if task.connection is not None else task.data
    if slot.routine is not None:
        slot.routine._current_flow = flow
    slot.receive(data, job_state=task.job_state, flow=flow)


def enqueue_task(task: SlotActivationTask, flow: Flow) -> None:
    """Queue ``task`` in ``flow`` (recorded in its job; held while the job is paused)."""
    flow._enqueue_task(task)


def is_all_tasks_complete(flow: Flow) -> bool:
    """True when no task of any job is queued or running in ``flow``."""
    sched = flow._scheduler
    return sched is None or sched.wait_all_idle(0)
