"""Every standard type survives every path a value takes through a job, exactly.

record_execution, update_shared_data and update_routine_state on a live job; a replay
(``from_events``); ``save``/``load``; a durable job reopened; a JSON Lines export
imported back; and a flow's emit -> slot. Values come back equal with the same types
(containers as their read-only views), NaN included.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import tempfile
from typing import Any

from hypothesis import given
from value_types import typed, values

import eventlog
from eventlog.encoding import StoredObject, encode
from replay_tools.exporting import export_log, import_to_memory
from routilux import Flow, JobState, Routine


def _read_back(js: JobState) -> list[Any]:
    """The three values as the job hands them out."""
    return [js.execution_history[-1].data["v"], js.get_shared_data("v"), js.get_routine_state("r")["v"]]


def _store(js: JobState, value: Any) -> None:
    js.record_execution("r", "e", {"v": value})
    js.update_shared_data("v", value)
    js.update_routine_state("r", {"v": value})


@given(value=values)
def test_values_keep_their_types_through_every_path(value: Any) -> None:
    want = [typed(value)] * 3
    tmp = tempfile.mkdtemp(prefix="value-paths-")
    try:
        live = JobState("f")
        _store(live, value)
        assert [typed(v) for v in _read_back(live)] == want, "live state"
        assert [typed(v) for v in _read_back(JobState.from_events(live.events()))] == want, "replay"
        path = os.path.join(tmp, "job.rjob")
        live.save(path)
        loaded = JobState.load(path)
        assert [typed(v) for v in _read_back(loaded)] == want, "save/load"
        assert loaded.head_hash == live.head_hash

        with JobState.open(os.path.join(tmp, "durable"), flow_id="f") as durable:
            _store(durable, value)
        with JobState.open(os.path.join(tmp, "durable")) as again:
            assert [typed(v) for v in _read_back(again)] == want, "durable reopen"

        export = os.path.join(tmp, "trail.jsonl")
        with open(export, "w", encoding="utf-8") as out:
            export_log(live.log, out)
        imported, result = import_to_memory(export)
        assert result.head_hash == live.head_hash, "JSON Lines export/import"
        assert [typed(v) for v in _read_back(JobState.from_events(imported))] == want
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _Emitter(Routine):
    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value
        self.define_slot("trigger", self.go)
        self.define_event("out")

    def go(self, **_: Any) -> None:
        self.emit("out", v=self.value)


class _Sink(Routine):
    def __init__(self, got: list[Any]) -> None:
        super().__init__()
        self.got = got
        self.define_slot("in", self.take)

    def take(self, **kwargs: Any) -> None:
        self.got.append(kwargs.get("v"))


@given(value=values)
def test_emit_to_slot_delivers_and_records_the_value(value: Any) -> None:
    """The slot receives the value and the job records it exactly (in memory and durably)."""
    tmp = tempfile.mkdtemp(prefix="value-flow-")
    try:
        for durable in (False, True):
            got: list[Any] = []
            flow = Flow("vf")
            flow.add_routine(_Emitter(value), "src")
            flow.add_routine(_Sink(got), "sink")
            flow.connect("src", "out", "sink", "in")
            job = JobState.open(os.path.join(tmp, "job"), flow_id="vf") if durable else JobState("vf")
            try:
                flow.execute("src", job_state=job)
                assert JobState.wait_for_completion(flow, job, timeout=20)
                assert [typed(v) for v in got] == [typed(value)]
                (record,) = [r for r in job.execution_history if (r.routine_id, r.event_name) == ("src", "out")]
                assert typed(record.data["v"]) == typed(value)
            finally:
                job.close()
            shutil.rmtree(os.path.join(tmp, "job"), ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- classes that are not registered ---------------------------------------------------
@dataclasses.dataclass
class Reading:
    """Not registered: stored by class path and fields, never rebuilt from a log."""

    sensor: str
    values: list[float]

    def __post_init__(self) -> None:
        Reading.built += 1  # type: ignore[attr-defined]


Reading.built = 0  # type: ignore[attr-defined]


def test_unregistered_class_is_never_instantiated_on_replay(tmp_path: Any) -> None:
    """Live, replayed, reopened and loaded jobs all read the same read-only record; no instance is built."""
    with JobState.open(tmp_path / "job", flow_id="f") as js:
        js.update_shared_data("reading", Reading("s1", [1.5, 2.0]))
        built = Reading.built  # type: ignore[attr-defined]
        live = js.get_shared_data("reading")
        js.save(tmp_path / "job.rjob")
    with JobState.open(tmp_path / "job") as again:
        reopened = again.get_shared_data("reading")
        replayed = JobState.from_events(again.events()).get_shared_data("reading")
    loaded = JobState.load(tmp_path / "job.rjob").get_shared_data("reading")
    assert Reading.built == built  # type: ignore[attr-defined]
    for got in (live, reopened, replayed, loaded):
        assert isinstance(got, StoredObject) and not isinstance(got, Reading)
        assert got == Reading("s1", [1.5, 2.0]) and got.sensor == "s1"
    assert encode(live) == encode(reopened) == encode(loaded)


# -- an upcaster, in events and in snapshots -----------------------------------------
def test_upcaster_reads_old_versions_from_events_and_snapshots_and_verify_passes(tmp_path: Any) -> None:
    """A log written with version 1 of a registered type reads as version 2 everywhere; the bytes never change."""
    from replay_tools.source import open_job
    from replay_tools.verify import verify_job

    @dataclasses.dataclass(frozen=True)
    class Limits:
        low: float
        high: float

    @dataclasses.dataclass(frozen=True)
    class LimitsV2:
        low: float
        high: float
        unit: str

    def upcast(fields: dict[str, Any], version: int) -> dict[str, Any]:
        assert version == 1
        return {**fields, "unit": "C"}

    name = "tests:Limits"
    eventlog.register_type(Limits, version=1, name=name)
    try:
        with JobState.open(tmp_path / "job", flow_id="f") as js:
            js.snapshot_every = 5  # snapshots hold the version-1 bytes too
            for i in range(12):
                js.update_shared_data("limits", Limits(i, i + 10))
                js.record_execution("r", "e", {"limits": Limits(i, i + 10)})
            head = js.head_hash
            js.sync()  # the snapshots are written in the background
            snapshot_seqs = js.log.snapshot_seqs()
        assert snapshot_seqs, "the policy stored snapshots"
    finally:
        eventlog.unregister_type(Limits)
    eventlog.register_type(LimitsV2, version=2, upcast=upcast, name=name)
    try:
        with JobState.open(tmp_path / "job", readonly=True) as again:
            assert again.head_hash == head  # stored bytes unchanged
            assert again.get_shared_data("limits") == LimitsV2(11, 21, "C")  # from the newest snapshot + tail
            assert again.log.latest_snapshot() is not None
            mid = again.at(version=snapshot_seqs[0])  # a snapshot's state, read through the upcaster
            assert type(mid.get_shared_data("limits")) is LimitsV2
            assert [r.data["limits"] for r in again.execution_history] == [LimitsV2(i, i + 10, "C")
                                                                           for i in range(12)]
        assert eventlog.verify(tmp_path / "job").ok
        with open_job(str(tmp_path / "job")) as job:
            report = verify_job(job)
        assert report.ok, str(report)
    finally:
        eventlog.unregister_type(LimitsV2)


def test_json_export_of_every_type_is_exact() -> None:
    """The JSON Lines export tags what JSON cannot hold, so an import gives the same bytes."""
    js = JobState("f")
    js.record_execution("r", "e", {"t": (1, 2), "s": {3}, 4: "int key", "nan": float("nan")})
    out = io.StringIO()
    export_log(js.log, out)
    assert '"$msgpack"' in out.getvalue()

