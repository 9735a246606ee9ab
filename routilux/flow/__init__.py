"""The ``routilux.flow`` package: :class:`Flow` and the submodules routilux 0.10 code imports.

``Flow`` itself lives in :mod:`routilux.flow.flow`. The other submodules (``completion``,
``dependency``, ``error_handling``, ``event_loop``, ``execution``, ``serialization``,
``state_management``, ``task``) keep 0.10's module paths and public functions; each is a thin
layer over ``Flow``'s methods.
"""

from __future__ import annotations

from .._task import SlotActivationTask, TaskPriority
from .flow import ENGINE_ROUTINE_ID, FLOW_VERSION, RESUMED_AFTER_INTERRUPTION, Flow

__all__ = ["ENGINE_ROUTINE_ID", "FLOW_VERSION", "RESUMED_AFTER_INTERRUPTION", "Flow", "SlotActivationTask", "TaskPriority"]
