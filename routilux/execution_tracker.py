"""ExecutionTracker: per-flow performance bookkeeping (ROUTILUX_API.md §10)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .serializable import Serializable

__all__ = ["ExecutionTracker"]


class ExecutionTracker(Serializable):
    """Records routine starts/ends and emitted events of one flow execution.

    ``Flow.execute`` replaces the flow's tracker with a fresh one on every call. Serialized
    by serilux's generic rules (``deserialize(data, strict=False, registry=None)``).
    """

    serializable_fields = ("flow_id", "routine_executions", "event_flow", "performance_metrics")

    def __init__(self, flow_id: str = "") -> None:
        self.flow_id = flow_id
        self.routine_executions: dict[str, list[dict[str, Any]]] = {}
        self.event_flow: list[dict[str, Any]] = []
        self.performance_metrics: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"ExecutionTracker[{self.flow_id}]"

    def record_routine_start(self, routine_id: str, params: dict[str, Any] | None = None) -> None:
        """Append a ``running`` execution record for ``routine_id``."""
        self.routine_executions.setdefault(routine_id, []).append(
            {"routine_id": routine_id, "start_time": datetime.now().isoformat(), "params": params or {},
             "status": "running"}
        )

    def record_routine_end(
        self, routine_id: str, status: str = "completed", result: Any = None, error: str | None = None
    ) -> None:
        """Complete the last execution record of ``routine_id`` (no-op if there is none)."""
        records = self.routine_executions.get(routine_id)
        if not records:
            return
        rec = records[-1]
        end = datetime.now()
        rec["end_time"] = end.isoformat()
        rec["status"] = status
        if result is not None:
            rec["result"] = result
        if error is not None:
            rec["error"] = error
        start = datetime.fromisoformat(rec["start_time"])
        rec["execution_time"] = (end - start).total_seconds()

    def record_event(
        self, source_routine_id: str, event_name: str, target_routine_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Append one event-flow entry."""
        self.event_flow.append(
            {"timestamp": datetime.now().isoformat(), "source_routine_id": source_routine_id,
             "event_name": event_name, "target_routine_id": target_routine_id, "data": data or {}}
        )

    def get_routine_performance(self, routine_id: str) -> dict[str, Any] | None:
        """Return execution statistics of ``routine_id``, or None if it never ran."""
        records = self.routine_executions.get(routine_id)
        if not records:
            return None
        times = [r["execution_time"] for r in records if "execution_time" in r]
        completed = sum(1 for r in records if r.get("status") == "completed")
        failed = sum(1 for r in records if r.get("status") == "failed")
        total = len(records)
        return {
            "total_executions": total,
            "completed": completed,
            "failed": failed,
            "success_rate": completed / total if total else 0.0,
            "avg_execution_time": sum(times) / len(times) if times else 0.0,
            "min_execution_time": min(times) if times else 0.0,
            "max_execution_time": max(times) if times else 0.0,
        }

    def get_flow_performance(self) -> dict[str, Any]:
        """Return flow-wide statistics (total time = sum of per-routine averages)."""
        total_time = 0.0
        for rid in self.routine_executions:
            perf = self.get_routine_performance(rid)
            if perf:
                total_time += perf["avg_execution_time"]
        n = len(self.routine_executions)
        return {
            "total_routines": n,
            "total_events": len(self.event_flow),
            "total_execution_time": total_time,
            "avg_routine_time": total_time / n if n else 0.0,
        }
