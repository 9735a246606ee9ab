"""Benchmarks of the event-sourced JobState (issue 3), all measured in one run.

    python benchmarks/bench_job_state.py            # full sizes (a few minutes)
    python benchmarks/bench_job_state.py --quick    # small sizes, a sanity run (seconds)
    python benchmarks/bench_job_state.py --pg postgresql://user@host:port/db   # + PostgreSQL

What it measures (medians of ``--runs`` runs; targets from issue 3):

1. ``record_execution`` on an in-memory JobState vs a plain in-memory list-append
   implementation written like the original routilux 0.10 (an ExecutionRecord object
   with a serializable-fields list, ``datetime.now()`` twice, ``list.append``), both in
   this process: target ratio <= 1.5.
2. ``record_execution`` on a durable ``"batch"`` JobState: target <= 5 us per call.
3. ``save`` of a job with 100k execution records (target <= 150 ms) and ``load``
   including building the full history (target <= 300 ms).
4. Replay, ``JobState.from_events(events)`` with the history built: target >= 400k events/s.
5. ``at(version=k)`` on a 1M-event durable job, reading status, routine states and shared
   data, for k spread over the whole log: target <= 100 ms for any k. JobState.open asks
   the file log to keep policy snapshots at most ``routilux.job_state.SNAPSHOT_GAP``
   events apart, so any k is a snapshot plus a short replay.
6. With ``--pg URL`` (issue 6): ``at(version=k)`` on a 100k-event job in PostgreSQL vs
   the same job in a file log, built the same way, in the same run.

The machine is shared and noisy: compare ratios measured in the same run, and rerun
before drawing conclusions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import routilux.job_state  # noqa: E402
from routilux.job_state import JobState  # noqa: E402

DATA = {"result": "processed", "count": 10}


# -- the baseline: a plain in-memory implementation shaped like routilux 0.10 -------------
class _PlainSerializable:
    def __init__(self) -> None:
        self.fields_to_serialize: list[str] = []

    def add_serializable_fields(self, fields: list[str]) -> None:
        for name in fields:
            if not isinstance(name, str):
                raise TypeError(name)
            if name not in self.fields_to_serialize:
                self.fields_to_serialize.append(name)


class PlainRecord(_PlainSerializable):
    """ExecutionRecord as the original builds it."""

    def __init__(self, routine_id: str = "", event_name: str = "", data: dict[str, Any] | None = None,
                 timestamp: dt.datetime | None = None) -> None:
        super().__init__()
        self.routine_id = routine_id
        self.event_name = event_name
        self.data = data or {}
        self.timestamp = timestamp or dt.datetime.now()
        self.add_serializable_fields(["routine_id", "event_name", "data", "timestamp"])


class PlainJobState:
    """The original's record_execution: build a record, append it, refresh updated_at."""

    def __init__(self) -> None:
        self.execution_history: list[PlainRecord] = []
        self.updated_at = dt.datetime.now()

    def record_execution(self, routine_id: str, event_name: str, data: dict[str, Any]) -> None:
        self.execution_history.append(PlainRecord(routine_id, event_name, data))
        self.updated_at = dt.datetime.now()


# -- helpers --------------------------------------------------------------------------------
def median_of(runs: int, once: Callable[[], float]) -> float:
    return statistics.median(once() for _ in range(runs))


def per_call_us(make: Callable[[], Any], n: int, cleanup: Callable[[Any], None] | None = None) -> float:
    obj = make()
    f = obj.record_execution
    t0 = time.perf_counter()
    for _ in range(n):
        f("processor", "output", DATA)
    elapsed = time.perf_counter() - t0
    if cleanup is not None:
        cleanup(obj)
    return elapsed / n * 1e6


def report(name: str, value: float, unit: str, target: str, ok: bool) -> None:
    print(f"  {name:<58} {value:>10.2f} {unit:<8} target {target:<12} {'ok' if ok else 'MISSED'}")


def build_job(js: JobState, n: int) -> None:
    """A realistic mix: mostly execution records, with routine-state and shared-data writes."""
    js.status = "running"
    i = 0
    while js.version < n:
        if i % 100 == 0:
            js.update_routine_state(f"r{i % 7}", {"status": "running", "i": i})
            js.update_shared_data("progress", i)
        else:
            js.record_execution(f"r{i % 7}", "output", {"i": i, "ok": True})
        i += 1


def time_at(reader: JobState, rng: random.Random, runs: int) -> tuple[float, float, int]:
    """Median and worst ``at(version=k)`` time (ms) over spread-out k, and the snapshot count."""
    head = reader.version
    ks = sorted({1, head // 2, head, *(rng.randint(1, head) for _ in range(8))})
    times = []
    for k in ks:
        def at_once(k: int = k) -> float:
            t1 = time.perf_counter()
            view = reader.at(version=k)
            _ = (view.status, dict(view.routine_states), dict(view.shared_data))
            return (time.perf_counter() - t1) * 1e3
        first = at_once()
        # A version far from any kept snapshot replays a long stretch: once is enough.
        times.append(first if first > 1000 else median_of(runs, at_once))
    return statistics.median(times), max(times), len(reader.log.snapshots())


def build_batched(js: JobState, n: int) -> None:
    """build_job's mix, appended in transactions of 500 events (one round trip each on PostgreSQL)."""
    js.status = "running"
    i = 0
    while js.version < n:
        with js._transaction():
            for _ in range(min(500, n - js.version)):
                if i % 100 == 0:
                    js.update_routine_state(f"r{i % 7}", {"status": "running", "i": i})
                else:
                    js.record_execution(f"r{i % 7}", "output", {"i": i, "ok": True})
                i += 1


def bench_pg(url: str, n: int, scratch: str, rng: random.Random, runs: int) -> None:
    """at(version=k) on an n-event job in PostgreSQL and in a file log, built identically."""
    from routilux.job_store import JobStore

    job_id = f"bench-{os.getpid()}-{time.time_ns()}"
    rows = []
    for label, location in (("file log", os.path.join(scratch, "pg-twin")), ("PostgreSQL", f"{url}#{job_id}")):
        t0 = time.perf_counter()
        with JobState.open(location, flow_id="bench", durability="none") as job:
            build_batched(job, n)
            job.sync()
        build_s = time.perf_counter() - t0
        with JobState.open(location, readonly=True) as reader:
            med, worst, n_snaps = time_at(reader, random.Random(rng.random()), runs)
        rows.append((label, med, worst, n_snaps, build_s))
    JobStore(url).delete(job_id)
    print(f"at(version=k) on a {n}-event job: PostgreSQL vs file log (same events, batches of 500)")
    for label, med, worst, n_snaps, build_s in rows:
        report(f"{label}: median ({n_snaps} snapshots, built in {build_s:.1f} s)", med, "ms", "", True)
        report(f"{label}: worst version", worst, "ms", "", True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a sanity run")
    parser.add_argument("--runs", type=int, default=None, help="runs per measurement (median reported)")
    parser.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    parser.add_argument("--big", type=int, default=None, help="events in the at() job (default 1M, quick 20k)")
    parser.add_argument("--pg", default=None, metavar="URL",
                        help="also time at() on a PostgreSQL job (postgresql://user@host:port/database)")
    parser.add_argument("--pg-events", type=int, default=None, help="events in the PG/file at() jobs (default 100k)")
    args = parser.parse_args()
    quick = args.quick
    runs = args.runs or (3 if quick else 5)
    n_calls = 20_000 if quick else 200_000
    n_durable = 5_000 if quick else 100_000
    n_records = 10_000 if quick else 100_000
    n_big = args.big or (20_000 if quick else 1_000_000)
    scratch = args.dir or tempfile.mkdtemp(prefix="bench-job-state-")
    rng = random.Random(20261128)
    print(f"bench_job_state: runs={runs} quick={quick} python={sys.version.split()[0]} "
          f"cpus={os.cpu_count()} loadavg={os.getloadavg()[0]:.1f} scratch={scratch}")

    # 1. in-memory record_execution vs the plain baseline, interleaved in one run.
    mine, plain = [], []
    for _ in range(runs):
        mine.append(per_call_us(JobState, n_calls))
        plain.append(per_call_us(PlainJobState, n_calls))
    ours, base = statistics.median(mine), statistics.median(plain)
    print("record_execution (in memory)")
    report("JobState.record_execution", ours, "us/call", "", True)
    report("plain list-append implementation (routilux 0.10 shape)", base, "us/call", "", True)
    report("ratio JobState / plain", ours / base, "x", "<= 1.5", ours / base <= 1.5)

    # 2. durable "batch".
    counter = iter(range(10**9))

    def durable() -> JobState:
        return JobState.open(os.path.join(scratch, f"durable-{next(counter)}"), durability="batch")

    us = median_of(runs, lambda: per_call_us(durable, n_durable, cleanup=lambda js: js.close()))
    print('record_execution (durable, "batch")')
    report(f"JobState.open(..., durability='batch'), {n_durable} calls", us, "us/call", "<= 5", us <= 5)

    # 3. save / load.
    job = JobState("bench")
    for i in range(n_records):
        job.record_execution("processor", "output", {"result": "processed", "count": i})
    path = os.path.join(scratch, "job.bundle")

    def save_once() -> float:
        t0 = time.perf_counter()
        job.save(path)
        return (time.perf_counter() - t0) * 1e3

    def load_once() -> float:
        t0 = time.perf_counter()
        loaded = JobState.load(path)
        history = loaded.execution_history  # built by load; this only reads it
        assert len(history) == n_records and history[-1].data["count"] == n_records - 1
        return (time.perf_counter() - t0) * 1e3

    save_ms = median_of(runs, save_once)
    load_ms = median_of(runs, load_once)
    print(f"save / load ({n_records} execution records, {os.path.getsize(path) / 1e6:.1f} MB)")
    report("save", save_ms, "ms", "<= 150", save_ms <= 150 or quick)
    report("load, including the full history", load_ms, "ms", "<= 300", load_ms <= 300 or quick)

    # 4. replay.
    events = job.events()

    def replay_once() -> float:
        t0 = time.perf_counter()
        rebuilt = JobState.from_events(events)
        assert len(rebuilt.execution_history) == n_records
        return len(events) / (time.perf_counter() - t0)

    rate = median_of(runs, replay_once)
    print(f"replay ({len(events)} events)")
    report("JobState.from_events", rate / 1e3, "k ev/s", ">= 400", rate >= 400_000)
    job = events = None  # type: ignore[assignment]  # free the 100k records before step 5
    gc.collect()

    # 5. at(version=k) on a big durable job.
    big_path = os.path.join(scratch, "big")
    t0 = time.perf_counter()
    # The bytes on disk do not depend on durability; "none" only builds faster.
    with JobState.open(big_path, flow_id="bench", durability="none") as big:
        build_job(big, n_big)
        big.sync()  # the last policy snapshot is on disk before timing starts
    build_s = time.perf_counter() - t0
    with JobState.open(big_path, readonly=True) as reader:
        med, worst, n_snaps = time_at(reader, rng, runs)
    print(f"at(version=k) on a {reader.version}-event durable job (built in {build_s:.1f} s; {n_snaps} snapshots "
          f"kept, at most {routilux.job_state.JOB_SNAPSHOT_GAP} events apart)")
    report("median over the versions", med, "ms", "", True)
    report("worst version", worst, "ms", "<= 100", worst <= 100)

    # 6. the same on PostgreSQL vs a file log.
    if args.pg:
        bench_pg(args.pg, args.pg_events or (20_000 if quick else 100_000), scratch, rng, runs)
    if args.dir is None:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
