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


# -- in-place edits (issue 12) ------------------------------------------------------------
# Each edit rule draws a container inside the job (or a field itself), an operation a dict
# or list accepts, and applies it both to the job's live value and to a plain copy (what
# routilux 0.10's plain containers do): same result or same exception type, same contents
# after. The invariants above then check that replay, at(), snapshots + tail, save/load
# and a durable reopen all agree with the live job.
from routilux import job_events as ev  # noqa: E402
from routilux.errors import DetachedValueError, ReadOnlyJobStateError  # noqa: E402
from routilux.frozen import thaw  # noqa: E402
from routilux.job_state import ExecutionRecord  # noqa: E402

_CONTAINER_TYPES = (dict, list)


def _container_paths(root: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every dict and list inside ``root`` (tuples are walked through), ``root`` first."""
    out = [path] if isinstance(root, _CONTAINER_TYPES) else []
    if isinstance(root, dict):
        items: Any = root.items()
    elif isinstance(root, (list, tuple)):
        items = enumerate(root)
    else:
        return out
    for key, child in items:
        if isinstance(child, (dict, list, tuple)):
            out.extend(_container_paths(child, (*path, key)))
    return out


def _at(root: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        root = root[key]
    return root


def _outcome(call: Any) -> Any:
    try:
        return ("ok", call())
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        return ("raised", type(exc).__name__)


def _list_op(data: Any, n: int, value: Any) -> tuple[str, Any]:
    index = st.integers(-n - 2, n + 1)
    step = st.sampled_from([None, 1, 2, -1])
    bound = st.one_of(st.none(), st.integers(-n - 1, n + 1))
    which = data.draw(st.sampled_from(["append", "extend", "insert", "pop", "pop_at", "remove", "clear", "setitem",
                                       "delitem", "setslice", "delslice", "sort", "sort_key", "reverse", "iadd",
                                       "imul"]))
    if which in ("append", "remove"):
        return which, (data.draw(value),)
    if which in ("extend", "iadd"):
        return which, (data.draw(st.lists(value, max_size=3)),)
    if which == "insert":
        return which, (data.draw(index), data.draw(value))
    if which in ("pop_at", "delitem"):
        return which, (data.draw(index),)
    if which == "setitem":
        return which, (data.draw(index), data.draw(value))
    if which == "setslice":
        return which, (slice(data.draw(bound), data.draw(bound), data.draw(step)), data.draw(st.lists(value, max_size=3)))
    if which == "delslice":
        return which, (slice(data.draw(bound), data.draw(bound), data.draw(step)),)
    if which == "sort":
        return which, (data.draw(st.booleans()),)
    if which == "imul":
        return which, (data.draw(st.sampled_from([-1, 0, 2])),)
    return which, ()


def _dict_op(data: Any, keys_now: list[Any], key: Any, value: Any) -> tuple[str, Any]:
    some_key = st.sampled_from(keys_now) | key if keys_now else key
    which = data.draw(st.sampled_from(["setitem", "delitem", "pop", "pop_default", "popitem", "clear", "update",
                                       "update_kwargs", "setdefault", "ior"]))
    if which in ("setitem", "setdefault"):
        return which, (data.draw(some_key), data.draw(value))
    if which in ("delitem", "pop"):
        return which, (data.draw(some_key),)
    if which == "pop_default":
        return which, (data.draw(some_key), "default")
    if which in ("update", "ior"):
        return which, (data.draw(st.dictionaries(some_key, value, max_size=2)),)
    if which == "update_kwargs":
        return which, (data.draw(st.dictionaries(st.sampled_from(["kw", "a"]), value, max_size=2)),)
    return which, ()


def _apply_op(target: Any, parent: Any, key: Any, which: str, args: tuple[Any, ...]) -> Any:
    """Perform the drawn operation on ``target`` (``parent[key]`` when the op re-assigns, as ``+=`` does)."""
    if which == "append":
        return target.append(args[0])
    if which == "extend":
        return target.extend(args[0])
    if which == "insert":
        return target.insert(*args)
    if which == "pop":
        return target.pop(args[0]) if isinstance(target, dict) else target.pop()
    if which == "pop_at":
        return target.pop(args[0])
    if which == "pop_default":
        return target.pop(*args)
    if which == "remove":
        return target.remove(args[0])
    if which == "clear":
        return target.clear()
    if which in ("setitem", "setslice"):
        target[args[0]] = args[1]
        return None
    if which in ("delitem", "delslice"):
        del target[args[0]]
        return None
    if which == "sort":
        return target.sort(reverse=args[0])
    if which == "sort_key":
        return target.sort(key=repr)
    if which == "reverse":
        return target.reverse()
    if which == "popitem":
        return target.popitem()
    if which == "update":
        return target.update(args[0])
    if which == "update_kwargs":
        return target.update(**args[0])
    if which == "setdefault":
        return target.setdefault(*args)
    if which in ("iadd", "imul", "ior"):
        if parent is None:  # the field itself: `job.shared_log += [...]` re-assigns the attribute
            return None
        if which == "iadd":
            parent[key] += args[0]
        elif which == "imul":
            parent[key] *= args[0]
        else:
            parent[key] |= args[0]
        return None
    raise AssertionError(which)


def _entries(value: Any) -> Any:
    return st.dictionaries(keys, value, max_size=2)


class EditingJobStateMachine(JobStateMachine):
    """The machine above, plus in-place edits of every editable field (nested too)."""

    def _editable(self) -> JobState:
        """The job, made editable: an ended job's values refuse edits (checked here), so it is set running."""
        js = self.js
        assert js is not None
        if js.status in ev.TERMINAL_STATUSES:
            version = js.version
            with pytest.raises(ReadOnlyJobStateError, match="has ended"):
                js.shared_data["x"] = 1
            with pytest.raises(ReadOnlyJobStateError, match="has ended"):
                js.shared_log.append({})
            assert js.version == version
            js.status = "running"
            self._record()
        return js

    @precondition(lambda self: self.js is not None)
    @rule(data=st.data(), field=st.sampled_from(["shared_data", "routine_states", "shared_log"]))
    def edit_in_place(self, data: Any, field: str) -> None:
        js = self._editable()
        live_root = getattr(js, field)
        model_root = thaw(live_root)
        path = data.draw(st.sampled_from(_container_paths(model_root)))
        live, model = _at(live_root, path), _at(model_root, path)
        top = not path
        # What the fields hold: str keys at the top; routine states and log entries are dicts.
        value: Any = values
        if top and field in ("routine_states", "shared_log"):
            value = _entries(values)
        if isinstance(model, dict):
            key = keys if top else (keys | st.integers(0, 3))
            which, args = _dict_op(data, list(model), key, value)
            if top and which == "update_kwargs" and field == "routine_states":
                args = ({k: {"v": v} for k, v in args[0].items()},)
        else:
            which, args = _list_op(data, len(model), value)
            if which == "sort_key" or which == "remove":
                pass
        parent_live = None if top else _at(live_root, path[:-1])
        parent_model = None if top else _at(model_root, path[:-1])
        version = js.version
        got = _outcome(lambda: _apply_op(live, parent_live, path[-1] if path else None, which, args))
        want = _outcome(lambda: _apply_op(model, parent_model, path[-1] if path else None, which, args))
        if want[0] == "raised" and which == "sort":
            model_root = thaw(live_root)  # a failed list.sort may leave the list half sorted; ours is unchanged
        assert got == want, (which, args)
        if got[0] == "raised":
            assert js.version == version  # a refused edit records nothing
        now = thaw(getattr(js, field))
        if field == "shared_log" and top:  # an appended entry gets a timestamp, as append_to_shared_log gives
            model_root = [dict(m, timestamp=n["timestamp"]) if "timestamp" in n and "timestamp" not in m else m
                          for m, n in zip(model_root, now, strict=False)] + model_root[len(now):]
        assert now == model_root, (which, args)
        self._record()

    @precondition(lambda self: self.js is not None)
    @rule(data=st.data())
    def edit_history(self, data: Any) -> None:
        js = self._editable()
        model = list(js.execution_history)
        record = st.builds(ExecutionRecord, ids, st.sampled_from(["start", "done"]), flat_dicts)
        which, args = _list_op(data, len(model), record)
        if which == "sort":
            which = "sort_key"
        if which == "imul":
            return
        live = js.execution_history
        got = _outcome(lambda: _apply_op(live, None, None, which, args))
        want = _outcome(lambda: _apply_op(model, None, None, which, args))
        assert got[0] == want[0] and (got[0] == "ok" or got == want), (which, args)
        assert list(js.execution_history) == model, (which, args)
        self._record()

    @precondition(lambda self: self.js is not None)
    @rule(key=keys, replace_with=st.lists(st.integers(), max_size=2))
    def held_value_after_replacement(self, key: str, replace_with: list[int]) -> None:
        js = self._editable()
        js.update_shared_data(key, [{"held": 1}])
        held, inner = js.get_shared_data(key), js.get_shared_data(key)[0]
        js.update_shared_data(key, replace_with)
        version = js.version
        with pytest.raises(DetachedValueError, match="no longer part of job"):
            held.append(2)
        with pytest.raises(DetachedValueError):
            inner["x"] = 1
        assert held == [{"held": 1}] and js.version == version and js.get_shared_data(key) == replace_with
        self._record()

    @precondition(lambda self: self.js is not None)
    @rule(job_id=keys, flow_id=keys)
    def assign_ids(self, job_id: str, flow_id: str) -> None:
        js = self.js
        assert js is not None
        js.job_id = job_id
        js.flow_id = flow_id
        assert (js.job_id, js.flow_id) == (job_id, flow_id)
        self._record()

    @precondition(lambda self: self.js is not None and self.js.version > 1)
    @rule(pick=st.integers(0, 10_000))
    def views_stay_read_only(self, pick: int) -> None:
        js = self.js
        assert js is not None
        view = js.at(version=1 + pick % js.version)
        with pytest.raises(ReadOnlyJobStateError, match=r"from at\(\)"):
            view.shared_data["x"] = 1
        with pytest.raises(ReadOnlyJobStateError):
            view.shared_log.append({})


TestEditingJobStateMachine = EditingJobStateMachine.TestCase
