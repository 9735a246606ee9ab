"""The context variable holding the JobState of the running handler.

It lives in its own module so that slots and events (imported by ``routilux.routine``) can use
it without a circular import; ``routilux.routine._current_job_state`` is the same object.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

__all__ = ["_current_job_state"]

#: The JobState of the execution the current handler runs in (read with ``.get(None)``).
#: Set around every handler call by the engine, per thread/task, so concurrent executions on
#: one flow stay isolated.
_current_job_state: ContextVar[Any] = ContextVar("_current_job_state", default=None)
