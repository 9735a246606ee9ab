"""Output handlers: where ``Routine.send_output`` data goes besides the job's output log."""

from __future__ import annotations

import abc
from collections.abc import Callable
from datetime import datetime
from typing import Any

__all__ = ["CallbackOutputHandler", "NullOutputHandler", "OutputHandler", "QueueOutputHandler"]


class OutputHandler(abc.ABC):
    """Receives every output a routine sends; attach one with ``JobState.set_output_handler``."""

    @abc.abstractmethod
    def handle(
        self, job_id: str, routine_id: str, output_type: str, data: dict[str, Any],
        timestamp: datetime | None = None,
    ) -> None:
        """Handle one output."""


class QueueOutputHandler(OutputHandler):
    """Puts each output as a dict ``{job_id, routine_id, output_type, data, timestamp(iso)}`` on a queue."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def handle(
        self, job_id: str, routine_id: str, output_type: str, data: dict[str, Any],
        timestamp: datetime | None = None,
    ) -> None:
        """Put the output on the queue."""
        ts = timestamp or datetime.now()
        self.queue.put({"job_id": job_id, "routine_id": routine_id, "output_type": output_type,
                        "data": data, "timestamp": ts.isoformat()})


class CallbackOutputHandler(OutputHandler):
    """Calls ``callback(job_id, routine_id, output_type, data, timestamp)`` for each output."""

    def __init__(self, callback: Callable[[str, str, str, dict[str, Any], datetime], Any]) -> None:
        self.callback = callback

    def handle(
        self, job_id: str, routine_id: str, output_type: str, data: dict[str, Any],
        timestamp: datetime | None = None,
    ) -> None:
        """Call the callback."""
        self.callback(job_id, routine_id, output_type, data, timestamp or datetime.now())


class NullOutputHandler(OutputHandler):
    """Ignores every output (the job's output log still records it)."""

    def handle(
        self, job_id: str, routine_id: str, output_type: str, data: dict[str, Any],
        timestamp: datetime | None = None,
    ) -> None:
        """Do nothing."""
