"""0.10's ``routilux.flow.task``: :class:`SlotActivationTask` and :class:`TaskPriority`."""

from __future__ import annotations

from .._task import SlotActivationTask, TaskPriority

__all__ = ["SlotActivationTask", "TaskPriority"]
