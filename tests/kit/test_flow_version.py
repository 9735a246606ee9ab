"""Flow(version=...): recorded by execute, kept by the job, read back by the kit."""

from __future__ import annotations

from replay_tools.divergence import flow_version_of
from routilux import Flow, JobState, Routine
from routilux.flow import FLOW_VERSION


class Entry(Routine):
    """Does nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.run)

    def run(self, **_: object) -> None:
        """Nothing."""


def _run(flow: Flow) -> JobState:
    flow.add_routine(Entry(), "entry")
    job = flow.execute("entry", {"x": 1})
    assert JobState.wait_for_completion(flow, job, timeout=10)
    flow.shutdown(wait=True, timeout=5)
    return job


def test_a_declared_version_is_recorded_in_the_job() -> None:
    """One '_flow' history entry with the version, in execute's batch; the kit reads it back."""
    job = _run(Flow("v", version="2.1"))
    entries = [r for r in job.get_execution_history("_flow") if r.event_name == FLOW_VERSION]
    assert [r.data for r in entries] == [{"version": "2.1"}]
    assert flow_version_of(job.events()) == "2.1"


def test_no_version_records_nothing_new() -> None:
    """Flows that declare no version record exactly what they did before (0.10 compatible)."""
    job = _run(Flow("v"))
    assert job.get_execution_history("_flow") == []
    assert flow_version_of(job.events()) is None


def test_version_survives_flow_serialize_and_deserialize() -> None:
    """The version is part of the flow's structure; absent when not declared."""
    flow = Flow("v", version="3")
    data = flow.serialize()
    assert data["version"] == "3"
    again = Flow()
    again.deserialize(data)
    assert again.version == "3"
    assert "version" not in Flow("w").serialize()
