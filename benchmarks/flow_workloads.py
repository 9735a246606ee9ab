"""Flow workloads that run unchanged under routilux-es and the original routilux 0.10.0.

Two topologies, each under the ``sequential`` or ``concurrent`` execution strategy:

* ``chain``: ``length`` routines in a row, each relaying what it receives to the next;
* ``fanout``: one routine emitting ``events`` events to one sink.

Every event carries the nested data of issue 11 (``workloads.nested_data``). The timing
starts at ``flow.execute`` and is taken twice: when the last handler has run (the work
itself), and when ``JobState.wait_for_completion`` returns (what a user waits for; the
original polls, with a floor of about 0.25 s). A workload executes ``params["repeat"]``
freshly built flows and reports the medians. Only the 0.10 public API is used, except
``params["durable_dir"]``, ours only: the job is then ``JobState.open(path,
durability="batch")`` (a fresh directory in ``durable_dir``, removed after) passed to
``execute(..., job_state=job)``.
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workloads import nested_data

from routilux import Flow, JobState, Routine

__all__ = ["chain", "fanout", "idle_wait"]

MAX_WORKERS = 4


class Finish:
    """Counts handled events; notes the time the expected number was reached."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.done_at = 0.0
        self.done = threading.Event()
        self._lock = threading.Lock()

    def one(self) -> None:
        """Count one handled event."""
        with self._lock:
            self.count += 1
            if self.count == self.expected:
                self.done_at = time.perf_counter()
                self.done.set()


class Relay(Routine):
    """Passes what it receives on to its ``out`` event."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.relay)
        self.define_slot("input", self.relay)
        self.define_event("out")

    def relay(self, **data: Any) -> None:
        self.emit("out", **data)


class Burst(Routine):
    """Emits ``count`` events carrying ``payload``."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.burst)
        self.define_event("out")

    def burst(self, count: int = 0, payload: Any = None) -> None:
        for i in range(count):
            self.emit("out", index=i, payload=payload)


class Sink(Routine):
    """Counts what it receives into a ``Finish``."""

    def __init__(self, finish: Finish) -> None:
        super().__init__()
        self.finish = finish
        self.define_slot("input", self.receive)

    def receive(self, **data: Any) -> None:
        self.finish.one()


@dataclass(frozen=True)
class Scenario:
    """A freshly built flow, ready to execute, and how to tell it has finished."""

    flow: Flow
    entry: str
    entry_params: dict[str, Any]
    finish: Finish


def _new_job(flow: Flow, path: str | None) -> Any:
    """None (``execute`` makes an in-memory job), or a durable job at ``path`` (ours only)."""
    if path is None:
        return None
    return JobState.open(path, flow_id=flow.flow_id, durability="batch")


def _execute_once(scenario: Scenario, path: str | None, timeout: float) -> tuple[float, float]:
    """Execute and wait; check the outcome; return (until the last handler, until the wait returned) in s."""
    flow, finish = scenario.flow, scenario.finish
    durable = _new_job(flow, path)
    gc.collect()
    t0 = time.perf_counter()
    if durable is None:
        job = flow.execute(scenario.entry, scenario.entry_params)
    else:
        job = flow.execute(scenario.entry, scenario.entry_params, job_state=durable)
    finished = JobState.wait_for_completion(flow, job, timeout=timeout)
    waited = time.perf_counter() - t0
    try:
        if not finished or job.status != "completed" or not finish.done.is_set():
            msg = (f"flow did not complete: wait returned {finished}, status {job.status!r}, "
                   f"{finish.count}/{finish.expected} events handled")
            raise AssertionError(msg)
        return finish.done_at - t0, waited
    finally:
        if durable is not None:
            durable.close()
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)
        flow.shutdown()


def _run(build: Callable[[], Scenario], events: int, params: dict[str, Any]) -> dict[str, Any]:
    """Execute ``params["repeat"]`` (default 1) fresh builds; the median timings (ms) and events/s.

    Within one process the median of a few executions filters out short bursts of other
    work on a shared machine; each execution gets a new flow, and a new durable job
    directory (under ``durable_dir``, removed after) when one is asked for.
    """
    parent = params.get("durable_dir")
    done, waited = [], []
    for k in range(params.get("repeat", 1)):
        path = os.path.join(parent, f"job-{os.getpid()}-{k}") if parent else None
        d, w = _execute_once(build(), path, params.get("timeout", 600))
        done.append(d)
        waited.append(w)
    d, w = statistics.median(done), statistics.median(waited)
    return {"done_ms": d * 1e3, "wait_ms": w * 1e3, "events_per_s": events / d, "events": events}


def chain(params: dict[str, Any]) -> dict[str, Any]:
    """A chain of ``length`` routines (the last one a sink), one nested event relayed down it."""
    length, strategy = params["length"], params["strategy"]

    def build() -> Scenario:
        flow = Flow(execution_strategy=strategy, max_workers=MAX_WORKERS)
        finish = Finish(1)
        for i in range(length - 1):
            flow.add_routine(Relay(), f"r{i}")
            if i:
                flow.connect(f"r{i - 1}", "out", f"r{i}", "input")
        flow.add_routine(Sink(finish), "sink")
        flow.connect(f"r{length - 2}", "out", "sink", "input")
        return Scenario(flow, "r0", {"step": 0, "payload": nested_data(0)}, finish)

    return _run(build, length - 1, params)


def fanout(params: dict[str, Any]) -> dict[str, Any]:
    """One routine emitting ``events`` nested events to one sink."""
    events, strategy = params["events"], params["strategy"]

    def build() -> Scenario:
        flow = Flow(execution_strategy=strategy, max_workers=MAX_WORKERS)
        finish = Finish(events)
        flow.add_routine(Burst(), "burst")
        flow.add_routine(Sink(finish), "sink")
        flow.connect("burst", "out", "sink", "input")
        return Scenario(flow, "burst", {"count": events, "payload": nested_data(0)}, finish)

    return _run(build, events, params)


def idle_wait(params: dict[str, Any]) -> dict[str, Any]:
    """``JobState.wait_for_completion`` on a job whose work has finished (median ms of ``repeat``)."""
    flow = Flow(execution_strategy="sequential")
    finish = Finish(1)
    flow.add_routine(Burst(), "burst")
    flow.add_routine(Sink(finish), "sink")
    flow.connect("burst", "out", "sink", "input")
    try:
        job = flow.execute("burst", {"count": 1, "payload": nested_data(0)})
        if not JobState.wait_for_completion(flow, job, timeout=60):
            msg = "the one-event flow did not complete in 60 s"
            raise AssertionError(msg)
        times = []
        for _ in range(params["repeat"]):
            t0 = time.perf_counter()
            JobState.wait_for_completion(flow, job, timeout=60)
            times.append((time.perf_counter() - t0) * 1e3)
    finally:
        flow.shutdown()
    times.sort()
    return {"ms": times[len(times) // 2]}
