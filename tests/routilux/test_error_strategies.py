"""Entry error strategies, retry arithmetic and downstream handler errors (ROUTILUX_API.md §6)."""

from __future__ import annotations

from typing import Any

import pytest

from routilux import ErrorHandler, ErrorStrategy, Flow, JobState, Routine


class Flaky(Routine):
    """A trigger that fails its first ``fail_times`` calls with ``exc``."""

    def __init__(self, fail_times: int = 10**9, exc: type[Exception] = RuntimeError) -> None:
        super().__init__()
        self.fail_times = fail_times
        self.exc = exc
        self.calls = 0
        self.define_slot("trigger", self.go)
        self.define_event("out")

    def go(self, **kw: Any) -> None:
        self.calls += 1
        self.emit("out", call=self.calls)
        if self.calls <= self.fail_times:
            raise self.exc(f"fail {self.calls}")


class Sink(Routine):
    """Collects what it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[Any] = []
        self.define_slot("in", lambda **kw: self.got.append(kw))


def make(entry: Routine, handler: ErrorHandler | None = None, flow_level: bool = False) -> Flow:
    flow = Flow()
    flow.add_routine(entry, "entry")
    if handler is not None:
        (flow.set_error_handler if flow_level else entry.set_error_handler)(handler)
    return flow


def history(job: JobState) -> list[tuple[str, str]]:
    return [(r.routine_id, r.event_name) for r in job.get_execution_history()]


def without_emits(job: JobState) -> list[str]:
    return [r.event_name for r in job.get_execution_history() if r.event_name != "out"]


@pytest.mark.parametrize("handler", [None, ErrorHandler("stop")])
def test_no_handler_or_stop_fails_the_job(handler: ErrorHandler | None) -> None:
    """Default/STOP: job failed, state failed with error_time, history start + error."""
    job = make(Flaky(), handler).execute("entry")
    assert job.status == "failed"
    state = job.get_routine_state("entry")
    assert state is not None and state["status"] == "failed" and state["error"] == "fail 1"
    assert "error_time" in state
    assert without_emits(job) == ["start", "error"]
    err = job.get_execution_history("entry")[-1].data
    assert err["error"] == "fail 1" and err["error_type"] == "RuntimeError"
    assert any("go" in line for line in err["traceback"])


def test_flow_level_handler_applies_when_routine_has_none() -> None:
    """The flow-level handler is used when the routine has none."""
    job = make(Flaky(), ErrorHandler("continue"), flow_level=True).execute("entry")
    assert job.status == "completed"


def test_continue_completes_with_error_continued() -> None:
    """CONTINUE: job completed, state error_continued, history error_continued."""
    job = make(Flaky(), ErrorHandler(ErrorStrategy.CONTINUE)).execute("entry")
    assert job.status == "completed"
    assert dict(job.get_routine_state("entry") or {}) == {"status": "error_continued", "error": "fail 1"}
    assert without_emits(job) == ["start", "error_continued"]
    assert job.get_execution_history()[-1].data == {"error": "fail 1", "error_type": "RuntimeError"}


def test_skip_completes_with_skipped_and_no_history() -> None:
    """SKIP: job completed, state skipped, nothing added to the history."""
    job = make(Flaky(), ErrorHandler("skip")).execute("entry")
    assert job.status == "completed"
    assert dict(job.get_routine_state("entry") or {}) == {"status": "skipped", "error": "fail 1"}
    assert without_emits(job) == ["start"]


@pytest.mark.parametrize("max_retries", [0, 1, 2, 3])
def test_retry_exhausted_calls_and_count(max_retries: int) -> None:
    """RETRY always failing: 1 + max_retries calls, count max_retries, one error record."""
    entry = Flaky()
    handler = ErrorHandler("retry", max_retries=max_retries, retry_delay=0)
    flow = make(entry, handler)
    job = flow.execute("entry")
    assert entry.calls == 1 + max_retries
    assert handler.retry_count == max_retries == flow.get_routine_retry_count("entry")
    assert job.status == "failed"
    assert without_emits(job) == ["start", "error"]
    assert job.get_execution_history()[-1].data["error"] == f"fail {1 + max_retries}"


@pytest.mark.parametrize("k", [2, 3])
def test_retry_success_on_call_k(k: int) -> None:
    """RETRY succeeding on call k: count k-1, state completed with timing, history completed."""
    entry = Flaky(fail_times=k - 1)
    handler = ErrorHandler("retry", max_retries=3, retry_delay=0)
    job = make(entry, handler).execute("entry")
    assert entry.calls == k and handler.retry_count == k - 1
    assert job.status == "completed"
    state = job.get_routine_state("entry")
    assert state is not None and state["status"] == "completed" and state["retry_count"] == k - 1
    assert state["execution_time"] >= 0
    assert without_emits(job) == ["start", "completed"]
    assert job.get_execution_history()[-1].data["retried"] is True


def test_non_retryable_error_fails_after_one_call() -> None:
    """A non-retryable exception: one call, count 0, failed."""
    entry = Flaky(exc=KeyError)
    handler = ErrorHandler("retry", max_retries=3, retry_delay=0, retryable_exceptions=(ValueError,))
    job = make(entry, handler).execute("entry")
    assert (entry.calls, handler.retry_count, job.status) == (1, 0, "failed")


@pytest.mark.parametrize(("critical", "calls"), [(True, 1), (False, 3)])
def test_retry_count_persists_across_executions(critical: bool, calls: int) -> None:
    """An exhausted handler: a second run makes 1 call if critical, else 3 without sleeping."""
    entry = Flaky()
    handler = ErrorHandler("retry", max_retries=2, retry_delay=0, is_critical=critical)
    flow = make(entry, handler)
    flow.execute("entry")
    entry.calls = 0
    job = flow.execute("entry")
    assert entry.calls == calls and job.status == "failed"
    handler.reset()
    assert flow.get_routine_retry_count("entry") == 0


def test_retry_backoff_delays(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries sleep retry_delay * retry_backoff ** (n-1)."""
    slept: list[float] = []
    monkeypatch.setattr("routilux.error_handler.time.sleep", slept.append)
    make(Flaky(), ErrorHandler("retry", max_retries=3, retry_delay=0.5, retry_backoff=2.0)).execute("entry")
    assert slept == [0.5, 1.0, 2.0]


def test_missing_trigger_is_an_entry_error() -> None:
    """An entry routine without a trigger slot fails the job (CONTINUE completes it)."""
    flow = Flow()
    flow.add_routine(Routine(), "r")
    job = flow.execute("r")
    assert job.status == "failed" and "trigger" in job.get_routine_state("r")["error"]  # type: ignore[index]
    flow.set_error_handler(ErrorHandler("continue"))
    assert flow.execute("r").status == "completed"


def test_events_emitted_before_failure_still_run() -> None:
    """Emits made before the entry failed are still delivered."""
    entry, sink = Flaky(), Sink()
    flow = make(entry)
    flow.add_routine(sink, "sink")
    flow.connect("entry", "out", "sink", "in")
    job = flow.execute("entry")
    assert job.status == "failed"  # so wait_for_completion would return at once: wait for the work
    assert JobState.wait_until_condition(flow, job, lambda f, j: f._job_activity(j) == (0, 0), timeout=10)
    assert sink.got == [{"call": 1}]


class Boom(Routine):
    """A downstream routine whose handler raises."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("in", self.on)

    def on(self, **kw: Any) -> None:
        raise ZeroDivisionError("downstream broke")


def downstream_flow(boom: Boom) -> tuple[Flow, Flaky]:
    entry = Flaky(fail_times=0)
    flow = make(entry)
    flow.add_routine(boom, "boom")
    flow.connect("entry", "out", "boom", "in")
    return flow, entry


def test_downstream_error_is_recorded_with_type_message_and_traceback() -> None:
    """A downstream handler error: history error {slot, error, error_type, traceback}; job completed."""
    flow, _ = downstream_flow(Boom())
    job = flow.execute("entry")
    assert JobState.wait_for_completion(flow, job, timeout=10)
    assert job.status == "completed"
    err = [r for r in job.get_execution_history("boom") if r.event_name == "error"]
    assert len(err) == 1
    data = err[0].data
    assert (data["slot"], data["error"], data["error_type"]) == ("in", "downstream broke", "ZeroDivisionError")
    assert any(" in on" in line for line in data["traceback"])
    assert job.get_routine_state("boom") is None
    assert dict(job.open_tasks) == {}


def test_downstream_routine_level_stop_fails_the_job() -> None:
    """A routine-level STOP handler on a failing downstream routine makes the job failed."""
    boom = Boom()
    boom.set_error_handler(ErrorHandler("stop"))
    flow, _ = downstream_flow(boom)
    job = flow.execute("entry")
    assert JobState.wait_for_completion(flow, job, timeout=10)
    assert dict(job.get_routine_state("boom") or {}) == {"status": "failed", "error": "downstream broke"}
    assert job.status == "failed"


def test_downstream_flow_level_stop_does_not_fail_the_job() -> None:
    """A flow-level STOP handler does not mark downstream errors failed (observed)."""
    flow, _ = downstream_flow(Boom())
    flow.set_error_handler(ErrorHandler("stop"))
    job = flow.execute("entry")
    assert JobState.wait_for_completion(flow, job, timeout=10)
    assert job.status == "completed"


def test_error_handler_accepts_strings_and_rejects_unknown() -> None:
    """strategy accepts the enum or its value; anything else is a ValueError listing the choices."""
    assert ErrorHandler("skip").strategy is ErrorStrategy.SKIP
    with pytest.raises(ValueError, match="'retry'"):
        ErrorHandler("explode")


def test_slot_receive_with_job_records_errors_directly() -> None:
    """Slot.receive(data, job_state, flow) records the error under the flow id; STOP marks it failed."""
    boom = Boom()
    flow = Flow()
    flow.add_routine(boom, "boom")
    job = JobState(flow.flow_id)
    slot = boom.get_slot("in")
    assert slot is not None
    slot.receive({"x": 1}, job_state=job, flow=flow)
    assert [(r.routine_id, r.event_name, r.data["error_type"]) for r in job.execution_history] == [
        ("boom", "error", "ZeroDivisionError")]
    assert job.get_routine_state("boom") is None
    boom.set_error_handler(ErrorHandler("stop"))
    slot.receive({"x": 2}, job_state=job)  # flow taken from routine._current_flow: none yet
    assert len(job.execution_history) == 1
    boom._current_flow = flow
    slot.receive({"x": 3}, job_state=job)
    assert dict(job.get_routine_state("boom") or {}) == {"status": "failed", "error": "downstream broke"}
