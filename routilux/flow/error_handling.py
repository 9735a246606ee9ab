"""0.10's ``routilux.flow.error_handling``: which handler applies, and 0.10's task-error rules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._task import SlotActivationTask

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..error_handler import ErrorHandler
    from ..routine import Routine
    from .flow import Flow

__all__ = ["get_error_handler_for_routine", "handle_task_error"]


def get_error_handler_for_routine(routine: Routine, routine_id: str, flow: Flow) -> ErrorHandler | None:
    """The routine's own handler, else the flow's, else None (which means STOP)."""
    handler = routine.get_error_handler()
    return handler if handler is not None else flow.error_handler


def handle_task_error(task: SlotActivationTask, error: Exception, flow: Flow) -> None:
    """Apply the error strategy to a failed task, with 0.10's outcomes.

    RETRY queues the task again (``retry_count`` + 1) while the handler allows and retries
    remain; CONTINUE records ``error`` in the job's history; SKIP marks the routine
    ``skipped``; otherwise (and when retries are exhausted) the job and routine are ``failed``.
    The flow's own workers record slot-handler errors themselves (``Slot.receive``), as in
    0.10; this is for code that runs tasks by hand.
    """
    slot = task.slot
    routine = slot.routine if slot is not None else None
    job = task.job_state
    rid = flow._routine_id_of(routine) if routine is not None else None
    if rid is None and routine is not None:
        rid = routine._id
    handler = get_error_handler_for_routine(routine, rid, flow) if routine is not None and rid else None
    if handler is not None and rid is not None:
        go_on = handler.handle_error(error, routine, rid, flow, job_state=job)
        strategy = handler.strategy.value
        if strategy == "retry" and go_on:
            limit = handler.max_retries if handler.max_retries > 0 else task.max_retries
            if task.retry_count < limit:
                flow._enqueue_task(SlotActivationTask(
                    slot, task.data, task.connection, priority=task.priority, job_state=job,
                    retry_count=task.retry_count + 1, max_retries=limit, routine_id=task.routine_id))
                return
        elif strategy == "continue":
            if job is not None:
                job.record_execution(rid, "error", {"slot": slot.name if slot else None, "error": str(error)})
            return
        elif strategy == "skip":
            if job is not None:
                job.update_routine_state(rid, {"status": "skipped"})
            return
    if job is not None:
        with job._transaction():
            job.status = "failed"
            if rid is not None:
                job.update_routine_state(rid, {"status": "failed", "error": str(error)})
