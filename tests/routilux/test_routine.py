"""Routine: definitions, configuration, emit resolution and the execution context (§1)."""

from __future__ import annotations

from typing import Any

import pytest

import routilux
from routilux import ErrorHandler, ErrorStrategy, Flow, JobState, Routine
from routilux.routine import ExecutionContext, _current_job_state


class Echo(Routine):
    """Records what its slot receives and re-emits it."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[Any] = []
        self.contexts: list[Any] = []
        self.define_slot("trigger", self.on)
        self.define_slot("in", self.on)
        self.define_event("out", ["value"])

    def on(self, **kw: Any) -> None:
        self.got.append(kw)
        self.contexts.append(self.get_execution_context())
        if "value" in kw:
            self.emit("out", value=kw["value"])


def test_package_surface() -> None:
    """routilux exports the original names and version."""
    for name in ["Routine", "ExecutionContext", "Slot", "Event", "Connection", "Flow", "JobState",
                 "ExecutionRecord", "ExecutionTracker", "ErrorHandler", "ErrorStrategy", "OutputHandler",
                 "QueueOutputHandler", "CallbackOutputHandler", "NullOutputHandler"]:
        assert hasattr(routilux, name), name
    assert routilux.__version__ == "0.10.0"
    from routilux.flow import SlotActivationTask, TaskPriority  # noqa: F401


def test_initial_attributes_and_repr() -> None:
    """A new routine has empty slots/events/config, no handler, and repr Class[_id]."""
    r = Routine()
    assert r._id == hex(id(r))
    assert (r._slots, r._events, r._config, r._error_handler) == ({}, {}, {}, None)
    assert repr(r) == f"Routine[{r._id}]"


def test_duplicate_slot_or_event_names_are_rejected() -> None:
    """define_slot/define_event raise ValueError on a duplicate name."""
    r = Routine()
    r.define_slot("s")
    r.define_event("e")
    with pytest.raises(ValueError, match="'s'"):
        r.define_slot("s")
    with pytest.raises(ValueError, match="'e'"):
        r.define_event("e")
    assert r.get_slot("nope") is None and r.get_event("nope") is None


def test_config_is_a_dict_update_and_copy() -> None:
    """set_config updates; config() is a copy."""
    r = Routine()
    r.set_config(a=1, b=2)
    r.set_config(b=3)
    cfg = r.config()
    cfg["a"] = 99
    assert r.get_config("a") == 1 and r.get_config("b") == 3 and r.get_config("zz", "d") == "d"


def test_optional_and_critical_install_handlers() -> None:
    """set_as_optional/set_as_critical install the documented handlers."""
    r = Routine()
    r.set_as_optional()
    h = r.get_error_handler()
    assert h is not None and h.strategy is ErrorStrategy.CONTINUE and not h.is_critical
    r.set_as_optional(ErrorStrategy.SKIP)
    assert r.get_error_handler().strategy is ErrorStrategy.SKIP  # type: ignore[union-attr]
    r.set_as_critical(max_retries=4, retry_delay=0.5, retry_backoff=3.0)
    h = r.get_error_handler()
    assert h is not None and h.strategy is ErrorStrategy.RETRY and h.is_critical
    assert (h.max_retries, h.retry_delay, h.retry_backoff) == (4, 0.5, 3.0)
    r.set_error_handler(ErrorHandler("stop"))
    assert r.get_error_handler().strategy is ErrorStrategy.STOP  # type: ignore[union-attr]


def test_emit_unknown_event_names_defined_events() -> None:
    """emit of an undefined event raises ValueError listing the defined ones."""
    r = Echo()
    with pytest.raises(ValueError, match=r"'nope'.*\['out'\]"):
        r.emit("nope")


def test_legacy_emit_without_flow_is_synchronous() -> None:
    """Without a flow, emit delivers at once and records nothing."""
    a, b = Echo(), Echo()
    a.get_event("out").connect(b.get_slot("in"))  # type: ignore[union-attr,arg-type]
    a.emit("out", value=7)
    assert b.got == [{"value": 7}]
    assert b.contexts == [None]


def test_context_outside_execution_is_none_and_apis_raise() -> None:
    """Outside a handler there is no context; send_output/emit_deferred_event raise RuntimeError."""
    r = Echo()
    assert r.get_execution_context() is None
    with pytest.raises(RuntimeError, match="execution context"):
        r.send_output("x", a=1)
    with pytest.raises(RuntimeError, match="execution context"):
        r.emit_deferred_event("out", a=1)
    assert _current_job_state.get(None) is None


def test_context_inside_a_flow_handler() -> None:
    """Inside a handler the context is (flow, job, flow routine id) and the ContextVar holds the job."""
    seen: list[Any] = []

    class Probe(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", self.go)

        def go(self) -> None:
            seen.append((self.get_execution_context(), _current_job_state.get(None)))

    flow = Flow()
    flow.add_routine(Probe(), "probe")
    job = flow.execute("probe")
    ctx, var = seen[0]
    assert isinstance(ctx, ExecutionContext)
    assert ctx == (flow, job, "probe") and var is job
    assert _current_job_state.get(None) is None  # restored after the handler


def test_context_needs_routine_registered_in_the_flow() -> None:
    """A routine not in its current flow has no context even with a job set."""
    r = Echo()
    r._current_flow = Flow()
    token = _current_job_state.set(JobState("x"))
    try:
        assert r.get_execution_context() is None
    finally:
        _current_job_state.reset(token)


def test_extract_input_data() -> None:
    """_extract_input_data: data, else kw['data'], else the single value, else the dict, else {}."""
    r = Routine()
    assert r._extract_input_data(5) == 5
    assert r._extract_input_data(data=None, data2=1) == 1
    assert r._extract_input_data(a=1, b=2) == {"a": 1, "b": 2}
    assert r._extract_input_data() == {}


def test_call_is_a_no_op() -> None:
    """Routine.__call__ is a deprecated no-op."""
    assert Routine()(x=1) is None
