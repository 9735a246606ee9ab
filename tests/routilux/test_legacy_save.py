"""routilux 0.10 JSON saves load (issue 12): a new log that says where it came from, the same job.

The fixtures were written by the real routilux 0.10.0 (``tests/fixtures/routilux010``,
with the script that made them). ``JobState.load`` imports each one: the first event
names the file and the SHA-256 of its bytes, the state follows as events, ``verify``
passes, and ``serialize()`` gives back exactly the dict 0.10 saved (history with the
original timestamps, shared data, shared log, routine states, pending tasks, deferred
events, outputs, pause points, created/updated times).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from compat_support import FIXTURES, fixture, manifest
from fixture_routines import SlowWorker  # noqa: F401 - the 0.10 fixtures' routines, for Flow.deserialize

import eventlog
from replay_tools.source import open_job
from replay_tools.verify import verify_job
from routilux import Flow, JobState
from routilux import job_events as ev

SAVES = sorted(manifest()["saves"])


@pytest.mark.parametrize("name", SAVES)
def test_a_0_10_save_loads_as_the_same_job(name: str) -> None:
    """serialize() of the imported job is the 0.10 save's dict, field for field."""
    path = FIXTURES / "saves" / f"{name}.json"
    saved = json.loads(path.read_text(encoding="utf-8"))
    job = JobState.load(path)
    got = job.serialize()
    assert got == saved
    meta = manifest()["saves"][name]
    assert (job.status, len(job.execution_history), len(job.pending_tasks), len(job.deferred_events)) == (
        meta["status"], meta["history"], meta["pending_tasks"], meta["deferred_events"])
    assert [r.timestamp.isoformat() for r in job.execution_history] == [r["timestamp"] for r in saved["execution_history"]]


@pytest.mark.parametrize("name", SAVES)
def test_the_import_is_a_log_that_names_its_file_and_verifies(name: str, tmp_path: Path) -> None:
    """The first event says it was imported, from which file (name + SHA-256); the rest replays; verify passes."""
    path = FIXTURES / "saves" / f"{name}.json"
    job = JobState.load(path)
    first = job.events()[0]
    assert first.kind == ev.JOB_CREATED
    assert first.data["imported_from"] == {"file": f"{name}.json", "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                           "format": "routilux-0.10-json"}
    assert first.data["job_id"] == fixture(f"saves/{name}.json")["job_id"]
    assert JobState.from_events(job.events()).serialize() == job.serialize()
    records = [e for e in job.events() if e.kind == ev.EXECUTION_RECORDED]
    assert len(records) == len(job.execution_history)  # one event per record, each with its own time
    saved = tmp_path / "imported.rjob"
    job.save(saved)
    assert JobState.load(saved).serialize() == job.serialize()
    with open_job(str(saved)) as opened:
        report = verify_job(opened)
    assert report.ok, report


def test_an_imported_job_keeps_going_and_a_paused_one_resumes() -> None:
    """The imported job is an ordinary in-memory job: it takes new events, and 0.10's paused run resumes."""
    job = JobState.load(FIXTURES / "saves" / "paused.json")
    assert not job.readonly and job.status == "paused"
    flow = Flow()
    flow.deserialize(fixture("flows/paused.json"))
    flow.routines["slow"].set_config(delay=0.0)
    try:
        flow.resume(job)
        assert JobState.wait_for_completion(flow, job, timeout=10)
    finally:
        flow.shutdown()
    assert job.status == "completed" and job.shared_data["collected"] == [["deferred"], [1, 2]]
    assert JobState.from_events(job.events()).serialize() == job.serialize()


def test_load_of_an_import_at_an_earlier_version_is_read_only() -> None:
    """version= and timestamp= work on an import like on any saved job."""
    job = JobState.load(FIXTURES / "saves" / "completed.json", version=1)
    assert job.readonly and job.version == 1 and job.shared_data == {}


@pytest.mark.parametrize(("content", "reason"), [
    (b'{"_type": "JobState", "status": "completed", "job_id": "j"', "is not JSON"),
    (b'{"_type": "Flow", "flow_id": "x"}', 'no "_type": "JobState"'),
    (b'{"_type": "JobState", "job_id": "j", "routine_states": {"r": 3}}', "routine_states['r'] must be a dict"),
    (b'{"_type": "JobState", "job_id": "j", "execution_history": [{"routine_id": 1}]}',
     "routine_id and event_name must be str"),
    (b'{"_type": "JobState", "job_id": "j", "status": ""}', "invalid job status"),
    (b'{"_type": "JobState", "status": "completed"}', "no job_id"),
    (b'{"_type": "JobState", "job_id": "j", "created_at": "yesterday"}', "not an ISO datetime"),
    (b'{"_type": "JobState", "job_id": "j", "nonsense": 1}', "unknown JobState field"),
    (b'{' + b'[' * 100_000 + b']' * 100_000 + b'}', "is not JSON"),
    (b'{"\xff": 1}', "not UTF-8"),
])
def test_a_bad_save_is_one_line_naming_the_file(tmp_path: Path, content: bytes, reason: str) -> None:
    """Not JSON, not a save, a wrong type, hostile nesting: a one-line ValueError naming the file."""
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="bad.json") as err:
        JobState.load(path)
    assert reason in str(err.value) and "\n" not in str(err.value)
    assert os.listdir(tmp_path) == ["bad.json"]  # nothing created beside it


def test_a_tampered_save_is_a_different_import(tmp_path: Path) -> None:
    """The SHA-256 in the first event is of the bytes read: an altered save shows it."""
    original = FIXTURES / "saves" / "completed.json"
    data = json.loads(original.read_text(encoding="utf-8"))
    data["shared_data"]["tampered"] = True
    altered = tmp_path / "completed.json"
    altered.write_text(json.dumps(data), encoding="utf-8")
    a, b = JobState.load(original), JobState.load(altered)
    assert a.events()[0].data["imported_from"]["sha256"] != b.events()[0].data["imported_from"]["sha256"]
    assert b.shared_data["tampered"] is True


def test_eventlog_verify_passes_on_an_imported_durable_copy(tmp_path: Path, run_import: Any) -> None:
    """`routilux-replay import` of a 0.10 save writes a durable job that eventlog.verify passes."""
    dest = tmp_path / "job"
    result = run_import(str(FIXTURES / "saves" / "fan_out.json"), str(dest))
    assert result.exit_code == 0, result.output
    assert eventlog.verify(dest).ok
    with JobState.open(dest, readonly=True) as job:
        assert job.serialize() == fixture("saves/fan_out.json")


@pytest.fixture
def run_import() -> Any:
    from click.testing import CliRunner

    from replay_tools.cli import cli

    return lambda *args: CliRunner().invoke(cli, ["import", *args], catch_exceptions=False)
