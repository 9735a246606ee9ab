"""Output handlers and send_output from a handler (ROUTILUX_API.md §9)."""

from __future__ import annotations

import queue
import threading
from datetime import datetime
from typing import Any

import pytest

from routilux import (
    CallbackOutputHandler,
    Flow,
    JobState,
    NullOutputHandler,
    OutputHandler,
    QueueOutputHandler,
    Routine,
)


class Reporter(Routine):
    """Attaches a handler to its job and sends outputs."""

    def __init__(self, handler: OutputHandler | None) -> None:
        super().__init__()
        self.handler = handler
        self.define_slot("trigger", self.go)

    def go(self, n: int = 2) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        if self.handler is not None:
            ctx.job_state.set_output_handler(self.handler)
        for i in range(n):
            self.send_output("progress", step=i)


def test_queue_handler_receives_outputs_and_log_records_them() -> None:
    """QueueOutputHandler gets dicts with iso timestamps; output_log has every output."""
    q: queue.Queue[dict[str, Any]] = queue.Queue()
    flow = Flow()
    flow.add_routine(Reporter(QueueOutputHandler(q)), "rep")
    job = flow.execute("rep", {"n": 3})
    items = [q.get_nowait() for _ in range(3)]
    assert [i["data"] for i in items] == [{"step": 0}, {"step": 1}, {"step": 2}]
    assert all(i["job_id"] == job.job_id and i["routine_id"] == "rep" and i["output_type"] == "progress"
               for i in items)
    datetime.fromisoformat(items[0]["timestamp"])
    assert [o["data"] for o in job.output_log] == [{"step": 0}, {"step": 1}, {"step": 2}]


def test_callback_handler_gets_positional_arguments() -> None:
    """CallbackOutputHandler calls callback(job_id, routine_id, output_type, data, timestamp)."""
    calls: list[tuple[Any, ...]] = []
    flow = Flow()
    flow.add_routine(Reporter(CallbackOutputHandler(lambda *a: calls.append(a))), "rep")
    job = flow.execute("rep", {"n": 1})
    assert len(calls) == 1
    job_id, rid, otype, data, ts = calls[0]
    assert (job_id, rid, otype, data) == (job.job_id, "rep", "progress", {"step": 0})
    assert isinstance(ts, datetime)


def test_null_handler_and_no_handler_still_log() -> None:
    """With NullOutputHandler or none at all, outputs still reach output_log."""
    for handler in (NullOutputHandler(), None):
        flow = Flow()
        flow.add_routine(Reporter(handler), "rep")
        job = flow.execute("rep", {"n": 2})
        assert len(job.output_log) == 2


def test_output_handler_is_abstract() -> None:
    """OutputHandler cannot be instantiated."""
    with pytest.raises(TypeError):
        OutputHandler()  # type: ignore[abstract]


def test_unencodable_output_raises_at_send_output_and_records_nothing(tmp_path: Any) -> None:
    """On a durable job, send_output of data that cannot be recorded raises TypeError naming the path."""
    errors: list[BaseException] = []

    class Bad(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", self.go)

        def go(self) -> None:
            try:
                self.send_output("x", items={1, 2, threading.Lock()})
            except TypeError as exc:
                errors.append(exc)

    flow = Flow()
    flow.add_routine(Bad(), "bad")
    with JobState.open(tmp_path / "job", flow_id=flow.flow_id) as job:
        flow.execute("bad", job_state=job)
        assert JobState.wait_for_completion(flow, job, timeout=10)
        assert len(errors) == 1 and "items" in str(errors[0])
        assert list(job.output_log) == []
