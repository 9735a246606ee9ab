"""Durable runs: a flow executed against JobState.open(path), reopened and resumed."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from routilux import Flow, JobState, Routine
from routilux.flow import RESUMED_AFTER_INTERRUPTION


class Start(Routine):
    """Entry: emits ``n`` values."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("out")

    def go(self, n: int = 3) -> None:
        for i in range(n):
            self.emit("out", value=i)


class Sink(Routine):
    """Records values in the job's shared log; optionally shuts the flow down on ``stop_at``."""

    def __init__(self, stop_at: int | None = None) -> None:
        super().__init__()
        self.stop_at = stop_at
        self.got: list[Any] = []
        self.define_slot("in", self.on)

    def on(self, value: int) -> None:
        self.got.append(value)
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.append_to_shared_log({"sink": value})
        if value == self.stop_at:
            # Simulates the process dying after this task: queued tasks are abandoned and
            # stay open in the log.
            ctx.flow.shutdown(wait=False)


class Fan(Routine):
    """Emits ``count`` values per input; downstream, so all are queued before any sink runs."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.define_slot("in", self.go)
        self.define_event("out")

    def go(self, value: int) -> None:
        for i in range(self.count):
            self.emit("out", value=i)


def build(flow_id: str, stop_at: int | None = None, fan_out: int = 1) -> tuple[Flow, Sink]:
    """start -> fan -> sink (sequential)."""
    flow = Flow(flow_id)
    sink = Sink(stop_at)
    flow.add_routine(Start(), "start")
    flow.add_routine(Fan(fan_out), "fan")
    flow.add_routine(sink, "sink")
    flow.connect("start", "out", "fan", "in")
    flow.connect("fan", "out", "sink", "in")
    return flow, sink


def test_durable_run_completes_and_reopens_identically(tmp_path: Path) -> None:
    """A durable run completes; reopening the log gives the same state."""
    flow, sink = build("durable")
    job = JobState.open(tmp_path / "job", flow_id=flow.flow_id)
    try:
        assert flow.execute("start", {"n": 2}, job_state=job) is job
        assert JobState.wait_for_completion(flow, job, timeout=10)
        assert job.status == "completed" and sink.got == [0, 0]
        live = job.serialize()
        kinds = [e.kind for e in job.events()]
        # entry + 2 fan + 2 sink tasks, each queued and finished once
        assert kinds.count("task_queued") == 5 and kinds.count("task_finished") == 5
    finally:
        job.close()
    reopened = JobState.open(tmp_path / "job")
    try:
        assert reopened.serialize() == live
        assert dict(reopened.open_tasks) == {}
    finally:
        reopened.close()


def test_abandoned_tasks_rerun_on_resume_in_new_flow(tmp_path: Path) -> None:
    """Tasks left open when a run stops are run by resume on a new Flow, and recorded as such."""
    flow, sink = build("resumable", stop_at=1, fan_out=5)
    job = JobState.open(tmp_path / "job", flow_id=flow.flow_id)
    try:
        flow.execute("start", {"n": 1}, job_state=job)  # fan emits values 0..4
        # The run stops after value 1; nothing else runs. Wait for that task to be finished.
        assert JobState.wait_until_condition(
            flow, job, lambda f, j: len(j.shared_log) == 2 and all(
                t["state"] == "queued" for t in j.open_tasks.values()), timeout=10)
        assert job.status == "running"
        assert len(job.open_tasks) == 3
    finally:
        job.close()

    job2 = JobState.open(tmp_path / "job")
    try:
        flow2, sink2 = build("resumable", fan_out=5)
        assert flow2.resume(job2) is job2
        assert JobState.wait_for_completion(flow2, job2, timeout=10)
        assert job2.status == "completed"
        assert sorted(sink2.got) == [2, 3, 4]
        assert sorted(e["sink"] for e in job2.shared_log) == [0, 1, 2, 3, 4]
        marks = [r for r in job2.get_execution_history() if r.event_name == RESUMED_AFTER_INTERRUPTION]
        assert len(marks) == 1
        rerun = marks[0].data["rerun_tasks"]
        assert sorted(t["routine_id"] for t in rerun) == ["sink"] * 3
        assert dict(job2.open_tasks) == {}
    finally:
        job2.close()


def test_interrupted_entry_task_is_rerun(tmp_path: Path) -> None:
    """An entry call recorded as queued/started but never finished is run again by resume."""
    flow, sink = build("entry-crash")
    job = JobState.open(tmp_path / "job", flow_id=flow.flow_id)
    try:
        # What a process killed inside the entry handler leaves behind.
        job.status = "running"
        job.current_routine_id = "start"
        job.record_execution("start", "start", {"n": 2})
        job._task_queued("dead-1", {"task_id": "dead-1", "kind": "entry", "slot_routine_id": "start",
                                    "slot_name": "trigger", "data": {"n": 2}})
        job._task_started("dead-1")
    finally:
        job.close()
    job2 = JobState.open(tmp_path / "job")
    try:
        flow.resume(job2)
        assert JobState.wait_for_completion(flow, job2, timeout=10)
        assert job2.status == "completed" and sink.got == [0, 0]
        assert dict(job2.routine_states["start"]) == {"status": "completed"}
        mark = [r for r in job2.get_execution_history() if r.event_name == RESUMED_AFTER_INTERRUPTION][0]
        assert mark.data["rerun_tasks"] == [{"task_id": "dead-1", "routine_id": "start", "slot": "trigger",
                                            "state": "started"}]
    finally:
        job2.close()


def test_unencodable_emit_on_durable_job_leaves_log_unchanged(tmp_path: Path) -> None:
    """A bad emit raises TypeError naming the path and appends nothing to the durable log."""
    errors: list[BaseException] = []

    class Bad(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", self.go)
            self.define_event("out")

        def go(self) -> None:
            ctx = self.get_execution_context()
            assert ctx is not None
            before = ctx.job_state.version
            try:
                self.emit("out", items=[1, 2, threading.Lock()])
            except TypeError as exc:
                errors.append(exc)
            assert ctx.job_state.version == before

    flow = Flow("bad")
    flow.add_routine(Bad(), "bad")
    flow.add_routine(Sink(), "sink")
    flow.connect("bad", "out", "sink", "in")
    with JobState.open(tmp_path / "job", flow_id="bad") as job:
        flow.execute("bad", job_state=job)
        assert JobState.wait_for_completion(flow, job, timeout=10)
        assert len(errors) == 1 and "items" in str(errors[0])
        assert job.status == "completed"


def test_open_job_of_another_flow_is_refused(tmp_path: Path) -> None:
    """execute(job_state=...) refuses a job created for another flow."""
    flow, _ = build("mine")
    with JobState.open(tmp_path / "job", flow_id="theirs") as job:
        with pytest.raises(ValueError, match="does not match"):
            flow.execute("start", job_state=job)


def test_paused_durable_job_resumes_after_reopen(tmp_path: Path) -> None:
    """A durable job paused (and closed) resumes in a new Flow: held tasks run once, no interruption mark."""

    class PauseAfterFan(Fan):
        def go(self, value: int) -> None:
            super().go(value)
            ctx = self.get_execution_context()
            assert ctx is not None
            ctx.flow.pause(ctx.job_state, reason="night")

    flow = Flow("paused-durable")
    sink = Sink()
    flow.add_routine(Start(), "start")
    flow.add_routine(PauseAfterFan(4), "fan")
    flow.add_routine(sink, "sink")
    flow.connect("start", "out", "fan", "in")
    flow.connect("fan", "out", "sink", "in")
    with JobState.open(tmp_path / "job", flow_id=flow.flow_id) as job:
        flow.execute("start", {"n": 1}, job_state=job)
        assert JobState.wait_for_completion(flow, job, timeout=10)
        assert job.status == "paused" and len(job.pending_tasks) == 4 and sink.got == []
    flow2, sink2 = build("paused-durable", fan_out=4)
    with JobState.open(tmp_path / "job") as job2:
        flow2.resume(job2)
        assert JobState.wait_for_completion(flow2, job2, timeout=10)
        assert job2.status == "completed" and sink2.got == [0, 1, 2, 3]
        assert not [r for r in job2.get_execution_history() if r.event_name == RESUMED_AFTER_INTERRUPTION]


def test_tasks_abandoned_by_shutdown_run_on_resume() -> None:
    """shutdown() abandons queued tasks; resume() on the same flow runs them from the job's log."""
    flow, sink = build("shutdown", stop_at=1, fan_out=4)
    job = JobState(flow.flow_id)
    flow.execute("start", {"n": 1}, job_state=job)
    assert JobState.wait_until_condition(
        flow, job, lambda f, j: len(j.shared_log) == 2 and len(j.open_tasks) == 2, timeout=10)
    assert job.status == "running"
    flow.resume(job)
    assert JobState.wait_for_completion(flow, job, timeout=10)
    assert job.status == "completed" and sink.got == [0, 1, 2, 3]
    assert [r.event_name for r in job.get_execution_history()].count(RESUMED_AFTER_INTERRUPTION) == 1
