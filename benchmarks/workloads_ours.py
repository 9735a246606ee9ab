"""Workloads only routilux-es can run: durable jobs, replay from disk, time travel.

The original routilux 0.10 has no durable log, so these rows compare with something else,
and the table says what: a durable ``record_execution`` with the original's in-memory
figure, replay from disk with SQLite (stdlib ``sqlite3`` select + ``msgpack.unpackb`` of
the very same event bytes), ``at()`` with nothing (a figure of ours alone).
"""

from __future__ import annotations

import gc
import os
import random
import shutil
import sqlite3
import time
from typing import Any

import msgpack
from workloads import make_data, record_calls_us

import eventlog
from routilux import JobState

__all__ = [
    "at_versions",
    "copy_to_postgres",
    "delete_postgres_job",
    "prepare_replay",
    "record_execution_durable",
    "replay_ours",
    "replay_sqlite",
]


def record_execution_durable(params: dict[str, Any]) -> dict[str, Any]:
    """``record_execution`` on ``JobState.open(dir, durability="batch")``: µs per call.

    The time covers the calls (each one's bytes reach the kernel before it returns); the
    final flush at ``close`` is not included.
    """
    path = os.path.join(params["dir"], f"durable-{os.getpid()}")
    job = JobState.open(path, flow_id="bench", durability="batch")
    try:
        return {"us_per_call": record_calls_us(job, params["shape"], params["n"])}
    finally:
        job.close()
        shutil.rmtree(path, ignore_errors=True)


# -- replay from disk, against SQLite ----------------------------------------------------------
def prepare_replay(params: dict[str, Any]) -> dict[str, Any]:
    """Write a durable job of ``events`` events, and the same event bytes into a SQLite table.

    The job is mostly ``record_execution`` of ``shape`` data, with a routine-state and a
    shared-data write every 100 events. The SQLite table ``events(seq, ts, event)`` holds
    each event's stored bytes (msgpack of ``[kind, data]``), written in one transaction.
    """
    job_dir, db_path, n, shape = params["job_dir"], params["db_path"], params["events"], params["shape"]
    t0 = time.perf_counter()
    # The bytes on disk do not depend on durability; "none" only writes faster.
    with JobState.open(job_dir, flow_id="bench", durability="none") as job:
        job.status = "running"
        i = 0
        while job.version < n:
            if i % 100 == 0:
                job.update_routine_state(f"r{i % 7}", {"status": "running", "step": i})
                job.update_shared_data("progress", {"step": i, "last": make_data(shape, i)})
            else:
                job.record_execution(f"r{i % 7}", "output", make_data(shape, i))
            i += 1
        job.sync()
        head = job.version
    build_s = time.perf_counter() - t0
    db = sqlite3.connect(db_path)
    try:
        db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, event BLOB NOT NULL)")
        with eventlog.open_log(job_dir, readonly=True) as log, db:
            db.executemany("INSERT INTO events VALUES (?, ?, ?)", log.read_raw())
    finally:
        db.close()
    return {"events": head, "build_s": build_s, "log_bytes": _tree_bytes(job_dir),
            "sqlite_bytes": os.path.getsize(db_path)}


def _tree_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _s, files in os.walk(path) for f in files)


def copy_to_postgres(params: dict[str, Any]) -> dict[str, Any]:
    """Copy the prepared job to ``params["pg_job"]`` (``postgresql://...#<job id>``)."""
    from replay_tools.copying import copy_job

    t0 = time.perf_counter()
    copy_job(params["job_dir"], params["pg_job"])
    return {"copy_s": time.perf_counter() - t0}


def delete_postgres_job(params: dict[str, Any]) -> dict[str, Any]:
    """Delete the job copied by ``copy_to_postgres`` (the URL's ``#<job id>``)."""
    from routilux.job_store import JobStore

    url, job_id = params["pg_job"].split("#", 1)
    JobStore(url).delete(job_id)
    return {"deleted": 1}


def replay_ours(params: dict[str, Any]) -> dict[str, Any]:
    """``JobState.open(dir, readonly=True)`` with the state fully built: events per second.

    "Fully built" means status, routine states, shared data, and every execution record's
    data read, so a lazily built history is paid for inside the timing.
    """
    gc.collect()
    t0 = time.perf_counter()
    with JobState.open(params["job_dir"], readonly=True) as job:
        _ = (job.status, dict(job.routine_states), dict(job.shared_data), len(job.shared_log))
        records = sum(1 for record in job.execution_history if record.data is not None)
        events = job.version
    seconds = time.perf_counter() - t0
    if records == 0:
        msg = "the replayed job has no execution records"
        raise AssertionError(msg)
    # The same open, the history listed (every record built, its routine read) but the
    # records' data left to be decoded when first read, as a program that looks at the
    # current state and the history's shape pays.
    gc.collect()
    t0 = time.perf_counter()
    with JobState.open(params["job_dir"], readonly=True) as job:
        _ = (job.status, dict(job.routine_states), dict(job.shared_data), len(job.shared_log))
        listed = sum(1 for record in job.execution_history if record.routine_id)
    lazy_seconds = time.perf_counter() - t0
    if listed != records:
        msg = f"the second open listed {listed} records, the first {records}"
        raise AssertionError(msg)
    return {"events_per_s": events / seconds, "ms": seconds * 1e3, "events": events,
            "events_per_s_lazy": events / lazy_seconds}


def replay_sqlite(params: dict[str, Any]) -> dict[str, Any]:
    """SQLite select of every event in seq order + ``msgpack.unpackb`` of each: events per second.

    ``events_per_s`` drops each decoded event at once (issue 11's reference figure);
    ``events_per_s_kept`` keeps them all in a list, as a replay whose state is fully built
    keeps every record's data: with ~5 containers per event alive, Python's cyclic
    collector then runs full collections as the heap grows, on both sides.
    """
    rates = {}
    for name, keep in (("events_per_s", False), ("events_per_s_kept", True)):
        gc.collect()
        t0 = time.perf_counter()
        db = sqlite3.connect(params["db_path"])
        try:
            unpack = msgpack.unpackb
            kept: list[Any] = []
            events = 0
            for _seq, _ts, event in db.execute("SELECT seq, ts, event FROM events ORDER BY seq"):
                value = unpack(event)
                if keep:
                    kept.append(value)
                events += 1
        finally:
            db.close()
        seconds = time.perf_counter() - t0
        del kept
        rates[name] = events / seconds
    return {**rates, "ms": events / rates["events_per_s"] * 1e3, "events": events}


# -- time travel ---------------------------------------------------------------------------------
def at_versions(params: dict[str, Any]) -> dict[str, Any]:
    """``at(version=k)`` on the prepared job for spread-out k: median and worst ms.

    Each view reads status, routine states and shared data (what a debugging session looks
    at first). k is the first, middle and last version plus ``samples`` random ones.
    """
    rng = random.Random(params.get("seed", 20261207))
    with JobState.open(params["job_dir"], readonly=True) as job:
        head = job.version
        ks = sorted({1, head // 2, head, *(rng.randint(1, head) for _ in range(params["samples"]))})
        times = []
        for k in ks:
            t0 = time.perf_counter()
            view = job.at(version=k)
            _ = (view.status, dict(view.routine_states), dict(view.shared_data))
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {"median_ms": times[len(times) // 2], "worst_ms": times[-1], "versions": len(ks)}
