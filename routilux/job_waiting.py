"""Waiting for a job: ``JobState.wait_for_completion`` and ``JobState.wait_until_condition``.

Both wake on the job's state changes (a condition notified by the write path), not by
polling with a floor: completion is detected exactly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .job_state import JobState

__all__ = ["wait_for_completion", "wait_until_condition"]

Progress = Callable[[int, int, str], None]


def _wait_change(job_state: JobState, seen: tuple[int, int], timeout: float | None, *,
                 every_event: bool = True) -> None:
    """Wait until the job changes from ``seen`` (or ``timeout`` passes)."""
    writer = job_state._writer
    condition = writer.condition
    with condition:
        if writer.change_mark() != seen:
            return
        if every_event:
            condition.wait(timeout)
            return
        counters = writer.counters
        counters.quiet_waiters += 1  # the lock is held here
        try:
            # The plain Condition.wait: this waiter is counted as quiet, not as "every event".
            threading.Condition.wait(condition, timeout)
        finally:
            counters.quiet_waiters -= 1


def wait_for_completion(flow: Any, job_state: JobState, timeout: float | None = None,
                        check_interval: float = 0.1, progress_callback: Progress | None = None) -> bool:
    """See :meth:`JobState.wait_for_completion <routilux.job_state.JobState.wait_for_completion>`."""
    deadline = None if timeout is None else time.monotonic() + timeout
    activity = getattr(flow, "_job_activity", None)
    writer = job_state._writer
    p = job_state._p
    last_progress = time.monotonic()
    while True:
        seen = writer.change_mark()
        status = p.status
        if status in ("paused", "cancelled", "failed"):
            return True
        queue_size, active = activity(job_state) if activity is not None else (len(p.open_tasks), 0)
        if status in ("running", "completed") and queue_size == 0 and active == 0:
            with writer.lock:
                if p.status != "running":
                    if p.status != status and writer.change_mark() != seen:
                        continue  # changed under us: look again
                    return True
                if writer.change_mark() != seen:
                    continue
                failed = any(isinstance(s, dict) and s.get("status") in ("failed", "error")
                             for s in p.routine_states.values())
                job_state.status = "failed" if failed else "completed"
            return True
        now = time.monotonic()
        if progress_callback is not None and now - last_progress >= 5.0:
            last_progress = now
            progress_callback(queue_size, active, status)
        if deadline is not None and now >= deadline:
            return False
        wait = max(check_interval, 0.001)
        if deadline is not None:
            wait = min(wait, deadline - now)
        # With the flow's activity hook, only a status change or the engine's
        # _notify_waiters() can make the job complete: no need to wake on every event.
        _wait_change(job_state, seen, wait, every_event=activity is None)


def wait_until_condition(flow: Any, job_state: JobState, condition: Callable[[Any, JobState], bool],
                         timeout: float | None = None, check_interval: float = 0.1,
                         progress_callback: Progress | None = None) -> bool:
    """See :meth:`JobState.wait_until_condition <routilux.job_state.JobState.wait_until_condition>`."""
    deadline = None if timeout is None else time.monotonic() + timeout
    activity = getattr(flow, "_job_activity", None)
    writer = job_state._writer
    last_progress = time.monotonic()
    while True:
        seen = writer.change_mark()
        if condition(flow, job_state):
            return True
        now = time.monotonic()
        if progress_callback is not None and now - last_progress >= 5.0:
            last_progress = now
            queue_size, active = (activity(job_state) if activity is not None
                                  else (len(job_state._p.open_tasks), 0))
            progress_callback(queue_size, active, job_state._p.status)
        if deadline is not None and now >= deadline:
            return False
        wait = max(check_interval, 0.001)
        if deadline is not None:
            wait = min(wait, deadline - now)
        _wait_change(job_state, seen, wait)
