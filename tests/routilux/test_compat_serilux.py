"""serilux works with our classes as with routilux 0.10 (issue 12, "serilux compatibility")."""

from __future__ import annotations

import json
from typing import Any

import pytest
import serilux
from compat_support import assert_replays
from fixture_routines import Collector, Doubler, NumberSource
from serilux import ObjectRegistry, SerializableRegistry, register_serializable

from routilux import (
    Connection,
    ErrorHandler,
    Event,
    ExecutionRecord,
    ExecutionTracker,
    Flow,
    JobState,
    Routine,
    Slot,
)
from routilux.serializable import Serializable

FRAMEWORK = [Routine, Slot, Event, Connection, Flow, JobState, ExecutionRecord, ExecutionTracker, ErrorHandler]


@register_serializable
class Settings(serilux.Serializable):
    """User data written for 0.10: a plain serilux class."""

    def __init__(self) -> None:
        super().__init__()
        self.threshold = 0
        self.tags: list[str] = []
        self.add_serializable_fields(["threshold", "tags"])


@register_serializable
class Tuned(Routine):
    """A routine holding a serilux object in a field of its own, as 0.10 users write them."""

    def __init__(self) -> None:
        super().__init__()
        self.settings = Settings()
        self.add_serializable_fields(["settings"])
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", ["value"])

    def go(self, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.update_shared_data("threshold", self.settings.threshold)
        self.emit("out", value=self.settings.threshold, settings=self.settings)


@pytest.mark.parametrize("cls", FRAMEWORK)
def test_framework_classes_are_serilux_serializables(cls: type) -> None:
    """isinstance and serilux's registry see our classes, as they saw 0.10's."""
    assert issubclass(cls, serilux.Serializable)
    assert SerializableRegistry.get_class(cls.__name__) is cls


def test_user_serilux_object_in_a_routine_survives_json_and_runs() -> None:
    """A serilux object held by a routine field round-trips through the flow dict; the job replays."""
    flow = Flow(flow_id="serilux")
    tuned = Tuned()
    tuned.settings.threshold = 7
    tuned.settings.tags = ["a", "b"]
    flow.add_routine(tuned, "tuned")
    flow.add_routine(Collector(), "sink")
    flow.connect("tuned", "out", "sink", "items", {"value": "values"})
    data = json.loads(json.dumps(flow.serialize()))
    assert data["routines"]["tuned"]["settings"] == {"_type": "Settings", "threshold": 7, "tags": ["a", "b"]}
    again = Flow()
    again.deserialize(data)
    settings = again.routines["tuned"].settings
    assert isinstance(settings, Settings) and (settings.threshold, settings.tags) == (7, ["a", "b"])
    job = again.execute("tuned")
    assert JobState.wait_for_completion(again, job, timeout=10)
    assert job.status == "completed" and job.shared_data == {"threshold": 7, "collected": [7]}
    emitted = [r for r in job.execution_history if r.event_name == "out"][0]
    assert emitted.data["settings"].startswith("<")  # serilux objects are recorded by str(), as in 0.10
    assert_replays(job)
    again.shutdown()


def test_deserialize_takes_strict_and_registry() -> None:
    """Every class takes deserialize(data, strict=..., registry=...); strict names the unknown field."""
    samples: list[tuple[Any, dict[str, Any]]] = [
        (Routine(), Doubler().serialize()),
        (Slot(), Doubler().get_slot("values").serialize()),
        (Event(), Doubler().get_event("doubled").serialize()),
        (Connection(), Connection().serialize()),
        (ErrorHandler(), ErrorHandler().serialize()),
        (ExecutionTracker(), ExecutionTracker("f").serialize()),
        (Flow(), Flow().serialize()),
    ]
    for obj, data in samples:
        obj.deserialize(dict(data), strict=True, registry=ObjectRegistry())
        obj.deserialize({**data, "bogus": 1}, strict=False)
        with pytest.raises(Exception, match="bogus"):  # ValueError (serilux 0.5: UnknownFieldError)
            obj.deserialize({**data, "bogus": 1}, strict=True)


def test_tracker_round_trips_with_serilux_rules() -> None:
    """ExecutionTracker uses serilux's generic deserialize (0.10 did), strict included."""
    tracker = ExecutionTracker("f")
    tracker.record_routine_start("r", {"x": 1})
    tracker.record_routine_end("r")
    tracker.record_event("r", "e", "t", {"y": 2})
    again = ExecutionTracker()
    again.deserialize(json.loads(json.dumps(tracker.serialize())), strict=True)
    assert again.get_routine_performance("r") == tracker.get_routine_performance("r")
    assert again.event_flow == tracker.event_flow


def test_registry_passed_in_receives_the_routines() -> None:
    """A caller's ObjectRegistry finds every rebuilt routine by its _id (serilux's contract)."""
    flow = Flow()
    source = NumberSource()
    flow.add_routine(source, "source")
    registry = ObjectRegistry()
    again = Flow()
    again.deserialize(flow.serialize(), registry=registry)
    assert registry.find_by_id(source._id) is again.routines["source"]


def test_deserialize_item_builds_registered_classes() -> None:
    """Serializable.deserialize_item (serilux's) rebuilds our classes and user ones from their dicts."""
    doubler = Doubler()
    doubler.set_config(factor=5)
    rebuilt = Serializable.deserialize_item(json.loads(json.dumps({"d": [doubler.serialize()]})))
    (again,) = rebuilt["d"]
    assert isinstance(again, Doubler) and again.get_config("factor") == 5
    assert again.get_slot("values").handler.__self__ is again
    handler = Routine.deserialize_item(ErrorHandler("skip").serialize())
    assert isinstance(handler, ErrorHandler) and handler.strategy.value == "skip"


def test_add_and_remove_serializable_fields() -> None:
    """Fields added per instance are written in order without duplicates; removed ones are not."""
    collector = Collector()
    collector.add_serializable_fields(["received", "extra"])
    collector.extra = {"k": [1]}
    fields = collector.fields_to_serialize
    assert fields == ["_id", "_config", "_error_handler", "_slots", "_events", "received", "extra"]
    collector.remove_serializable_fields(["_config", "extra"])
    data = collector.serialize()
    assert "_config" not in data and "extra" not in data and data["received"] == 0
    assert Collector().fields_to_serialize[-1] == "received"  # per instance, not per class
    with pytest.raises(ValueError, match="must be str"):
        collector.add_serializable_fields([1])  # type: ignore[list-item]


def test_serialize_accepts_serilux_options() -> None:
    """serilux 0.5 passes max_depth to nested objects' serialize(): every class accepts it."""
    job = JobState("f")
    job.record_execution("r", "e", {"k": 1})
    holder = Settings()
    holder.tags = [job, job.execution_history[0]]  # type: ignore[list-item]
    data = holder.serialize()
    assert data["tags"][0]["_type"] == "JobState" and data["tags"][1]["_type"] == "ExecutionRecord"
    assert Flow().serialize(max_depth=10)["_type"] == "Flow"


def test_slot_handlers_are_serilux_callables() -> None:
    """A slot dict holds serilux's callable form, which serilux itself resolves."""
    doubler = Doubler()
    data = doubler.get_slot("values").serialize()
    assert data["handler"] == {"_type": "callable", "callable_type": "method", "class_name": "Doubler",
                               "method_name": "double", "object_id": doubler._id}
    registry = ObjectRegistry()
    registry.register(doubler)
    assert serilux.deserialize_callable(data["handler"], registry=registry) == doubler.double
