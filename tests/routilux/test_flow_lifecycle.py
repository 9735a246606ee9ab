"""Task lifecycle records and worker hand-off (routilux/_scheduler.py, Flow._record_marks).

Task starts and ends are recorded with the job's next batch rather than one append each,
and idle workers are not woken task by task. These tests pin what users rely on: the log
is complete and well ordered when waiting returns, tasks that ran are not run again by a
resume, and a handler that waits for work it queued is never starved.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from routilux import Flow, JobState, Routine

STRATEGIES = ["sequential", "concurrent"]


class Source(Routine):
    """Entry: emits ``n`` values on ``out``."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("out")

    def go(self, n: int = 1) -> None:
        for i in range(n):
            self.emit("out", value=i)


class Relay(Routine):
    """Re-emits what it receives, ``fan`` times."""

    def __init__(self, fan: int = 1) -> None:
        super().__init__()
        self.fan = fan
        self.define_slot("in", self.on)
        self.define_event("out")

    def on(self, value: Any) -> None:
        for _ in range(self.fan):
            self.emit("out", value=value)


class Sink(Routine):
    """Collects values (thread-safe)."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[Any] = []
        self._lock = threading.Lock()
        self.define_slot("in", self.on)

    def on(self, value: Any) -> None:
        with self._lock:
            self.got.append(value)


def build(strategy: str, depth: int, fan: int) -> tuple[Flow, Sink]:
    """src -> r0 -> ... -> r{depth-1} -> sink, relay r0 fanning out ``fan`` times."""
    flow = Flow(execution_strategy=strategy, max_workers=3)
    sink = Sink()
    flow.add_routine(Source(), "src")
    prev = "src"
    for i in range(depth):
        flow.add_routine(Relay(fan if i == 0 else 1), f"r{i}")
        flow.connect(prev, "out", f"r{i}", "in")
        prev = f"r{i}"
    flow.add_routine(sink, "sink")
    flow.connect(prev, "out", "sink", "in")
    return flow, sink


def check_lifecycle(job: JobState) -> dict[str, list[str]]:
    """Assert every task is queued first, started at most once before its end, ended once.

    Returns task id -> its lifecycle kinds in log order.
    """
    steps: dict[str, list[str]] = {}
    for e in job.events(kind=["task_queued", "task_started", "task_finished", "task_failed"]):
        steps.setdefault(e.data["task_id"], []).append(e.kind)
    for tid, kinds in steps.items():
        assert kinds[0] == "task_queued", (tid, kinds)
        assert kinds[1:] in (["task_finished"], ["task_started", "task_finished"]), (tid, kinds)
    return steps


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_log_is_complete_and_ordered_when_wait_returns(strategy: str, tmp_path: Path, rng: Any) -> None:
    """After wait_for_completion every task's end is in the durable log, in lifecycle order."""
    depth, fan, n = rng.randint(1, 4), rng.randint(1, 5), rng.randint(1, 20)
    flow, sink = build(strategy, depth, fan)
    job = JobState.open(tmp_path / "job", flow_id=flow.flow_id)
    try:
        flow.execute("src", {"n": n}, job_state=job)
        assert JobState.wait_for_completion(flow, job, timeout=30)
        job.close()  # right away: nothing may still be on its way to the log
    finally:
        flow.shutdown()
    assert sorted(sink.got) == sorted(list(range(n)) * fan)
    with JobState.open(tmp_path / "job") as reopened:
        assert reopened.status == "completed"
        assert dict(reopened.open_tasks) == {}
        steps = check_lifecycle(reopened)
        # entry + n tasks per relay before the fan, n*fan after it, and n*fan sink tasks
        assert len(steps) == 1 + n + n * fan * depth


def test_running_task_is_recorded_as_started_with_the_next_batch() -> None:
    """A task that emits while running is recorded as started (before its emit), then finished."""
    flow, _ = build("sequential", depth=1, fan=1)
    job = flow.execute("src", {"n": 1})
    assert JobState.wait_for_completion(flow, job, timeout=30)
    flow.shutdown()
    relay_task = next(e.data["task_id"] for e in job.events(kind="task_queued") if e.data["task"]["routine_id"] == "r0")
    kinds = [e.kind for e in job.events() if e.data.get("task_id") == relay_task
             or (e.kind == "execution_recorded" and e.data.get("routine_id") == "r0")]
    assert kinds == ["task_queued", "task_started", "execution_recorded", "task_finished"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_cancel_records_the_ends_of_tasks_that_ran(strategy: str) -> None:
    """Tasks that ran before a cancel are recorded as finished, the dropped ones stay queued."""

    class Canceller(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.got: list[int] = []
            self.define_slot("in", self.on)

        def on(self, value: int) -> None:
            self.got.append(value)
            if value == 3:
                ctx = self.get_execution_context()
                assert ctx is not None
                ctx.flow.cancel(ctx.job_state, reason="enough")

    flow = Flow(execution_strategy=strategy, max_workers=1)
    sink = Canceller()
    flow.add_routine(Source(), "src")
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "sink", "in")
    job = flow.execute("src", {"n": 8})
    assert JobState.wait_for_completion(flow, job, timeout=30)  # returns once cancelled
    flow.shutdown(wait=True)  # the cancelling handler has returned
    assert job.status == "cancelled" and sink.got == [0, 1, 2, 3]
    ran = {e.data["task_id"] for e in job.events(kind="task_finished")}
    values = {e.data["task_id"]: e.data["task"]["data"]["value"]
              for e in job.events(kind="task_queued") if e.data["task"]["routine_id"] == "sink"}
    assert {values[t] for t in ran if t in values} == {0, 1, 2, 3}
    # Dropped by the cancel (those the entry emitted before it): never run, still open.
    assert all(values[t] >= 4 for t in job.open_tasks)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_handler_waiting_for_the_task_it_queued_is_not_starved(strategy: str) -> None:
    """A handler may block until a task it queued has run: a free worker takes that task.

    Idle workers are not woken one by one for tasks queued by a running handler, so this
    checks the bound (the polling workers, or a new worker) rather than the wake-up.
    """
    done = threading.Event()
    seen: list[bool] = []

    class Waiter(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", self.go)
            self.define_slot("in", self.go)
            self.define_event("out")

        def go(self, **_: Any) -> None:
            self.emit("out", value=1)
            seen.append(done.wait(10))

    class Setter(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("in", lambda value: done.set())

    flow = Flow(execution_strategy=strategy, max_workers=2)
    flow.add_routine(Source(), "src")
    flow.add_routine(Waiter(), "waiter")
    flow.add_routine(Setter(), "setter")
    # Entry variant (sequential: the entry's thread waits, the only worker runs setter);
    # worker variant (concurrent: a worker's handler waits, the other worker runs setter).
    if strategy == "sequential":
        flow.connect("waiter", "out", "setter", "in")
        entry = "waiter"
    else:
        flow.connect("src", "out", "waiter", "in")
        flow.connect("waiter", "out", "setter", "in")
        entry = "src"
    job = flow.execute(entry, {"n": 1})
    assert JobState.wait_for_completion(flow, job, timeout=30)
    flow.shutdown()
    assert seen == [True] and job.status == "completed"
