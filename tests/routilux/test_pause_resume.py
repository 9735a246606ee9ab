"""Pause, resume and cancel act on one job (ROUTILUX_API.md §7, without its defects)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from routilux import Flow, JobState, Routine


class Start(Routine):
    """Entry: emits one value."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", lambda **kw: self.emit("out", **kw))
        self.define_event("out")


class Fan(Routine):
    """Emits ``count`` values, then does ``then(self, job)`` (pause/cancel/defer)."""

    def __init__(self, count: int = 3, then: Any = None) -> None:
        super().__init__()
        self.count = count
        self.then = then
        self.define_slot("in", self.on)
        self.define_event("out")

    def on(self, **kw: Any) -> None:
        extra = {"job": kw["job"]} if "job" in kw else {}
        for i in range(self.count):
            self.emit("out", value=i, **extra)
        ctx = self.get_execution_context()
        if self.then is not None and ctx is not None and kw.get("act", True):
            self.then(self, ctx.flow, ctx.job_state)


class Sink(Routine):
    """Records values and sends them as output (proving it ran inside the job's context)."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.got: list[Any] = []
        self.gate = gate
        self.define_slot("in", self.on)

    def on(self, value: Any) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        self.got.append(value)
        self.send_output("value", value=value)


def build(then: Any, gate: threading.Event | None = None, flow_id: str = "pause-flow") -> tuple[Flow, Sink]:
    flow = Flow(flow_id)
    sink = Sink(gate)
    flow.add_routine(Start(), "start")
    flow.add_routine(Fan(3, then), "fan")
    flow.add_routine(sink, "sink")
    flow.connect("start", "out", "fan", "in")
    flow.connect("fan", "out", "sink", "in")
    return flow, sink


def pause_it(r: Routine, flow: Flow, job: JobState) -> None:
    flow.pause(job, reason="operator", checkpoint={"at": "fan"})


def test_pause_holds_tasks_records_points_and_resume_runs_them() -> None:
    """A handler pausing its job: tasks held and listed in pending_tasks; resume runs each once."""
    flow, sink = build(pause_it)
    job = flow.execute("start")
    assert JobState.wait_for_completion(flow, job, timeout=10)
    assert job.status == "paused" and sink.got == []
    assert [t["slot_routine_id"] for t in job.pending_tasks] == ["sink"] * 3
    assert [t["data"] for t in job.pending_tasks] == [{"value": 0}, {"value": 1}, {"value": 2}]
    assert len(job.pause_points) == 2
    assert job.pause_points[0]["pending_tasks_count"] == 3 and job.pause_points[1]["reason"] == "operator"
    assert flow.resume(job) is job
    assert job.status == "running"
    assert JobState.wait_for_completion(flow, job, timeout=10)
    assert job.status == "completed" and sink.got == [0, 1, 2]
    assert [o["data"]["value"] for o in job.output_log] == [0, 1, 2]
    assert dict(job.open_tasks) == {}


def test_pause_affects_only_that_job() -> None:
    """Another execution of the same flow runs to completion while one job is paused."""
    flow, sink = build(pause_it)
    paused = flow.execute("start", {"act": True})
    other = flow.execute("start", {"act": False})
    assert JobState.wait_for_completion(flow, other, timeout=10)
    assert JobState.wait_for_completion(flow, paused, timeout=10)
    assert other.status == "completed" and paused.status == "paused"
    assert sink.got == [0, 1, 2]
    flow.resume(paused)
    assert JobState.wait_for_completion(flow, paused, timeout=10)
    assert sink.got == [0, 1, 2, 0, 1, 2]


def test_deferred_events_carry_their_job(tmp_path: Path) -> None:
    """A deferred event is emitted on resume inside its job: downstream sees the context."""

    def defer_then_pause(r: Routine, flow: Flow, job: JobState) -> None:
        r.emit_deferred_event("out", value="later")
        flow.pause(job)

    flow, sink = build(defer_then_pause)
    job = flow.execute("start")
    assert JobState.wait_for_completion(flow, job, timeout=10)
    assert [d["event_name"] for d in job.deferred_events] == ["out"]
    flow.resume(job)
    assert JobState.wait_for_completion(flow, job, timeout=10)
    assert sorted(map(str, sink.got)) == ["0", "1", "2", "later"]
    assert "later" in [o["data"]["value"] for o in job.output_log]  # sent from inside the job
    assert list(job.deferred_events) == []


def test_saved_paused_job_resumes_after_load_with_explicit_ids(tmp_path: Path) -> None:
    """save() of a paused job, load() and resume on a rebuilt flow: every held task runs once."""
    flow, _ = build(pause_it, flow_id="saved")
    job = flow.execute("start")
    assert JobState.wait_for_completion(flow, job, timeout=10)
    path = tmp_path / "job.bin"
    job.save(path)
    loaded = JobState.load(path)
    assert loaded.status == "paused"
    flow2, sink2 = build(pause_it, flow_id="saved")
    flow2.resume(loaded)
    assert JobState.wait_for_completion(flow2, loaded, timeout=10)
    assert loaded.status == "completed" and sink2.got == [0, 1, 2]
    # A paused-and-resumed job is not an interruption.
    assert not [r for r in loaded.get_execution_history() if r.event_name == "resumed_after_interruption"]


def test_cancel_inside_handler_drops_queued_tasks() -> None:
    """cancel from a handler: status cancelled with the reason; queued tasks never run."""

    def cancel_it(r: Routine, flow: Flow, job: JobState) -> None:
        flow.cancel(job, reason="stop now")

    flow, sink = build(cancel_it)
    job = flow.execute("start")
    assert JobState.wait_for_completion(flow, job, timeout=10)
    assert job.status == "cancelled" and sink.got == []
    assert dict(job.routine_states["_cancellation"]) == {"reason": "stop now"}
    assert flow.resume(job) is job and job.status == "cancelled"


def test_cancel_with_queued_not_started_tasks_does_not_deadlock() -> None:
    """Cancelling while tasks wait behind a running handler returns at once (the original deadlocked)."""
    gate = threading.Event()
    flow, sink = build(None, gate)
    job = flow.execute("start")
    done = threading.Event()

    def cancel() -> None:
        flow.cancel(job)
        done.set()

    t = threading.Thread(target=cancel)
    t.start()
    assert done.wait(10)
    gate.set()
    t.join(10)
    assert JobState.wait_for_completion(flow, job, timeout=10)
    assert job.status == "cancelled" and len(sink.got) <= 1
    assert "_cancellation" not in job.routine_states


def test_flow_id_mismatch_and_unknown_current_routine() -> None:
    """pause/resume/cancel refuse another flow's job; resume checks current_routine_id."""
    flow, _ = build(None)
    stranger = JobState("someone-else")
    for call in (flow.pause, flow.resume, flow.cancel):
        with pytest.raises(ValueError, match="does not match"):
            call(stranger)
    job = JobState(flow.flow_id)
    job.current_routine_id = "ghost"
    with pytest.raises(ValueError, match="not found in flow"):
        flow.resume(job)


def test_unknown_deferred_event_warns_on_resume() -> None:
    """A deferred event naming a missing routine/event warns and is skipped."""
    flow, _ = build(None)
    job = JobState(flow.flow_id)
    job.add_deferred_event("ghost", "out", {"x": 1})
    job.status = "paused"
    with pytest.warns(UserWarning, match="ghost"):
        flow.resume(job)
    assert job.status == "running" and list(job.deferred_events) == []


class Counter(Routine):
    """Counts deliveries per value (thread-safe), slowly enough to be paused mid-run."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.seen: dict[int, int] = {}
        self.by_job: dict[tuple[int, int], int] = {}
        self.define_slot("in", self.on)

    def on(self, value: int, job: int = -1) -> None:
        threading.Event().wait(0.001)
        with self.lock:
            self.seen[value] = self.seen.get(value, 0) + 1
            self.by_job[(job, value)] = self.by_job.get((job, value), 0) + 1


def test_concurrent_pause_mid_run_loses_and_duplicates_nothing(rng: Any) -> None:
    """Pausing a concurrent run from outside, then resuming: every task runs exactly once."""
    flow = Flow(execution_strategy="concurrent", max_workers=4)
    counter = Counter()
    flow.add_routine(Start(), "start")
    flow.add_routine(Fan(200), "fan")
    flow.add_routine(counter, "count")
    flow.connect("start", "out", "fan", "in")
    flow.connect("fan", "out", "count", "in")
    job = flow.execute("start")
    threading.Event().wait(rng.uniform(0.0, 0.05))
    flow.pause(job, reason="mid-run")
    assert flow._job_activity(job) == (0, 0)  # nothing of this job queued or running now
    with counter.lock:
        done_at_pause = sum(counter.seen.values())
    assert len(job.pending_tasks) + done_at_pause <= 200
    flow.resume(job)
    assert JobState.wait_for_completion(flow, job, timeout=30)
    assert job.status == "completed"
    assert counter.seen == {i: 1 for i in range(200)}
    assert dict(job.open_tasks) == {}


class PauseResumeMachine(RuleBasedStateMachine):
    """Random executions, pauses, resumes and cancels on one concurrent flow.

    At the end every job that was not cancelled has run each of its tasks exactly once, and
    every job equals the replay of its log.
    """

    def __init__(self) -> None:
        super().__init__()
        self.flow = Flow(execution_strategy="concurrent", max_workers=3)
        self.counter = Counter()
        self.flow.add_routine(Start(), "start")
        self.flow.add_routine(Fan(12), "fan")
        self.flow.add_routine(self.counter, "count")
        self.flow.connect("start", "out", "fan", "in")
        self.flow.connect("fan", "out", "count", "in")
        self.jobs: list[JobState] = []
        self.cancelled: set[int] = set()

    @rule()
    def execute(self) -> None:
        job = self.flow.execute("start", {"job": len(self.jobs)})
        self.jobs.append(job)

    @precondition(lambda self: self.jobs)
    @rule(i=st.integers(0, 10**6))
    def pause(self, i: int) -> None:
        k = i % len(self.jobs)
        if k not in self.cancelled and self.jobs[k].status == "running":
            self.flow.pause(self.jobs[k])

    @precondition(lambda self: self.jobs)
    @rule(i=st.integers(0, 10**6))
    def resume(self, i: int) -> None:
        k = i % len(self.jobs)
        if self.jobs[k].status == "paused":
            self.flow.resume(self.jobs[k])

    @precondition(lambda self: self.jobs)
    @rule(i=st.integers(0, 10**6))
    def cancel(self, i: int) -> None:
        k = i % len(self.jobs)
        self.flow.cancel(self.jobs[k])
        self.cancelled.add(k)

    def teardown(self) -> None:
        for job in self.jobs:
            if job.status == "paused":
                self.flow.resume(job)
        for job in self.jobs:
            assert JobState.wait_until_condition(
                self.flow, job, lambda f, j: f._job_activity(j) == (0, 0), timeout=30)
        # Fan emits values 0..11 for every job; the counter keys them by (job, value) below.
        for k, job in enumerate(self.jobs):
            if k not in self.cancelled:
                assert JobState.wait_for_completion(self.flow, job, timeout=30)
                assert job.status == "completed"
                assert dict(job.open_tasks) == {}
            assert job.serialize() == JobState.from_events(job.events()).serialize()
        runs = self.counter.by_job
        for k in range(len(self.jobs)):
            expected = 1 if k not in self.cancelled else None
            for value in range(12):
                if expected is None:
                    assert runs.get((k, value), 0) <= 1
                else:
                    assert runs.get((k, value), 0) == 1, (k, value, runs)
        self.flow.shutdown()


TestPauseResumeMachine = PauseResumeMachine.TestCase
# Short programs keep this in the test budget; the examples count comes from the profile.
TestPauseResumeMachine.settings = settings(TestPauseResumeMachine.settings, stateful_step_count=10)


def test_resume_runs_deferred_events_before_held_tasks() -> None:
    """As in the original: on resume the deferred events' tasks run before the held tasks."""

    def defer_then_pause(r: Routine, flow: Flow, job: JobState) -> None:
        r.emit_deferred_event("out", value="later")
        flow.pause(job)

    flow, sink = build(defer_then_pause)
    job = flow.execute("start")
    assert JobState.wait_for_completion(flow, job, timeout=10)
    assert job.status == "paused" and len(job.pending_tasks) == 3
    flow.resume(job)
    assert JobState.wait_for_completion(flow, job, timeout=10)
    assert sink.got == ["later", 0, 1, 2]
