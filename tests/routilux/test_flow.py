"""Flow structure, execution model, scheduling order and recording (ROUTILUX_API.md §4-§5)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from eventlog import Unrepresentable, UnrepresentableValueWarning
from routilux import ErrorHandler, Flow, JobState, Routine
from routilux.flow import SlotActivationTask, TaskPriority


class Source(Routine):
    """Emits ``n`` values on ``out``."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("out", ["value"])

    def go(self, n: int = 1, **extra: Any) -> None:
        for i in range(n):
            self.emit("out", value=i, **extra)


class Relay(Routine):
    """Appends (name, data) to a shared log and re-emits."""

    def __init__(self, name: str = "", log: list[Any] | None = None) -> None:
        super().__init__()
        self.name = name
        self.log = log if log is not None else []
        self.define_slot("in", self.on)
        self.define_event("out", ["value"])

    def on(self, **kw: Any) -> None:
        self.log.append((self.name, kw))
        self.emit("out", **kw)


def wait(flow: Flow, job: JobState) -> None:
    assert JobState.wait_for_completion(flow, job, timeout=30)


def test_flow_defaults_and_no_job_state_attribute() -> None:
    """Flow defaults: uuid id, sequential with 1 worker, timeout 300, no job_state attribute."""
    flow = Flow()
    assert len(flow.flow_id) == 36 and flow.max_workers == 1 and flow.execution_timeout == 300.0
    assert Flow(execution_strategy="concurrent", max_workers=7).max_workers == 7
    assert not hasattr(flow, "job_state")


def test_add_routine_and_connect_errors_name_what_exists() -> None:
    """Duplicate ids and unknown routine/event/slot ids raise ValueError naming what exists."""
    flow = Flow("f")
    src = Source()
    assert flow.add_routine(src) == src._id
    flow.add_routine(Relay(), "relay")
    with pytest.raises(ValueError, match="already used"):
        flow.add_routine(Relay(), "relay")
    with pytest.raises(ValueError, match=r"'ghost'.*'relay'"):
        flow.connect("ghost", "out", "relay", "in")
    with pytest.raises(ValueError, match=r"'ghost'.*'relay'"):
        flow.connect(src._id, "out", "ghost", "in")
    with pytest.raises(ValueError, match=r"event 'nope'.*\['out'\]"):
        flow.connect(src._id, "nope", "relay", "in")
    with pytest.raises(ValueError, match=r"slot 'nope'.*\['in'\]"):
        flow.connect(src._id, "out", "relay", "nope")
    with pytest.raises(ValueError, match=r"'ghost'.*'relay'"):
        flow.execute("ghost")
    conn = flow.connect("relay", "out", "relay", "in")  # self-connections are allowed
    assert conn in flow.connections


def test_set_execution_strategy() -> None:
    """Only sequential/concurrent are valid; sequential forces one worker."""
    flow = Flow()
    flow.set_execution_strategy("concurrent", 3)
    assert (flow.execution_strategy, flow.max_workers) == ("concurrent", 3)
    flow.set_execution_strategy("concurrent")
    assert flow.max_workers == 5
    flow.set_execution_strategy("sequential", 9)
    assert flow.max_workers == 1
    with pytest.raises(ValueError, match="Invalid execution strategy"):
        flow.set_execution_strategy("parallel")


class Fan(Routine):
    """Emits ``n`` values per input: downstream, so its emits are queued before any child runs."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("in", self.go)
        self.define_event("out", ["value"])

    def go(self, value: int, n: int = 1) -> None:
        for i in range(n):
            self.emit("out", value=i)


def build_tree(log: list[Any], flow: Flow | None = None) -> Flow:
    """src -> a, b ; a -> c."""
    flow = flow or Flow()
    flow.add_routine(Source(), "src")
    for name in "abc":
        flow.add_routine(Relay(name, log), name)
    flow.connect("src", "out", "a", "in")
    flow.connect("src", "out", "b", "in")
    flow.connect("a", "out", "c", "in")
    return flow


def test_sequential_is_breadth_first_fifo() -> None:
    """Sequential: siblings of one emit run in connection order before their children."""
    log: list[Any] = []
    flow = Flow()
    flow.add_routine(Source(), "src")
    flow.add_routine(Fan(), "fan")
    for name in "abc":
        flow.add_routine(Relay(name, log), name)
    flow.connect("src", "out", "fan", "in", {"value": "value", "k": "n"})
    flow.connect("fan", "out", "a", "in")
    flow.connect("fan", "out", "b", "in")
    flow.connect("a", "out", "c", "in")
    job = flow.execute("src", {"n": 1, "k": 2})
    wait(flow, job)
    assert [(n, kw["value"]) for n, kw in log] == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("c", 0), ("c", 1)]
    assert job.status == "completed"


def test_execute_records_start_emits_and_entry_state() -> None:
    """execute: running job, start record, entry completed, emits recorded under flow ids."""
    flow = build_tree([])
    job = flow.execute("src", {"n": 1})
    assert job.flow_id == flow.flow_id and job.current_routine_id == "src"
    wait(flow, job)
    assert dict(job.routine_states) == {"src": {"status": "completed"}}
    hist = [(r.routine_id, r.event_name, dict(r.data)) for r in job.get_execution_history()]
    assert hist[0] == ("src", "start", {"n": 1})
    assert ("src", "out", {"value": 0}) in hist and ("c", "out", {"value": 0}) in hist
    assert len(hist) == 5
    assert dict(job.open_tasks) == {}


def test_execute_returns_before_downstream_work() -> None:
    """execute blocks only for the entry handler; downstream tasks run in the background."""
    gate = threading.Event()

    class Slow(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("in", lambda **kw: gate.wait(10))

    flow = Flow()
    flow.add_routine(Source(), "src")
    flow.add_routine(Slow(), "slow")
    flow.connect("src", "out", "slow", "in")
    job = flow.execute("src")
    assert job.status == "running"
    assert not JobState.wait_for_completion(flow, job, timeout=0.05)
    gate.set()
    wait(flow, job)
    assert job.status == "completed"


def test_param_mapping_is_applied_on_delivery() -> None:
    """flow.connect's mapping renames keys and keeps the source key (observed)."""
    log: list[Any] = []
    flow = Flow()
    flow.add_routine(Source(), "src")
    flow.add_routine(Relay("r", log), "r")
    flow.connect("src", "out", "r", "in", {"value": "v"})
    wait(flow, flow.execute("src"))
    assert log == [("r", {"v": 0, "value": 0})]


def test_event_connect_without_flow_connect_still_delivers_unmapped() -> None:
    """A slot linked with event.connect alone receives data, unmapped."""
    log: list[Any] = []
    flow = Flow()
    src, r = Source(), Relay("r", log)
    flow.add_routine(src, "src")
    flow.add_routine(r, "r")
    src.get_event("out").connect(r.get_slot("in"))  # type: ignore[union-attr,arg-type]
    wait(flow, flow.execute("src", {"n": 2}))
    assert [kw for _, kw in log] == [{"value": 0}, {"value": 1}]


def test_slot_data_persists_across_executions() -> None:
    """Slot._data lives on the slot and persists across executions (observed)."""

    class Acc(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("in", lambda **kw: None, merge_strategy="append")

    flow = Flow()
    flow.add_routine(Source(), "src")
    acc = Acc()
    flow.add_routine(acc, "acc")
    flow.connect("src", "out", "acc", "in")
    wait(flow, flow.execute("src", {"n": 2}))
    wait(flow, flow.execute("src", {"n": 1}))
    assert acc.get_slot("in")._data == {"value": [0, 1, 0]}  # type: ignore[union-attr]


def test_unrepresentable_emit_on_an_in_memory_job_records_a_placeholder() -> None:
    """An in-memory job passes any value through (as 0.10 did): the log gets a placeholder, with one warning."""
    errors: list[BaseException] = []
    log: list[Any] = []

    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque>"

    class Bad(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", self.go)
            self.define_event("out")

        def go(self) -> None:
            try:
                self.emit("out", payload={"ok": [1, Opaque()]})
            except Exception as exc:  # noqa: BLE001 - the test asserts there is none
                errors.append(exc)

    flow = Flow()
    flow.add_routine(Bad(), "bad")
    flow.add_routine(Relay("r", log), "r")
    flow.connect("bad", "out", "r", "in")
    with pytest.warns(UnrepresentableValueWarning, match="Opaque"):
        job = flow.execute("bad")
        wait(flow, job)
    assert errors == [] and job.status == "completed"
    recorded = [r for r in job.get_execution_history() if (r.routine_id, r.event_name) == ("bad", "out")]
    assert len(recorded) == 1
    assert recorded[0].data["payload"]["ok"][1] == Unrepresentable(f"{__name__}:{Opaque.__qualname__}", "<Opaque>")


def test_concurrent_strategy_runs_handlers_in_parallel() -> None:
    """Concurrent: up to max_workers handlers run at the same time."""
    barrier = threading.Barrier(3, timeout=10)

    class Waiter(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("in", lambda **kw: barrier.wait())

    flow = Flow(execution_strategy="concurrent", max_workers=3)
    flow.add_routine(Source(), "src")
    for i in range(3):
        flow.add_routine(Waiter(), f"w{i}")
        flow.connect("src", "out", f"w{i}", "in")
    job = flow.execute("src")
    wait(flow, job)
    assert job.status == "completed"
    assert not [r for r in job.get_execution_history() if r.event_name == "error"]


def test_two_jobs_on_one_flow_are_isolated() -> None:
    """Each task carries its job: two executions record into their own JobState."""
    flow = build_tree([])
    jobs = [flow.execute("src", {"n": n}) for n in (1, 3)]
    for job in jobs:
        wait(flow, job)
    counts = [len([r for r in j.get_execution_history() if r.event_name == "out"]) for j in jobs]
    assert counts == [4 * 1, 4 * 3]  # src, a, b and c each emit once per value


def test_wait_for_completion_on_idle_job_is_immediate() -> None:
    """An idle job completes without any polling floor."""
    flow = Flow()
    flow.add_routine(Source(), "src")
    job = flow.execute("src")
    t0 = time.monotonic()
    assert JobState.wait_for_completion(flow, job, timeout=5)
    assert job.status == "completed"
    # Not a timing assertion on the machine's speed: the original's floor was 0.25 s of sleeps.
    assert time.monotonic() - t0 < 0.25


def test_execute_against_a_given_job_state() -> None:
    """execute(job_state=...) runs against that job; another flow's job is refused."""
    flow = build_tree([])
    job = JobState(flow.flow_id)
    assert flow.execute("src", job_state=job) is job
    wait(flow, job)
    with pytest.raises(ValueError, match="does not match"):
        flow.execute("src", job_state=JobState("other"))


def test_deprecated_flow_wait_for_completion_warns() -> None:
    """Flow.wait_for_completion warns DeprecationWarning and still waits."""
    flow = build_tree([])
    job = flow.execute("src")
    with pytest.warns(DeprecationWarning):
        assert flow.wait_for_completion(timeout=10, job_state=job)
    with pytest.warns(DeprecationWarning):
        assert flow.wait_for_completion(timeout=10)


def test_shutdown_stops_workers_and_flow_is_reusable() -> None:
    """shutdown stops the workers; the next execute starts them again."""
    flow = build_tree([])
    wait(flow, flow.execute("src"))
    flow.shutdown(wait=True, timeout=5)
    job = flow.execute("src", {"n": 2})
    wait(flow, job)
    assert job.status == "completed"


def test_serialize_round_trip_structure() -> None:
    """serialize/deserialize rebuild routines, slots, handlers, mapping and error handlers."""
    log: list[Any] = []
    flow = build_tree(log, Flow("tree", execution_strategy="concurrent", max_workers=2))
    flow.connect("b", "out", "c", "in", {"value": "v"})
    flow.set_error_handler(ErrorHandler("retry", max_retries=4, retry_delay=0))
    flow.routines["src"].set_config(k=1)
    data = flow.serialize()
    assert data["_type"] == "Flow" and "job_state" not in data
    copy = Flow()
    copy.deserialize(data)
    assert copy.flow_id == "tree" and copy.max_workers == 2 and set(copy.routines) == {"src", "a", "b", "c"}
    assert copy.routines["src"].get_config("k") == 1
    assert copy.error_handler is not None and copy.error_handler.max_retries == 4
    assert [c.param_mapping for c in copy.connections][-1] == {"value": "v"}
    assert copy.serialize() == data
    job = copy.execute("src")
    wait(copy, job)
    assert len([r for r in job.get_execution_history() if r.event_name == "out"]) == 5


def test_task_priority_and_task_record_shape() -> None:
    """A task record has the original's pending-task keys, with flow routine ids."""
    flow = build_tree([])
    conn = flow.connections[0]
    task = SlotActivationTask(conn.target_slot, {"x": 1}, conn, task_id="t1", routine_id="a")
    rec = task.to_dict(flow)
    assert rec["slot_routine_id"] == "a" and rec["connection_source_routine_id"] == "src"
    assert rec["connection_source_event_name"] == "out" and rec["priority"] == TaskPriority.NORMAL.value
    assert {"slot_name", "data", "connection_target_routine_id", "connection_target_slot_name", "param_mapping",
            "retry_count", "max_retries", "created_at"} <= set(rec)
    # The compact form recorded in the job's log by _task_queued.
    assert task.to_record(flow) == {"routine_id": "a", "slot": "in", "data": {"x": 1}, "source": ["src", "out"]}


def test_no_scheduler_bookkeeping_left_after_completion() -> None:
    """After a run, the job has no queued, held or running task ids left in the scheduler."""
    flow = Flow(execution_strategy="concurrent", max_workers=3)
    flow.add_routine(Source(), "src")
    previous = "src"
    for i in range(20):  # a chain: consecutive tasks of one job are chained by the workers
        flow.add_routine(Relay(str(i)), f"r{i}")
        flow.connect(previous, "out", f"r{i}", "in")
        previous = f"r{i}"
    job = flow.execute("src", {"n": 3})
    wait(flow, job)
    assert flow._sched.task_ids(job) == set() and flow._job_activity(job) == (0, 0)
    assert dict(job.open_tasks) == {}
    assert len([r for r in job.get_execution_history() if r.event_name == "out"]) == 3 * 21


def test_entry_success_replaces_the_entry_state() -> None:
    """On success the entry's routine state becomes exactly {"status": "completed"}."""

    class Writes(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", self.go)

        def go(self) -> None:
            ctx = self.get_execution_context()
            assert ctx is not None
            ctx.job_state.update_routine_state(ctx.routine_id, {"status": "running", "mine": 1})

    flow = Flow()
    flow.add_routine(Writes(), "w")
    job = flow.execute("w")
    assert dict(job.get_routine_state("w") or {}) == {"status": "completed"}


def test_unencodable_entry_params_raise_at_execute(tmp_path: Any) -> None:
    """On a durable job, entry parameters that cannot be recorded raise TypeError naming the path; nothing runs."""
    ran: list[Any] = []

    class Entry(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", lambda **kw: ran.append(kw))

    flow = Flow()
    flow.add_routine(Entry(), "e")
    with JobState.open(tmp_path / "job", flow_id=flow.flow_id) as job:
        with pytest.raises(TypeError, match="bad"):
            flow.execute("e", {"bad": {1, 2, threading.Lock()}}, job_state=job)
        assert ran == [] and job.status == "pending" and flow._job_activity(job) == (0, 0)


def test_pause_and_resume_work_from_any_status() -> None:
    """pause has no status guard (observed); resume turns paused back into running."""
    flow = build_tree([])
    job = flow.execute("src")
    wait(flow, job)
    assert job.status == "completed"
    flow.pause(job, reason="after the fact")
    assert job.status == "paused" and job.pause_points[-1]["reason"] == "after the fact"
    flow.resume(job)
    assert job.status == "running"
    wait(flow, job)
    assert job.status == "completed"


def test_waiting_accepts_every_original_parameter() -> None:
    """wait_for_completion / wait_until_condition accept the original keyword arguments."""
    flow = build_tree([])
    job = flow.execute("src", {"n": 2})
    progress: list[Any] = []
    assert JobState.wait_until_condition(
        flow, job, lambda f, j: f._job_activity(j) == (0, 0), timeout=10, check_interval=0.01,
        progress_callback=lambda *a: progress.append(a))
    assert JobState.wait_for_completion(flow, job, timeout=10, stability_checks=3, check_interval=0.05,
                                        stability_delay=0.01, progress_callback=lambda *a: progress.append(a))
    assert job.status == "completed"


def test_framework_objects_in_event_data_are_recorded_as_strings() -> None:
    """Routines/flows in emitted data are delivered as objects and recorded by str() (as the original)."""
    got: list[Any] = []

    class Src(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", lambda: self.emit("out", who=self, n=1))
            self.define_event("out")

    class Dst(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("in", lambda **kw: got.append(kw))

    flow = Flow()
    src = Src()
    flow.add_routine(src, "src")
    flow.add_routine(Dst(), "dst")
    flow.connect("src", "out", "dst", "in")
    job = flow.execute("src")
    wait(flow, job)
    assert got == [{"who": src, "n": 1}]
    out = [r for r in job.get_execution_history() if r.event_name == "out"][0]
    assert dict(out.data) == {"who": str(src), "n": 1}
    queued = [e.data["task"]["data"] for e in job.events(kind="task_queued") if e.data["task"]["routine_id"] == "dst"]
    assert queued == [{"who": str(src), "n": 1}]
