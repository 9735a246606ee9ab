"""0.10's ``routilux.flow.completion``: :func:`ensure_event_loop_running`.

Waiting for a job is ``JobState.wait_for_completion(flow, job_state)``, as in 0.10.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .flow import Flow

__all__ = ["ensure_event_loop_running"]


def ensure_event_loop_running(flow: Flow) -> bool:
    """Make sure queued tasks of ``flow`` have workers; return True if any worker is running.

    0.10 restarted its event-loop thread here. Our workers start whenever a task is queued
    and stop when idle, so this only matters for tasks queued by hand; an idle flow with
    nothing queued returns False.
    """
    sched = flow._scheduler
    return sched.ensure_workers() if sched is not None else False
