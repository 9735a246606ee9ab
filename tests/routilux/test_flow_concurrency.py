"""Many threads mutating one job: the log's order is the one order; the projection equals a replay."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from routilux import Flow, JobState, Routine


class Source(Routine):
    """Emits ``n`` values."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("out")

    def go(self, n: int) -> None:
        for i in range(n):
            self.emit("out", value=i)


class Worker(Routine):
    """Touches every kind of job state from a worker thread, then emits."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("in", self.on)
        self.define_event("done")

    def on(self, value: int) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        job = ctx.job_state
        job.update_shared_data(f"k{value % 7}", value)
        job.append_to_shared_log({"by": ctx.routine_id, "value": value})
        job.update_routine_state(ctx.routine_id, {"last": value})
        self.send_output("seen", value=value)
        self.emit("done", value=value)


class Collector(Routine):
    """Counts deliveries (thread-safely: concurrent handlers)."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.count = 0
        self.define_slot("in", self.on)

    def on(self, value: int) -> None:
        with self.lock:
            self.count += 1


def concurrent_flow(workers: int = 4) -> tuple[Flow, Collector]:
    flow = Flow(execution_strategy="concurrent", max_workers=8)
    collector = Collector()
    flow.add_routine(Source(), "src")
    flow.add_routine(collector, "collect")
    for i in range(workers):
        flow.add_routine(Worker(), f"w{i}")
        flow.connect("src", "out", f"w{i}", "in")
        flow.connect(f"w{i}", "done", "collect", "in")
    return flow, collector


def hammer(job: JobState, stop: threading.Event, name: str) -> None:
    """An outside thread mutating the same job while the flow runs."""
    i = 0
    while not stop.is_set() and i < 2000:
        job.update_shared_data(f"ext-{name}", i)
        job.record_execution(name, "tick", {"i": i})
        i += 1


def run_hammered(job: JobState, flow: Flow, n: int) -> None:
    stop = threading.Event()
    threads = [threading.Thread(target=hammer, args=(job, stop, f"t{i}")) for i in range(4)]
    for t in threads:
        t.start()
    try:
        flow.execute("src", {"n": n}, job_state=job)
        assert JobState.wait_for_completion(flow, job, timeout=60)
    finally:
        stop.set()
        for t in threads:
            t.join(30)


def test_many_threads_one_job_projection_equals_replay() -> None:
    """Concurrent handlers plus outside threads: counts add up and live == from_events(events)."""
    flow, collector = concurrent_flow()
    job = JobState(flow.flow_id)
    run_hammered(job, flow, 150)
    assert job.status == "completed" and collector.count == 4 * 150
    assert len(job.shared_log) == 4 * 150 and len(job.output_log) == 4 * 150
    assert len([r for r in job.execution_history if r.event_name == "done"]) == 4 * 150
    assert dict(job.open_tasks) == {}
    assert job.serialize() == JobState.from_events(job.events()).serialize()
    seqs = [e.seq for e in job.events()]
    assert seqs == list(range(1, len(seqs) + 1))


def test_many_threads_durable_job_equals_replay_and_reopens_equal(tmp_path: Path) -> None:
    """The same on a durable job: live == replay of its log == the reopened job."""
    flow, collector = concurrent_flow(3)
    job = JobState.open(tmp_path / "job", flow_id=flow.flow_id)
    try:
        run_hammered(job, flow, 60)
        assert collector.count == 3 * 60
        live = job.serialize()
        assert live == JobState.from_events(job.events()).serialize()
    finally:
        job.close()
    with JobState.open(tmp_path / "job") as again:
        assert again.serialize() == live


# A random layered DAG: every routine relays what it receives to its successors.
layers = st.lists(st.integers(1, 3), min_size=1, max_size=4)


class Relay(Routine):
    """Relays every delivery and counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.count = 0
        self.define_slot("in", self.on)
        self.define_slot("trigger", self.on)
        self.define_event("out")

    def on(self, **kw: Any) -> None:
        with self.lock:
            self.count += 1
        self.emit("out", **kw)


@given(layers, st.data(), st.sampled_from(["sequential", "concurrent"]))
def test_random_dags_deliver_once_per_path(sizes: list[int], data: st.DataObject, strategy: str) -> None:
    """Each routine runs once per path from the entry; the job equals its replay."""
    flow = Flow(execution_strategy=strategy, max_workers=4)
    entry = Relay()
    flow.add_routine(entry, "entry")
    previous = ["entry"]
    paths = {"entry": 1}
    routines = {"entry": entry}
    for li, size in enumerate(sizes):
        current = []
        for j in range(size):
            rid = f"r{li}.{j}"
            routines[rid] = Relay()
            flow.add_routine(routines[rid], rid)
            sources = data.draw(st.lists(st.sampled_from(previous), min_size=1, unique=True), label=rid)
            for src in sources:
                flow.connect(src, "out", rid, "in")
            paths[rid] = sum(paths[s] for s in sources)
            current.append(rid)
        previous = current
    job = flow.execute("entry", {"x": 1})
    assert JobState.wait_for_completion(flow, job, timeout=30)
    assert job.status == "completed"
    assert {rid: r.count for rid, r in routines.items()} == paths
    assert job.serialize() == JobState.from_events(job.events()).serialize()
    flow.shutdown()
