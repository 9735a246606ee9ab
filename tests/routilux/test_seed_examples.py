"""Every example of the seed JobState documentation (SEED_job_state_api.txt), run as written.

The examples needing a flow use the real engine (routilux.Flow) with tiny routines.
Printed output is captured and checked against what the documentation says.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from routilux import ErrorHandler, ErrorStrategy, Flow, Routine
from routilux.job_state import JobState


class Entry(Routine):
    """Entry routine: emits ``output`` with its parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.trigger = self.define_slot("trigger", handler=self.on_trigger)
        self.output = self.define_event("output", ["value"])

    def on_trigger(self, **kwargs: Any) -> None:
        self.emit("output", value=kwargs.get("value", 1))


class Processor(Routine):
    """Downstream routine recording what it received."""

    def __init__(self) -> None:
        super().__init__()
        self.input = self.define_slot("input", handler=self.on_input)
        self.seen: list[Any] = []

    def on_input(self, value: Any = None, **kwargs: Any) -> None:
        self.seen.append(value)


class Flaky(Routine):
    """Entry routine that always fails (for the retry-count example)."""

    def __init__(self) -> None:
        super().__init__()
        self.trigger = self.define_slot("trigger", handler=self.on_trigger)
        self.calls = 0

    def on_trigger(self, **kwargs: Any) -> None:
        self.calls += 1
        raise ConnectionError("service unavailable")


@pytest.fixture
def flow() -> Iterator[Flow]:
    f = Flow("seed-flow")
    f.add_routine(Entry(), "entry")
    f.add_routine(Processor(), "processor")
    f.connect("entry", "output", "processor", "input")
    yield f
    f.shutdown()


def test_class_example_basic_usage(flow: Flow, capsys: pytest.CaptureFixture[str]) -> None:
    """Basic usage: execute, print status, read a routine state."""
    entry_routine_id, routine_id = "entry", "entry"
    job_state = flow.execute(entry_routine_id)
    assert JobState.wait_for_completion(flow, job_state, timeout=30)
    print(job_state.status)  # "completed" or "failed"
    routine_state = job_state.get_routine_state(routine_id)
    print(routine_state["status"])  # "completed"
    assert capsys.readouterr().out.splitlines() == ["completed", "completed"]


def test_class_example_query_history(flow: Flow, capsys: pytest.CaptureFixture[str]) -> None:
    """Query execution history: one line per record."""
    job_state = flow.execute("entry", {"value": 3})
    assert JobState.wait_for_completion(flow, job_state, timeout=30)
    history = job_state.get_execution_history()
    for record in history:
        print(f"{record.routine_id} emitted {record.event_name}")
    assert capsys.readouterr().out.splitlines() == ["entry emitted start", "entry emitted output"]


def test_class_example_check_specific_routine(capsys: pytest.CaptureFixture[str]) -> None:
    """Check specific routine."""
    job_state = JobState()
    job_state.update_routine_state("my_routine", {"status": "completed"})
    routine_state = job_state.get_routine_state("my_routine")
    if routine_state and routine_state["status"] == "completed":
        print("Routine completed successfully")
    assert capsys.readouterr().out == "Routine completed successfully\n"


def test_update_routine_state_examples() -> None:
    """update_routine_state: completed, then failed (replacing the dict)."""
    job_state = JobState()
    job_state.update_routine_state("my_routine", {
        "status": "completed",
        "result": "success",
    })
    assert job_state.get_routine_state("my_routine") == {"status": "completed", "result": "success"}
    job_state.update_routine_state("my_routine", {
        "status": "failed",
        "error": "Connection timeout",
    })
    assert job_state.get_routine_state("my_routine") == {"status": "failed", "error": "Connection timeout"}
    assert job_state.updated_at >= job_state.created_at


def test_get_routine_state_examples(capsys: pytest.CaptureFixture[str]) -> None:
    """get_routine_state: completed check, result, errors; None when unknown."""
    job_state = JobState()
    job_state.update_routine_state("my_routine", {"status": "completed"})
    job_state.update_routine_state("processor", {"status": "completed", "result": 42})
    job_state.update_routine_state("validator", {"status": "failed", "error": "bad input"})

    state = job_state.get_routine_state("my_routine")
    if state and state.get("status") == "completed":
        print("Routine completed successfully")
    state = job_state.get_routine_state("processor")
    if state:
        result = state.get("result")
        print(f"Result: {result}")
    state = job_state.get_routine_state("validator")
    if state and "error" in state:
        print(f"Error: {state['error']}")
    assert job_state.get_routine_state("never_ran") is None
    assert capsys.readouterr().out.splitlines() == [
        "Routine completed successfully", "Result: 42", "Error: bad input"]


def test_record_execution_examples() -> None:
    """record_execution: an event emission and an error continuation."""
    job_state = JobState()
    job_state.record_execution(
        "processor",
        "output",
        {"result": "processed", "count": 10}
    )
    job_state.record_execution(
        "optional_routine",
        "error_continued",
        {"error": "Service unavailable", "error_type": "ConnectionError"}
    )
    first, second = job_state.execution_history
    assert (first.routine_id, first.event_name, first.data) == (
        "processor", "output", {"result": "processed", "count": 10})
    assert second.data["error_type"] == "ConnectionError"
    assert first.timestamp <= second.timestamp
    assert job_state.updated_at == second.timestamp


def test_get_execution_history_examples(capsys: pytest.CaptureFixture[str]) -> None:
    """get_execution_history: all, per routine, and finding error records."""
    job_state = JobState()
    job_state.record_execution("processor", "output", {"n": 1})
    job_state.record_execution("validator", "error", {"error": "x"})
    job_state.record_execution("processor", "error_continued", {"error": "y"})

    history = job_state.get_execution_history()
    for record in history:
        print(f"{record.timestamp}: {record.routine_id} -> {record.event_name}")
    processor_history = job_state.get_execution_history("processor")
    for record in processor_history:
        print(f"Event: {record.event_name}, Data: {record.data}")
    history = job_state.get_execution_history()
    errors = [r for r in history if "error" in r.event_name]
    print(f"Found {len(errors)} error records")

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{history[0].timestamp}: processor -> output"
    assert lines[3:] == ["Event: output, Data: {'n': 1}", "Event: error_continued, Data: {'error': 'y'}",
                         "Found 2 error records"]


def test_wait_for_completion_example(flow: Flow, capsys: pytest.CaptureFixture[str]) -> None:
    """wait_for_completion: execute with params, wait, report."""
    entry_routine_id, entry_params = "entry", {"value": 7}
    job_state = flow.execute(entry_routine_id, entry_params)
    completed = JobState.wait_for_completion(flow, job_state, timeout=300.0)
    if completed:
        print("Execution completed successfully")
    assert capsys.readouterr().out == "Execution completed successfully\n"
    assert job_state.status == "completed"
    assert flow.routines["processor"].seen == [7]  # type: ignore[attr-defined]


def test_wait_until_condition_retry_count_example() -> None:
    """wait_until_condition: until the retry count of a routine reaches 2."""
    flow = Flow("retry-flow")
    flaky = Flaky()
    flaky.set_error_handler(ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=3, retry_delay=0.001,
                                         retry_backoff=1.0))
    flow.add_routine(flaky, "processor")
    try:
        job_state = flow.execute("processor")

        def condition(flow: Flow, job_state: JobState) -> bool:
            retry_count = flow.get_routine_retry_count("processor")
            return retry_count is not None and retry_count >= 2

        assert JobState.wait_until_condition(flow, job_state, condition, timeout=30.0)
        assert flaky.calls >= 3
    finally:
        flow.shutdown()


def test_wait_until_condition_routine_completes_example(flow: Flow) -> None:
    """wait_until_condition: until a specific routine completes."""
    flow.add_routine(Entry(), "validator")
    job_state = flow.execute("validator")

    def condition(flow: Flow, job_state: JobState) -> bool:
        state = job_state.get_routine_state("validator")
        return state is not None and state.get("status") == "completed"

    assert JobState.wait_until_condition(flow, job_state, condition)
    assert job_state.get_routine_state("validator") == {"status": "completed"}
