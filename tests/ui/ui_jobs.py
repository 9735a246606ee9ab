"""Random jobs for the ui tests: mutation sequences drawn by hypothesis, written to durable logs."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import strategies as st

from replay_tools import open_job
from replay_tools.source import Job
from routilux.job_state import JobState

_keys = st.sampled_from(["limit", "a.b", "$tag", "x y", "done", "0"])
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.text(max_size=5),
                     st.floats(allow_nan=False, allow_infinity=False, width=32), st.binary(max_size=4))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(_keys, inner, max_size=3)), max_leaves=6)
_routines = st.sampled_from(["fetch", "price", "$odd"])

#: One mutation of a JobState through its public API (and the engine's hooks).
operations = st.one_of(
    st.tuples(st.just("status"), st.sampled_from(["running", "completed", "failed", "paused"])),
    st.tuples(st.just("current"), st.one_of(st.none(), _routines)),
    st.tuples(st.just("shared"), _keys, _values),
    st.tuples(st.just("routine_state"), _routines, st.dictionaries(_keys, _values, max_size=3)),
    st.tuples(st.just("record"), _routines, st.sampled_from(["tick", "error", "completed"]), st.dictionaries(_keys, _values, max_size=2)),
    st.tuples(st.just("output"), _routines, st.dictionaries(_keys, _values, max_size=2)),
    st.tuples(st.just("log"), st.dictionaries(_keys, _values, max_size=2)),
    st.tuples(st.just("defer"), _routines),
    st.tuples(st.just("clear_deferred")),
    st.tuples(st.just("pending"), st.lists(st.dictionaries(_keys, _scalars, max_size=2), max_size=3)),
    st.tuples(st.just("pause")),
    st.tuples(st.just("resume")),
    st.tuples(st.just("task"), st.integers(0, 3), st.sampled_from(["queued", "started", "finished", "failed"]),
              _routines),
    st.tuples(st.just("deserialize"), st.booleans()),
)


def apply_operation(job: JobState, op: tuple[Any, ...]) -> None:
    """Perform one of :data:`operations` on ``job``."""
    name = op[0]
    if name == "status":
        job.status = op[1]
    elif name == "current":
        job.current_routine_id = op[1]
    elif name == "shared":
        job.update_shared_data(op[1], op[2])
    elif name == "routine_state":
        job.update_routine_state(op[1], op[2])
    elif name == "record":
        job.record_execution(op[1], op[2], op[3])
    elif name == "output":
        job.send_output(op[1], "out", op[2])
    elif name == "log":
        job.append_to_shared_log(op[1])
    elif name == "defer":
        job.add_deferred_event(op[1], "later", {"n": 1})
    elif name == "clear_deferred":
        job.deferred_events = []
    elif name == "pending":
        job.pending_tasks = op[1]
    elif name == "pause":
        job._set_paused(reason="check", checkpoint={"at": 1})
    elif name == "resume":
        job._set_running()
    elif name == "task":
        task_id, what = f"t{op[1]}", op[2]
        if what == "queued":
            job._task_queued(task_id, {"routine_id": op[3] if len(op) > 3 else "fetch", "slot": "in", "data": {}})
        elif what == "started":
            job._task_started(task_id)
        elif what == "finished":
            job._task_finished(task_id)
        else:
            job._task_failed(task_id, {"error": "boom", "error_type": "ValueError"})
    elif name == "deserialize":
        data = job.serialize()
        if op[1]:
            data["shared_data"] = {"restored": True}
            data["execution_history"] = data["execution_history"][:1]
        job.deserialize(data)


@contextmanager
def random_job(ops: list[tuple[Any, ...]], snapshot_every: int = 5) -> Iterator[Job]:
    """A durable job made by ``ops`` (snapshots every few events), opened read-only."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "job")
        job = JobState.open(path, flow_id="random")
        job.snapshot_every = snapshot_every
        try:
            for op in ops:
                apply_operation(job, op)
        finally:
            job.close()
        opened = open_job(path)
        try:
            yield opened
        finally:
            opened.close()
