"""A JobState transaction appends the bytes its mutators encoded, and durable snapshots.

Inside ``_transaction()`` every mutator encodes (and checks) its event at the call and
the commit appends those bytes (``append_batch_encoded``). What is recorded and applied must be exactly what a
replay of the log builds, a copy of the caller's data, in both backends. A durable job
encodes its snapshot state under its lock and a background writer stores the bytes: every
stored snapshot must equal the state a full replay builds at its seq.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest

from eventlog import EventEncodingError, open_log
from routilux.frozen import thaw
from routilux.job_state import JobState
from routilux.projection import fold, snapshot_state


def _mutate(js: JobState, rng: random.Random, n: int) -> None:
    """Transactions like the flow engine's: flat and nested records, task lifecycle events."""
    js.status = "running"
    for i in range(n):
        flat = {"value": i, "name": f"v{i}", "ok": bool(i % 2), "ratio": i / 7, "none": None}
        nested = {"items": [i, {"deep": [i, "x"]}], "tuple": (1, 2)}
        with js._transaction():
            if i:
                js._task_finished(f"t{i - 1}")
            js.record_execution("burst", "out", flat if rng.random() < 0.7 else nested)
            js._task_queued(f"t{i}", {"routine_id": "sink", "slot": "in", "data": {"value": i}})
            js._task_started(f"t{i}")
        flat["value"] = -1  # the record is a copy taken at the call
        if rng.random() < 0.2:
            js.update_shared_data("k", i)  # outside a transaction


def _replayed(log: Any) -> dict[str, Any]:
    """The state a full replay (no snapshot) builds, in snapshot form."""
    return thaw(snapshot_state(fold(log.read())))


@pytest.mark.parametrize("durable", [False, True])
def test_transaction_records_equal_a_replay(tmp_path: Path, rng: random.Random, durable: bool) -> None:
    """History, open tasks and the whole state equal a replay; data was copied at the call."""
    js = JobState.open(tmp_path / "job", flow_id="f", durability="none") if durable else JobState("f")
    try:
        _mutate(js, rng, 60)
        history = [(r.routine_id, r.event_name, dict(r.data)) for r in js.execution_history]
        assert len(history) == 60
        assert all(data.get("value", 0) >= 0 for _, _, data in history)
        assert history[0][2] in ({"value": 0, "name": "v0", "ok": False, "ratio": 0.0, "none": None},
                                 {"items": [0, {"deep": [0, "x"]}], "tuple": (1, 2)})
        assert set(js.open_tasks) == {"t59"}
        assert thaw(snapshot_state(js._p)) == _replayed(js.log)
    finally:
        if durable:
            js.close()


def test_transaction_refuses_bad_data_at_the_call(tmp_path: Path) -> None:
    """An unencodable value raises inside the transaction and nothing of it is appended."""
    with JobState.open(tmp_path / "job", flow_id="f") as js:
        version = js.version
        with pytest.raises(EventEncodingError), js._transaction():
            js.record_execution("r", "ok", {"v": 1})
            js.record_execution("r", "bad", {"v": {1, 2, threading.Lock()}})
        assert js.version == version and js.execution_history == []


def test_durable_snapshots_equal_a_full_replay(tmp_path: Path, rng: random.Random) -> None:
    """Snapshots encoded under the job's lock and stored in the background are exact."""
    path = tmp_path / "job"
    with JobState.open(path, flow_id="f") as js:
        js.snapshot_every = 25
        _mutate(js, rng, 80)
        version = js.version
    with open_log(path, readonly=True) as log:
        snaps = log.snapshots()
        assert snaps, "no snapshot was stored"
        for snap in snaps:
            assert snap.state == _replayed_at(log, snap.seq), f"snapshot at seq {snap.seq} differs"
    with JobState.open(path) as again:  # and a reopen from the newest one continues exactly
        assert again.version == version
        assert thaw(snapshot_state(again._p)) == _replayed(again.log)


def _replayed_at(log: Any, seq: int) -> dict[str, Any]:
    return thaw(snapshot_state(fold(log.read(1, seq))))
