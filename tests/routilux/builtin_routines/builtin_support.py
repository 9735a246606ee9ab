"""Helpers for the builtin routine tests: call a routine directly, or run it in a real flow.

* ``send(routine, payload)`` calls the routine's input slot handler with ``payload``, letting
  exceptions through (a flow would swallow and record them);
* ``run_flow(routine, payloads)`` runs ``source -> routine -> sinks`` in a Flow: the source's
  trigger emits each payload, the routine's events go to one sink each; it returns the flow,
  the finished job and what each sink received;
* ``history(job)`` is the routine's history as plain ``(event_name, data)`` pairs;
* ``assert_replays(job)`` checks that the job's events fold back into the same state.

The ``emits`` fixture (``conftest.py``) records a routine's emits when it is called directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from routilux import Flow, JobState, Routine


def send(routine: Routine, payload: dict[str, Any], slot: str | None = None) -> None:
    """Deliver ``payload`` to the routine's input slot (``input``, or ``request``) as a flow would."""
    target = routine.get_slot(slot) if slot else routine.get_slot("input") or routine.get_slot("request")
    assert target is not None
    target.call_handler(dict(payload), propagate_exceptions=True)


class Source(Routine):
    """Entry routine: its trigger emits each item of ``items`` on ``out``."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("out")

    def go(self, items: Iterable[dict[str, Any]] = (), **_: Any) -> None:
        for item in items:
            self.emit("out", **item)


class Sink(Routine):
    """Records every delivery it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict[str, Any]] = []
        self.define_slot("in", handler=self.take)

    def take(self, **data: Any) -> None:
        self.received.append(data)


def run_flow(routine: Routine, payloads: list[dict[str, Any]], events: Iterable[str] | None = None,
             slot: str | None = None) -> tuple[Flow, JobState, dict[str, list[dict[str, Any]]]]:
    """Run ``source -> routine -> one sink per event`` and wait for the job to finish.

    ``events`` lists the routine's events to connect (default: those defined now); an event
    named here that is not defined yet is defined first (ConditionalRouter routes).
    """
    flow = Flow(flow_id="builtin-test")
    flow.add_routine(Source(), "source")
    flow.add_routine(routine, "builtin")
    slot_name = slot or ("input" if routine.get_slot("input") else "request")
    flow.connect("source", "out", "builtin", slot_name)
    sinks: dict[str, Sink] = {}
    for name in list(events if events is not None else routine._events):
        if routine.get_event(name) is None:
            routine.define_event(name, ["data", "route"])
        sinks[name] = Sink()
        flow.add_routine(sinks[name], f"sink_{name}")
        flow.connect("builtin", name, f"sink_{name}", "in")
    job = flow.execute("source", entry_params={"items": payloads})
    assert JobState.wait_for_completion(flow, job, timeout=30)
    flow.shutdown(wait=True)
    return flow, job, {name: sink.received for name, sink in sinks.items()}


def history(job: JobState, routine_id: str = "builtin") -> list[tuple[str, dict[str, Any]]]:
    """The routine's history records as ``(event_name, plain data)``."""
    return [(r.event_name, _plain(r.data)) for r in job.get_execution_history(routine_id)]


def assert_replays(job: JobState) -> None:
    """The state rebuilt from the job's events equals the live state (history and all)."""
    rebuilt = JobState.from_events(job.events())
    assert rebuilt.serialize() == job.serialize()
    assert rebuilt.version == job.version


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
