"""Error strategies for routines: what happens when a routine's handler raises.

:class:`ErrorHandler` keeps the routilux 0.10 behaviour (ROUTILUX_API.md §6): the strategies apply to
the entry routine's ``trigger`` handler; ``retry_count`` is instance state that persists across
executions until :meth:`ErrorHandler.reset`.
"""

from __future__ import annotations

import logging
import time
from enum import Enum
from typing import TYPE_CHECKING, Any

from .serializable import Serializable, check_dict, check_known_fields

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .flow import Flow
    from .routine import Routine

__all__ = ["ErrorHandler", "ErrorStrategy"]

logger = logging.getLogger(__name__)


class ErrorStrategy(Enum):
    """How an error in a routine's handler is handled."""

    STOP = "stop"
    CONTINUE = "continue"
    RETRY = "retry"
    SKIP = "skip"


def _strategy(value: ErrorStrategy | str) -> ErrorStrategy:
    if isinstance(value, ErrorStrategy):
        return value
    try:
        return ErrorStrategy(value)
    except ValueError:
        allowed = ", ".join(repr(s.value) for s in ErrorStrategy)
        msg = f"unknown error strategy {value!r}; use an ErrorStrategy or one of {allowed}"
        raise ValueError(msg) from None


class ErrorHandler(Serializable):
    """An error strategy plus its retry settings and retry counter.

    Args:
        strategy: an :class:`ErrorStrategy` or its string value.
        max_retries: retries allowed by ``RETRY`` (total calls = 1 + max_retries).
        retry_delay: seconds slept before the first retry.
        retry_backoff: multiplier applied to the delay for every further retry.
        retryable_exceptions: exception types that may be retried (default ``(Exception,)``).
        is_critical: a critical routine's exhausted retries are never tolerated.
    """

    serializable_fields = ("strategy", "max_retries", "retry_delay", "retry_backoff", "retryable_exceptions",
                           "is_critical", "retry_count")

    def __init__(
        self,
        strategy: ErrorStrategy | str = "stop",
        max_retries: int = 3,
        retry_delay: float = 1.0,
        retry_backoff: float = 2.0,
        retryable_exceptions: tuple[type[BaseException], ...] | None = None,
        is_critical: bool = False,
    ) -> None:
        self.strategy = _strategy(strategy)
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.retry_backoff = retry_backoff
        self.retryable_exceptions: tuple[type[BaseException], ...] = tuple(retryable_exceptions or (Exception,))
        self.is_critical = is_critical
        self.retry_count = 0

    def __repr__(self) -> str:
        return f"ErrorHandler[{self.strategy.value}]"

    def reset(self) -> None:
        """Reset the retry counter to 0."""
        self.retry_count = 0

    def handle_error(
        self,
        error: BaseException,
        routine: Routine | None,
        routine_id: str,
        flow: Flow | None,
        job_state: Any = None,
        context: dict[str, Any] | None = None,
    ) -> bool:
        """Apply the strategy to ``error``; return True if execution may go on.

        ``STOP`` returns False. ``CONTINUE`` records ``error_continued`` in the job's history.
        ``SKIP`` marks the routine ``skipped``. ``RETRY`` returns False for a non-retryable error,
        otherwise counts the retry and sleeps the back-off delay while retries remain, and once
        they are exhausted returns ``not is_critical``.
        """
        # Log lines as routilux 0.10 writes them (logger "routilux.error_handler"), so log
        # filters and alerts written for 0.10 keep matching.
        if self.strategy is ErrorStrategy.STOP:
            logger.error("Error in routine %s: %s. Stopping execution.", routine_id, error)
            return False
        if self.strategy is ErrorStrategy.CONTINUE:
            logger.warning("Error in routine %s: %s. Continuing execution.", routine_id, error)
            if job_state is not None:
                job_state.record_execution(
                    routine_id, "error_continued", {"error": str(error), "error_type": type(error).__name__}
                )
            return True
        if self.strategy is ErrorStrategy.SKIP:
            logger.warning("Error in routine %s: %s. Skipping routine.", routine_id, error)
            if job_state is not None:
                job_state.update_routine_state(routine_id, {"status": "skipped", "error": str(error)})
            return True
        # RETRY
        if not isinstance(error, self.retryable_exceptions):
            logger.error("Error in routine %s: %s. Exception type %s is not retryable. Stopping.",
                         routine_id, error, type(error).__name__)
            return False
        if self.retry_count < self.max_retries:
            self.retry_count += 1
            delay = self.retry_delay * (self.retry_backoff ** (self.retry_count - 1))
            logger.warning("Error in routine %s: %s. Retrying (%d/%d) after %ss...",
                           routine_id, error, self.retry_count, self.max_retries, delay)
            if delay > 0:
                time.sleep(delay)
            return True
        if self.is_critical:
            logger.error("Error in routine %s: %s. Critical routine failed after %d retries. Flow will fail.",
                         routine_id, error, self.max_retries)
        else:
            logger.error("Error in routine %s: %s. Max retries (%d) exceeded. Stopping.",
                         routine_id, error, self.max_retries)
        return not self.is_critical

    def serialize(self, max_depth: int = 100, _current_depth: int = 0) -> dict[str, Any]:
        """Return routilux 0.10's handler dict plus ``retryable_exceptions`` (qualified class names)."""
        return {
            "_type": "ErrorHandler",
            "strategy": self.strategy.value,
            "max_retries": self.max_retries,
            "retry_delay": self.retry_delay,
            "retry_backoff": self.retry_backoff,
            "retryable_exceptions": [f"{t.__module__}.{t.__qualname__}" for t in self.retryable_exceptions],
            "is_critical": self.is_critical,
            "retry_count": self.retry_count,
        }

    def deserialize(self, data: dict[str, Any], strict: bool = False, registry: Any = None) -> None:
        """Restore the fields written by :meth:`serialize` (or by routilux 0.10); missing ones keep their value.

        Raises:
            ValueError: ``data`` is not a handler dict, an exception class cannot be imported,
                an unknown strategy; with ``strict``, unknown keys.
        """
        from ._structure import resolve_name

        check_dict(self, data)
        check_known_fields(self, data, type(self).serializable_fields, strict)
        self.strategy = _strategy(data.get("strategy", self.strategy))
        self.max_retries = data.get("max_retries", self.max_retries)
        self.retry_delay = data.get("retry_delay", self.retry_delay)
        self.retry_backoff = data.get("retry_backoff", self.retry_backoff)
        names = data.get("retryable_exceptions")
        if names:
            self.retryable_exceptions = tuple(resolve_name(n) for n in names)
        self.is_critical = data.get("is_critical", self.is_critical)
        self.retry_count = data.get("retry_count", self.retry_count)

