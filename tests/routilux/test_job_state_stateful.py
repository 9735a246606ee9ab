"""Differential stateful test: a JobState always equals a replay of its own log.

One machine drives every mutator (bad inputs included), status assignments, transactions,
deserialize, save/load and close/reopen of a durable job, and checks after every step:
live ``serialize()`` equals ``JobState.from_events(events).serialize()``; ``at(version=k)``
equals the state recorded right after the step that ended at version k; ``load(save())``
equals the live job; a reopened durable job equals the one that was closed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from routilux.job_state import JobState

keys = st.text(alphabet="abcxyz_", min_size=1, max_size=4)
# Besides JSON-like data, values of every standard type the codec keeps (NaN aside: it is
# never equal to itself, and these checks compare whole states).
exotic = st.one_of(st.integers(), st.datetimes(), st.dates(), st.timedeltas(), st.uuids(),
                   st.decimals(allow_nan=False), st.frozensets(st.integers(0, 9), max_size=3),
                   st.sets(st.text(max_size=3), max_size=3), st.tuples(st.integers(), st.text(max_size=3)))
scalars = st.one_of(exotic, st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(keys | st.integers(0, 3), inner, max_size=3)),
                      max_leaves=6)
flat_dicts = st.dictionaries(keys, st.one_of(st.integers(-5, 5), st.text(max_size=4), st.booleans()), max_size=3)
dicts = st.one_of(flat_dicts, st.dictionaries(keys, values, max_size=3))
ids = st.sampled_from(["a", "b", "c"])
statuses = st.sampled_from(["pending", "running", "paused", "completed", "failed", "cancelled", "awaiting_review"])
# Values that a durable job cannot store: each must be refused with nothing recorded (an
# in-memory job records a placeholder instead: tested in test_job_state.py).
bad_values = st.sampled_from([object(), threading.Lock(), "\ud800", [1, {2, print}], {(1, 2): iter([])}])


class JobStateMachine(RuleBasedStateMachine):
    """Drives a JobState (in memory or durable) and compares it with its replays."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="js-stateful-")
        self.path = os.path.join(self.tmp, "job")
        self.js: JobState | None = None
        self.states: dict[int, dict[str, Any]] = {}

    def teardown(self) -> None:
        if self.js is not None:
            self.js.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- setup --------------------------------------------------------------------
    @initialize(durable=st.booleans(), every=st.sampled_from([3, 7, 4096]))
    def start(self, durable: bool, every: int) -> None:
        self.durable = durable
        self.every = every
        self.js = JobState.open(self.path, flow_id="flow", durability="none") if durable else JobState("flow")
        self.js.snapshot_every = every
        self._record()

    def _record(self) -> None:
        assert self.js is not None
        self.states[self.js.version] = self.js.serialize()

    def _unchanged(self, call: Any) -> None:
        assert self.js is not None
        version, before = self.js.version, self.js.serialize()
        with pytest.raises((TypeError, ValueError)):
            call()
        assert self.js.version == version
        assert self.js.serialize() == before

    # -- mutators -------------------------------------------------------------------
    @rule(status=statuses)
    def set_status(self, status: str) -> None:
        self.js.status = status  # type: ignore[union-attr]
        self._record()

    @rule(rid=st.one_of(st.none(), ids))
    def set_current_routine(self, rid: str | None) -> None:
        self.js.current_routine_id = rid  # type: ignore[union-attr]
        self._record()

    @rule(rid=ids, state=dicts)
    def update_routine_state(self, rid: str, state: dict[str, Any]) -> None:
        self.js.update_routine_state(rid, state)  # type: ignore[union-attr]
        self._record()

    @rule(rid=ids, name=st.sampled_from(["start", "output", "error"]), data=st.one_of(st.none(), dicts))
    def record_execution(self, rid: str, name: str, data: dict[str, Any] | None) -> None:
        self.js.record_execution(rid, name, data)  # type: ignore[union-attr]
        self._record()

    @rule(key=keys, value=values)
    def update_shared_data(self, key: str, value: Any) -> None:
        self.js.update_shared_data(key, value)  # type: ignore[union-attr]
        self._record()

    @rule(entry=dicts)
    def append_to_shared_log(self, entry: dict[str, Any]) -> None:
        self.js.append_to_shared_log(entry)  # type: ignore[union-attr]
        self._record()

    @rule(rid=ids, kind=keys, data=dicts)
    def send_output(self, rid: str, kind: str, data: dict[str, Any]) -> None:
        self.js.send_output(rid, kind, data)  # type: ignore[union-attr]
        self._record()

    @rule(rid=ids, name=keys, data=dicts, clear=st.booleans())
    def deferred(self, rid: str, name: str, data: dict[str, Any], clear: bool) -> None:
        if clear:
            self.js.deferred_events = []  # type: ignore[union-attr]
        else:
            self.js.add_deferred_event(rid, name, data)  # type: ignore[union-attr]
        self._record()

    @rule(tasks=st.lists(flat_dicts, max_size=2))
    def set_pending_tasks(self, tasks: list[dict[str, Any]]) -> None:
        self.js.pending_tasks = tasks  # type: ignore[union-attr]
        self._record()

    @rule(which=st.sampled_from(["paused", "running", "cancelled"]), reason=st.sampled_from(["", "why"]),
          checkpoint=st.one_of(st.none(), flat_dicts))
    def engine_status(self, which: str, reason: str, checkpoint: dict[str, Any] | None) -> None:
        js = self.js
        assert js is not None
        if which == "paused":
            js._set_paused(reason, checkpoint)
        elif which == "running":
            js._set_running()
        else:
            js._set_cancelled(reason)
        self._record()

    @rule(task_id=ids, step=st.sampled_from(["queued", "started", "finished", "failed"]), task=flat_dicts)
    def task(self, task_id: str, step: str, task: dict[str, Any]) -> None:
        js = self.js
        assert js is not None
        if step == "queued":
            js._task_queued(task_id, task)
        elif step == "started":
            js._task_started(task_id)
        elif step == "finished":
            js._task_finished(task_id)
        else:
            js._task_failed(task_id, {"error": "boom"})
        self._record()

    @rule(data=flat_dicts, abort=st.booleans(), bad=st.booleans())
    def transaction(self, data: dict[str, Any], abort: bool, bad: bool) -> None:
        js = self.js
        assert js is not None
        version = js.version
        try:
            with js._transaction():
                js.record_execution("a", "emit", data)
                js._task_queued("tx", data)
                if bad:
                    with pytest.raises(TypeError):
                        js.update_shared_data(1, "v")  # type: ignore[arg-type]
                if abort:
                    raise KeyError("abort")
        except KeyError:
            assert js.version == version
        else:
            assert js.version == version + 2
        self._record()

    @precondition(lambda self: self.durable)
    @rule(value=bad_values, which=st.sampled_from(["shared", "state", "record", "log", "output", "task"]))
    def bad_input(self, value: Any, which: str) -> None:
        js = self.js
        assert js is not None
        calls = {
            "shared": lambda: js.update_shared_data("k", value),
            "state": lambda: js.update_routine_state("a", {"v": value}),
            "record": lambda: js.record_execution("a", "e", {"v": value}),
            "log": lambda: js.append_to_shared_log({"v": value}),
            "output": lambda: js.send_output("a", "t", {"v": value}),
            "task": lambda: js._task_queued("t", {"v": value}),
        }
        self._unchanged(calls[which])

    @rule(bad=st.sampled_from(["", None, 1, b"running"]))
    def bad_status(self, bad: Any) -> None:
        def assign() -> None:
            self.js.status = bad  # type: ignore[union-attr]
        self._unchanged(assign)

    @precondition(lambda self: len(self.states) > 0)
    @rule(pick=st.integers(0, 10_000), partial=st.booleans())
    def deserialize(self, pick: int, partial: bool) -> None:
        js = self.js
        assert js is not None
        versions = sorted(self.states)
        data = dict(self.states[versions[pick % len(versions)]])
        if partial:
            data = {k: data[k] for k in ("_type", "status", "shared_data", "execution_history")}
        js.deserialize(data)
        self._record()

    @rule(bad=st.sampled_from([{"_type": "Flow"}, {"status": ""}, {"extra": 1}, {"execution_history": [1]},
                               {"updated_at": "never"}]))
    def bad_deserialize(self, bad: dict[str, Any]) -> None:
        self._unchanged(lambda: self.js.deserialize(bad))  # type: ignore[union-attr]

    # -- persistence ------------------------------------------------------------------
    @rule(keep_going=st.booleans())
    def save_and_load(self, keep_going: bool) -> None:
        js = self.js
        assert js is not None
        target = os.path.join(self.tmp, "saved.job")
        js.save(target)
        loaded = JobState.load(target)
        assert loaded.serialize() == js.serialize()
        assert loaded.head_hash == js.head_hash and loaded.version == js.version
        if keep_going and not self.durable:
            loaded.snapshot_every = self.every
            self.js = loaded  # a loaded job is an in-memory job that can keep going

    @precondition(lambda self: self.durable)
    @rule()
    def close_and_reopen(self) -> None:
        js = self.js
        assert js is not None
        before, head = js.serialize(), js.head_hash
        js.close()
        self.js = JobState.open(self.path, durability="none")
        self.js.snapshot_every = self.every
        assert self.js.serialize() == before
        assert self.js.head_hash == head

    @precondition(lambda self: len(self.states) > 0)
    @rule(pick=st.integers(0, 10_000))
    def check_at(self, pick: int) -> None:
        versions = sorted(self.states)
        version = versions[pick % len(versions)]
        view = self.js.at(version=version)  # type: ignore[union-attr]
        assert view.serialize() == self.states[version]

    # -- invariants --------------------------------------------------------------------
    @invariant()
    def live_equals_replay(self) -> None:
        if self.js is None:
            return
        live = self.js.serialize()
        assert JobState.from_events(self.js.events()).serialize() == live
        assert self.states[self.js.version] == live
        assert self.js.at(version=self.js.version).serialize() == live


TestJobStateMachine = JobStateMachine.TestCase
