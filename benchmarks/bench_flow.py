"""Flow engine throughput, in memory and durable, in one run.

Scenarios (each sequential and concurrent, each with an in-memory JobState and a durable
``JobState.open(dir, durability="batch")``):

* chain:   a chain of 1,000 routines, each relaying one event to the next;
* fan-out: one routine emitting 10,000 events to a sink.

Reported: events/s (emits per second, from ``execute`` until ``wait_for_completion``
returns), the durable/in-memory ratio of the same scenario (target <= 1.3x), and the time
``wait_for_completion`` takes on an already idle job (target <= 5 ms). Medians of
``--repeat`` runs. ``--quick`` is a small sanity run.

    python benchmarks/bench_flow.py [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from routilux import Flow, JobState, Routine


class Relay(Routine):
    """Forwards what it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.on)
        self.define_slot("in", self.on)
        self.define_event("out")

    def on(self, value: int = 0) -> None:
        self.emit("out", value=value)


class Burst(Routine):
    """Emits ``n`` events."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("out")

    def go(self, n: int) -> None:
        for i in range(n):
            self.emit("out", value=i)


class Sink(Routine):
    """Receives and drops."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("in", lambda value: None)


def chain_flow(length: int, strategy: str) -> tuple[Flow, str, dict[str, Any], int]:
    flow = Flow(execution_strategy=strategy, max_workers=4)
    for i in range(length):
        flow.add_routine(Relay(), f"r{i}")
        if i:
            flow.connect(f"r{i - 1}", "out", f"r{i}", "in")
    return flow, "r0", {"value": 1}, length


def fanout_flow(events: int, strategy: str) -> tuple[Flow, str, dict[str, Any], int]:
    flow = Flow(execution_strategy=strategy, max_workers=4)
    flow.add_routine(Burst(), "burst")
    flow.add_routine(Sink(), "sink")
    flow.connect("burst", "out", "sink", "in")
    return flow, "burst", {"n": events}, events


def run_once(build: Callable[[], tuple[Flow, str, dict[str, Any], int]], durable: bool) -> float:
    """Return events/s of one execution."""
    flow, entry, params, n_events = build()
    with tempfile.TemporaryDirectory() as tmp:
        job = JobState.open(f"{tmp}/job", flow_id=flow.flow_id, durability="batch") if durable \
            else JobState(flow.flow_id)
        gc.collect()
        t0 = time.perf_counter()
        flow.execute(entry, params, job_state=job)
        ok = JobState.wait_for_completion(flow, job, timeout=600)
        elapsed = time.perf_counter() - t0
        assert ok and job.status == "completed", job.status
        if durable:
            job.close()
    flow.shutdown()
    return n_events / elapsed


def idle_wait_ms(repeat: int) -> float:
    """Median ms of wait_for_completion on a job whose work is already done."""
    flow, entry, params, _ = fanout_flow(1, "sequential")
    times = []
    for _ in range(repeat):
        job = flow.execute(entry, params)
        JobState.wait_for_completion(flow, job, timeout=10)  # now idle and completed
        job.status = "running"  # idle but not yet marked: the exact-detection path
        t0 = time.perf_counter()
        JobState.wait_for_completion(flow, job, timeout=10)
        times.append((time.perf_counter() - t0) * 1000)
    flow.shutdown()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (sanity run)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    chain_len, fan_events = (100, 1000) if args.quick else (1000, 10_000)

    print(f"flow engine benchmark: chain={chain_len} routines, fan-out={fan_events} events, "
          f"median of {repeat} run(s)")
    print(f"{'scenario':<26}{'in-memory ev/s':>16}{'durable ev/s':>16}{'durable/mem':>13}")
    for name, builder, size in (("chain", chain_flow, chain_len), ("fan-out", fanout_flow, fan_events)):
        for strategy in ("sequential", "concurrent"):
            def build(b: Any = builder, s: int = size, st: str = strategy) -> Any:
                return b(s, st)
            # Interleave in-memory and durable runs so machine noise hits both alike.
            mem, dur = [], []
            for _ in range(repeat):
                mem.append(run_once(build, durable=False))
                dur.append(run_once(build, durable=True))
            m, d = statistics.median(mem), statistics.median(dur)
            print(f"{name + ' ' + strategy:<26}{m:>16,.0f}{d:>16,.0f}{m / d:>12.2f}x")
    print(f"wait_for_completion on an idle job: {idle_wait_ms(max(repeat, 5) * 4):.3f} ms (target <= 5 ms)")


if __name__ == "__main__":
    main()
