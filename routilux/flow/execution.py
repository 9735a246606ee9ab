"""0.10's ``routilux.flow.execution``: the functions behind ``Flow.execute``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..job_state import JobState
    from .flow import Flow

__all__ = ["execute_concurrent", "execute_flow", "execute_sequential"]


def execute_flow(flow: Flow, entry_routine_id: str, entry_params: dict[str, Any] | None = None,
                 execution_strategy: str | None = None, timeout: float | None = None) -> JobState:
    """``flow.execute(...)``: run the entry routine now, the rest in the background.

    Raises:
        ValueError: ``entry_routine_id`` is not in the flow.
    """
    return flow.execute(entry_routine_id, entry_params, execution_strategy, timeout)


def execute_sequential(flow: Flow, entry_routine_id: str, entry_params: dict[str, Any] | None = None,
                       timeout: float | None = None) -> JobState:
    """Same as :func:`execute_flow` (the flow's own strategy decides the worker count, as in 0.10)."""
    return flow.execute(entry_routine_id, entry_params, timeout=timeout)


def execute_concurrent(flow: Flow, entry_routine_id: str, entry_params: dict[str, Any] | None = None,
                       timeout: float | None = None) -> JobState:
    """Same as :func:`execute_flow` (0.10's two strategies shared one code path)."""
    return flow.execute(entry_routine_id, entry_params, timeout=timeout)
