"""JobState workloads that run unchanged under routilux-es and the original routilux 0.10.0.

Everything here uses only the routilux 0.10 public API (``JobState(flow_id)``, its mutators,
``save``/``load``, ``execution_history``, ``get_shared_data``, ``get_routine_state``), so the
same function is timed under both interpreters (see ``peer.py``). Each workload takes one
``params`` dict of JSON values and returns a dict of measurements (times in µs or ms,
memory in bytes), and runs in a fresh process of its own.

Data shapes (``params["shape"]``):

* ``flat``: ``{"x": i}``;
* ``nested``: issue 11's event data, a dict holding a list and a ``meta`` dict that holds a
  list and a dict of its own.

Each timed loop cycles over a pool of distinct, pre-built values, so building the data is
not timed and neither implementation sees the same object twice in a row.
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from routilux import JobState

__all__ = [
    "SHAPES",
    "inplace_list_appends",
    "inplace_routine_state_edit",
    "make_data",
    "new_job",
    "record_execution",
    "record_calls_us",
    "record_execution_beside_big_list",
    "record_memory",
    "save_load",
    "timed_calls",
    "update_routine_state",
    "update_shared_data",
]

POOL = 1024  # distinct values per timed loop


def flat_data(i: int) -> dict[str, Any]:
    """The flat shape: one scalar."""
    return {"x": i}


def nested_data(i: int) -> dict[str, Any]:
    """The nested shape of issue 11: a list, and a dict holding a list and a dict."""
    return {
        "result": "processed",
        "count": i,
        "items": [1, 2, 3],
        "meta": {"source": "sensor-7", "tags": ["raw", "checked"], "limits": {"low": 0.5, "high": 9.5}},
    }


SHAPES: dict[str, Callable[[int], dict[str, Any]]] = {"flat": flat_data, "nested": nested_data}


def make_data(shape: str, i: int) -> dict[str, Any]:
    """A fresh value of ``shape`` numbered ``i``."""
    return SHAPES[shape](i)


def _pool(shape: str) -> list[dict[str, Any]]:
    return [make_data(shape, i) for i in range(POOL)]


def timed_calls(call: Callable[[int, dict[str, Any]], None], shape: str, n: int) -> float:
    """Microseconds per call of ``call(i, value)`` over ``n`` calls, values from the pool."""
    pool = _pool(shape)
    gc.collect()
    t0 = time.perf_counter()
    for i in range(n):
        call(i, pool[i % POOL])
    return (time.perf_counter() - t0) / n * 1e6


def new_job() -> Any:
    """An in-memory job (typed ``Any``: the same code drives both implementations)."""
    return JobState("bench")


# -- mutators ---------------------------------------------------------------------------------
def record_calls_us(job: Any, shape: str, n: int) -> float:
    """Microseconds per ``job.record_execution`` call over ``n`` calls with ``shape`` values."""
    record = job.record_execution

    def call(i: int, value: dict[str, Any]) -> None:
        record("processor", "output", value)

    return timed_calls(call, shape, n)


def record_execution(params: dict[str, Any]) -> dict[str, Any]:
    """``record_execution`` on an in-memory job: µs per call."""
    return {"us_per_call": record_calls_us(new_job(), params["shape"], params["n"])}


def update_routine_state(params: dict[str, Any]) -> dict[str, Any]:
    """``update_routine_state`` over 16 routines: µs per call."""
    job = new_job()
    update = job.update_routine_state
    ids = [f"routine_{k}" for k in range(16)]

    def call(i: int, value: dict[str, Any]) -> None:
        update(ids[i & 15], value)

    return {"us_per_call": timed_calls(call, params["shape"], params["n"])}


def update_shared_data(params: dict[str, Any]) -> dict[str, Any]:
    """``update_shared_data`` over 16 keys: µs per call."""
    job = new_job()
    update = job.update_shared_data
    keys = [f"key_{k}" for k in range(16)]

    def call(i: int, value: dict[str, Any]) -> None:
        update(keys[i & 15], value)

    return {"us_per_call": timed_calls(call, params["shape"], params["n"])}


# -- save and load ----------------------------------------------------------------------------
def _touch_history(job: Any) -> int:
    """Read every record's data, so a lazily built history is fully built."""
    return sum(1 for record in job.execution_history if record.data is not None)


def save_load(params: dict[str, Any]) -> dict[str, Any]:
    """``save`` of a job with ``n`` records, then ``load`` of that file and its full history (ms)."""
    n, shape = params["n"], params["shape"]
    job = new_job()
    for i in range(n):
        job.record_execution("processor", "output", make_data(shape, i))
    path = os.path.join(params["dir"], f"job-{os.getpid()}.save")
    gc.collect()
    t0 = time.perf_counter()
    job.save(path)
    save_ms = (time.perf_counter() - t0) * 1e3
    size = os.path.getsize(path)
    del job
    gc.collect()
    t0 = time.perf_counter()
    loaded = JobState.load(path)
    records = _touch_history(loaded)
    load_ms = (time.perf_counter() - t0) * 1e3
    del loaded
    gc.collect()
    # The same load, the history built as a list of records (each one's routine read) but
    # the records' data left to be decoded when first read: what issue 11 calls building
    # the history lazily. The original decodes everything either way.
    t0 = time.perf_counter()
    loaded = JobState.load(path)
    listed = sum(1 for record in loaded.execution_history if record.routine_id)
    lazy_ms = (time.perf_counter() - t0) * 1e3
    os.unlink(path)
    if records != n or listed != n:
        msg = f"load gave {records} and {listed} records, expected {n}"
        raise AssertionError(msg)
    return {"save_ms": save_ms, "load_ms": load_ms, "load_lazy_ms": lazy_ms, "file_bytes": size}


# -- memory -----------------------------------------------------------------------------------
def record_memory(params: dict[str, Any]) -> dict[str, Any]:
    """Traced memory kept per ``record_execution`` (tracemalloc, the same method for both).

    Each record gets a fresh value, as a flow's ``emit`` does: what a record costs is what
    stays allocated once its value has been handed over. Measured again after reading
    ``execution_history`` once, for an implementation that builds it on first read.
    """
    n, shape = params["n"], params["shape"]
    job = new_job()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            job.record_execution("processor", "output", make_data(shape, i))
        gc.collect()
        recorded = tracemalloc.get_traced_memory()[0]
        _touch_history(job)
        gc.collect()
        after_read = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return {"bytes_per_record": (recorded - before) / n, "bytes_per_record_after_read": (after_read - before) / n}


def record_execution_beside_big_list(params: dict[str, Any]) -> dict[str, Any]:
    """Flat ``record_execution`` with a ``list_len``-element list in shared data, or without.

    ``present`` says whether the list is there. Returns µs per call (untraced job) and, from a
    second, traced job: the traced memory the list's state took, the growth per record, and
    the total after ``n`` records. The cost of a mutation, and the memory it keeps, should
    not depend on the size of the rest of the state.
    """
    n, present, list_len = params["n"], params["present"], params["list_len"]

    def fresh_job() -> Any:
        job = new_job()
        if present:
            job.update_shared_data("big", list(range(list_len)))
        return job

    us = record_calls_us(fresh_job(), "flat", n)
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        job = fresh_job()
        gc.collect()
        with_state = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            job.record_execution("processor", "output", flat_data(i))
        gc.collect()
        end = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return {
        "us_per_call": us,
        "state_bytes": with_state - start,
        "bytes_per_record": (end - with_state) / n,
        "total_bytes": end - start,
    }


# -- issue 12: in-place edits (0.10's read-modify-write patterns) -------------------------------
def _unsupported(error: Exception) -> dict[str, Any]:
    first_line = str(error).splitlines()[0] if str(error) else ""
    return {"unsupported": f"raises {type(error).__name__}: {first_line}"}


def inplace_list_appends(params: dict[str, Any]) -> dict[str, Any]:
    """``n`` appends to a shared list through ``get_shared_data("items").append(x)`` (ms).

    Where the implementation refuses the first in-place append, the result says so
    (``unsupported``) instead of failing the benchmark run.
    """
    n = params["n"]
    job = new_job()
    job.update_shared_data("items", [])
    gc.collect()
    t0 = time.perf_counter()
    try:
        job.get_shared_data("items").append(0)
    except Exception as error:  # noqa: BLE001 -- any refusal is reported, not raised
        return _unsupported(error)
    for i in range(1, n):
        job.get_shared_data("items").append(i)
    ms = (time.perf_counter() - t0) * 1e3
    items = job.get_shared_data("items")
    if len(items) != n or items[-1] != n - 1:
        msg = f"after {n} appends the shared list has {len(items)} items"
        raise AssertionError(msg)
    return {"ms": ms, "us_per_append": ms * 1e3 / n}


def inplace_routine_state_edit(params: dict[str, Any]) -> dict[str, Any]:
    """``n`` in-place edits ``job.get_routine_state(r)["count"] += 1`` (µs per edit).

    Where the implementation refuses the first edit, the result says so (``unsupported``).
    """
    n = params["n"]
    job = new_job()
    job.update_routine_state("counter", {"status": "running", "count": 0})
    gc.collect()
    t0 = time.perf_counter()
    try:
        job.get_routine_state("counter")["count"] += 1
    except Exception as error:  # noqa: BLE001 -- any refusal is reported, not raised
        return _unsupported(error)
    for _ in range(1, n):
        job.get_routine_state("counter")["count"] += 1
    us = (time.perf_counter() - t0) / n * 1e6
    count = job.get_routine_state("counter")["count"]
    if count != n:
        msg = f"after {n} edits the count is {count}"
        raise AssertionError(msg)
    return {"us_per_edit": us}
