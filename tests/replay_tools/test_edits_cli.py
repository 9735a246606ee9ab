"""blame and bisect on fields changed by in-place edits (issue 12): the right versions and routines.

A real flow run: ``collect`` appends each number it receives to ``shared_data["items"]``
in place, ``tally`` counts them in its routine state with ``+= 1`` and trims the list
with ``pop(0)``. The tools must see every in-place edit as a change of those fields
(a kind missing from their tables would make them skip it silently) and name the
routine that made it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eventlog import Record
from routilux import Flow, JobState, Routine


class Source(Routine):
    """Entry: creates the list; the numbers are deferred events, emitted one by one on resume.

    (Deferred, as in the demo flow: when they are emitted, the entry's task is long
    finished, so each change belongs to one routine without doubt.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.run)
        self.define_event("number", ["n"])

    def run(self, count: int = 5, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.update_shared_data("items", [])
        ctx.job_state.update_routine_state("tally", {"count": 0})
        for n in range(count):
            self.emit_deferred_event("number", n=n)


class Collect(Routine):
    """Appends in place: ``job.get_shared_data("items").append(n)``."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("numbers", self.run)
        self.define_event("collected", ["n"])

    def run(self, n: int, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.get_shared_data("items").append(n)
        self.emit("collected", n=n)


class Tally(Routine):
    """Counts in place (``["count"] += 1``) and trims the list to its last three items."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("collected", self.run)

    def run(self, n: int, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        job = ctx.job_state
        job.get_routine_state("tally")["count"] += 1
        if len(job.get_shared_data("items")) > 3:
            job.get_shared_data("items").pop(0)


@pytest.fixture(scope="module")
def edited_job(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A durable job written by a sequential flow run whose routines edit in place."""
    path = str(tmp_path_factory.mktemp("edits") / "job")
    flow = Flow("edits-flow", execution_strategy="sequential")
    flow.add_routine(Source(), "source")
    flow.add_routine(Collect(), "collect")
    flow.add_routine(Tally(), "tally")
    flow.connect("source", "number", "collect", "numbers")
    flow.connect("collect", "collected", "tally", "collected")
    job = JobState.open(path, flow_id=flow.flow_id)
    try:
        flow.execute("source", {"count": 6}, job_state=job)
        flow.pause(job, reason="check")
        flow.resume(job)
        assert JobState.wait_for_completion(flow, job, timeout=30)
        assert job.get_shared_data("items") == [3, 4, 5] and job.get_routine_state("tally") == {"count": 6}
    finally:
        flow.shutdown(wait=True, timeout=5)
        job.close()
    return path


def _records(path: str) -> list[Record]:
    with JobState.open(path, readonly=True) as job:
        return [Record(e.seq, e.ts, e.kind, e.data) for e in job.events()]


def test_blame_lists_every_in_place_edit_with_its_routine(run: Any, edited_job: str) -> None:
    """blame shared_data.items: the set, each append (collect) and each pop (tally), in order."""
    recs = _records(edited_job)
    changed = [r for r in recs if r.kind in ("shared_data_set", "shared_data_edited") and r.data["key"] == "items"]
    ops = [r.data.get("op") for r in changed]
    assert ops[0] is None and sorted(ops[1:]) == ["append"] * 6 + ["delitem"] * 3
    result = run("blame", edited_job, "shared_data.items", "--json")
    assert result.exit_code == 0, result.output
    changes = json.loads(result.stdout)["changes"]
    assert [c["version"] for c in changes] == [r.seq for r in changed]
    by_op = {r.seq: r.data.get("op") for r in changed}
    for change in changes[1:]:
        assert change["routine_id"] == ("collect" if by_op[change["version"]] == "append" else "tally")
    assert changes[-1]["new"] == [3, 4, 5]


def test_blame_of_a_routine_state_counted_in_place(run: Any, edited_job: str) -> None:
    """blame routine_states.tally.count: one change per `+= 1`, each by tally, values 1..6."""
    result = run("blame", edited_job, "routine_states.tally.count", "--json")
    assert result.exit_code == 0, result.output
    changes = json.loads(result.stdout)["changes"]
    assert [c["new"] for c in changes] == [0, 1, 2, 3, 4, 5, 6]
    assert {c["routine_id"] for c in changes[1:]} == {"tally"}
    recs = {r.seq: r for r in _records(edited_job)}
    assert all(recs[c["version"]].kind == "routine_state_edited" for c in changes[1:])


def test_bisect_finds_the_edit_that_made_a_condition_true(run: Any, edited_job: str) -> None:
    """bisect on a length grown by appends, and on a count, gives the exact event (and --all the flips)."""
    recs = _records(edited_job)
    items: list[int] = []
    lengths: dict[int, int] = {}
    for r in recs:  # the length of the list after each version, from the events themselves
        if r.kind == "shared_data_set" and r.data["key"] == "items":
            items = list(r.data["value"])
        elif r.kind == "shared_data_edited" and r.data["key"] == "items":
            if r.data["op"] == "append":
                items.append(r.data["args"][0])
            else:
                del items[r.data["args"][0]]
        lengths[r.seq] = len(items)
    first_three = min(seq for seq, n in lengths.items() if n >= 3)
    result = run("bisect", edited_job, "--where", "len(shared_data.items) >= 3", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["version"] == first_three
    four = run("bisect", edited_job, "--where", "len(shared_data.items) == 4", "--all", "--json")
    flips = [t["version"] for t in json.loads(four.stdout)["transitions"]]
    expected = [seq for seq in sorted(lengths) if (lengths[seq] == 4) != (lengths.get(seq - 1, 0) == 4)]
    assert flips == expected and len(flips) >= 2  # true at each fourth append, false again at each pop
    count = run("bisect", edited_job, "--where", "routine_states.tally.count == 4", "--json")
    version = json.loads(count.stdout)["version"]
    assert recs[version - 1].kind == "routine_state_edited" and recs[version - 1].data["args"] == ["count", 4]


def test_verify_passes_on_a_job_edited_in_place(run: Any, edited_job: str, tmp_path: Path) -> None:
    """verify (storage, snapshots, determinism) passes; state --json shows the edited values."""
    result = run("verify", edited_job, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["ok"] is True
    state = json.loads(run("state", edited_job, "--json").stdout)
    assert state["state"]["shared_data"]["items"] == [3, 4, 5]


def test_whole_map_edits_are_folded_only_when_they_touch_the_field(run: Any, tmp_path: Path) -> None:
    """`del shared_data["other"]` (an edit of the map itself) is skipped by a scan of shared_data.a;
    `shared_data.clear()` and `update` of `a` are not: blame and bisect stay exact."""
    path = tmp_path / "job"
    with JobState.open(path, flow_id="f") as job:
        job.shared_data["other"] = 1                # 2
        job.shared_data["a"] = 1                    # 3
        del job.shared_data["other"]                # 4: a whole-map delitem of another key
        job.shared_data.update({"a": 2, "z": 0})    # 5: a whole-map update that sets a
        job.shared_data.clear()                     # 6: removes a
        job.shared_data["a"] = 3                    # 7
    changes = json.loads(run("blame", str(path), "shared_data.a", "--json").stdout)["changes"]
    assert [c["version"] for c in changes] == [3, 5, 6, 7]
    found = json.loads(run("bisect", str(path), "--where", "shared_data.a == 2", "--all", "--json").stdout)
    assert [t["version"] for t in found["transitions"]] == [5, 6]


def test_logs_of_older_schema_versions_still_replay() -> None:
    """Evolution rule 1: a log written at schema 1 or 3 (before the edit kinds) replays unchanged."""
    for schema in (None, 1, 3):
        created: dict[str, Any] = {"job_id": "old", "flow_id": "f"}
        if schema is not None:
            created["schema"] = schema
        events = [Record(1, 1, "job_created", created), Record(2, 2, "shared_data_set", {"key": "l", "value": [1]}),
                  Record(3, 3, "status_set", {"status": "completed"}),
                  Record(4, 4, "execution_recorded", {"routine_id": "r", "event_name": "e", "data": {"x": 1}})]
        job = JobState.from_events(events)
        assert (job.status, job.get_shared_data("l"), len(job.execution_history)) == ("completed", [1], 1)


def test_blame_sees_an_edit_in_the_middle_of_a_long_list(run: Any, tmp_path: Path) -> None:
    """A list longer than blame's summary threshold, changed in the middle (same length, first
    and last): blame still reports the edit."""
    path = tmp_path / "job"
    with JobState.open(path, flow_id="f") as job:
        job.update_shared_data("long", list(range(200)))  # 2
        job.get_shared_data("long")[100] = "changed"      # 3
        job.get_shared_data("long").append(200)           # 4
        job.shared_data["other"] = 1                      # 5 (not the list)
        job.get_shared_data("long")[5:7] = [6, 5]         # 6
    changes = json.loads(run("blame", str(path), "shared_data.long", "--json").stdout)["changes"]
    assert [c["version"] for c in changes] == [2, 3, 4, 6]
