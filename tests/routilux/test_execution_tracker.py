"""ExecutionTracker bookkeeping and how the flow fills it (ROUTILUX_API.md §10)."""

from __future__ import annotations

from typing import Any

from routilux import ExecutionTracker, Flow, Routine


def test_start_end_and_performance() -> None:
    """record_routine_start/end fill the last record; performance summarises them."""
    t = ExecutionTracker("f")
    assert t.get_routine_performance("r") is None
    t.record_routine_end("r")  # no record: no-op
    t.record_routine_start("r", {"a": 1})
    t.record_routine_end("r", "completed", result={"ok": True})
    t.record_routine_start("r")
    t.record_routine_end("r", "failed", error="boom")
    recs = t.routine_executions["r"]
    assert recs[0]["params"] == {"a": 1} and recs[0]["result"] == {"ok": True}
    assert recs[1]["status"] == "failed" and recs[1]["error"] == "boom"
    perf = t.get_routine_performance("r")
    assert perf is not None
    assert (perf["total_executions"], perf["completed"], perf["failed"], perf["success_rate"]) == (2, 1, 1, 0.5)
    assert perf["min_execution_time"] <= perf["avg_execution_time"] <= perf["max_execution_time"]
    t.record_event("r", "out", "s", {"x": 1})
    fp = t.get_flow_performance()
    assert fp["total_routines"] == 1 and fp["total_events"] == 1
    assert t.performance_metrics == {}


def test_flow_replaces_tracker_per_execute_and_records_emits_by_hex_id() -> None:
    """execute installs a fresh tracker; each emit is recorded with the routines' hex _id."""

    class Src(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", self.go)
            self.define_event("out")

        def go(self, **kw: Any) -> None:
            self.emit("out", v=1)

    class Dst(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("in", lambda **kw: None)

    flow = Flow()
    src, dst = Src(), Dst()
    flow.add_routine(src, "src")
    flow.add_routine(dst, "dst")
    flow.connect("src", "out", "dst", "in")
    flow.execute("src", {"p": 1})
    first = flow.execution_tracker
    assert first.routine_executions["src"][0]["params"] == {"p": 1}
    assert [(e["source_routine_id"], e["event_name"], e["target_routine_id"]) for e in first.event_flow] == [
        (src._id, "out", dst._id)]
    flow.execute("src")
    assert flow.execution_tracker is not first
