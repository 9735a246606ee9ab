"""The job index: history counts, tasks, failures and filters agree with the log."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from ui_jobs import operations, random_job

from replay_tools import projection_at, timeline
from replay_tools.summary import record_routine
from replay_tools.ui.index import COUNTED_LISTS, Filter, JobIndex
from replay_tools.ui.textsearch import event_matches, fold


def lengths(job: Any, version: int) -> dict[str, int]:
    p = projection_at(job, version, history=True)
    return {
        "execution_history": len(p.execution_history),
        "errors": sum(1 for r in p.execution_history if r.event_name == "error"),
        "output_log": len(p.output_log),
        "shared_log": len(p.shared_log),
        "pause_points": len(p.pause_points),
    }


@given(st.lists(operations, min_size=1, max_size=30))
@settings(max_examples=40)
def test_counts_are_the_history_lengths(ops: list[Any]) -> None:
    """counts(v) equals the lengths of the fold's history lists at every v (deserialize included)."""
    with random_job(ops) as job:
        index = JobIndex(job)
        index.scan()
        assert index.error is None and index.head == job.head
        for v in range(1, job.head + 1):
            assert index.counts(v) == lengths(job, v), v
        assert index.counts(job.head + 1) is None


@given(st.lists(operations, min_size=1, max_size=30), st.sets(st.sampled_from(
    ["shared_data_set", "execution_recorded", "task_queued", "task_failed", "paused"]), max_size=2),
    st.sampled_from([None, "fetch", "price"]), st.sampled_from(["", "error", "LIMIT", "$tag", "check", "1"]))
@settings(max_examples=40)
def test_filters_match_a_plain_scan(ops: list[Any], kinds: set[str], routine: str | None, text: str) -> None:
    """matching() keeps exactly the events a plain scan keeps: the CLI's routine, the text's definition."""
    with random_job(ops) as job:
        index = JobIndex(job)
        index.scan()
        flt = Filter(frozenset(kinds), routine, text)
        want = []
        for row in timeline(job):  # what `routilux-replay events` lists, with its routines
            if kinds and row.kind not in kinds or routine is not None and row.routine != routine \
                    or not event_matches(fold(text), row.kind, row.data):
                continue
            want.append(row.seq)
        result = index.matching(flt)
        assert list(result.seqs) == want and result.upto == job.head


def test_tasks_failures_and_routines_of_the_demo(demo_job: Any) -> None:
    """The demo flow: four tasks, one per routine, all finished; a pause; no failure."""
    index = JobIndex(demo_job)
    index.scan()
    tasks = index.tasks_since(0)
    assert sorted(index.routines[t.lane] for t in tasks) == ["fetch", "price", "report", "validate"]
    assert all(t.ended > t.queued and t.state == 2 for t in tasks)
    assert index.first_failure() is None
    paused = [rec.seq for rec in demo_job.read() if rec.kind == "paused"]
    resumed = [rec.seq for rec in demo_job.read() if rec.kind == "resumed"]
    assert index.pauses == [[paused[0], resumed[0]]]
    assert [m[2] for m in index.marks] == ["retried"]
    for rec in demo_job.read():
        routine = record_routine(rec)
        if routine is not None:
            assert index.routine_of(rec.seq) == routine
    assert set(index.counts(demo_job.head)) == set(COUNTED_LISTS)


def test_failures_and_tasks_since(tmp_path: Any) -> None:
    """A failed task and an error record are failures; tasks_since lists what changed after a seq."""
    ops = [("status", "running"), ("task", 1, "queued"), ("task", 2, "queued"), ("task", 1, "started"),
           ("record", "fetch", "error", {}), ("task", 1, "failed"), ("task", 2, "finished")]
    with random_job(ops) as job:
        index = JobIndex(job)
        index.scan()
        kinds = [rec.kind for rec in job.read()]
        first_error = kinds.index("execution_recorded") + 1
        assert index.first_failure() == first_error
        assert list(index.failures) == [first_error, kinds.index("task_failed") + 1]
        states = {t.task_id: t.state for t in index.tasks_since(0)}
        assert states == {"t1": 3, "t2": 2}
        last = job.head
        assert [t.task_id for t in index.tasks_since(last - 1)] == ["t2"]
        assert index.tasks_since(last) == []


def test_scan_stops_at_damage_and_reports_it(demo_job_dir: str, tmp_path: Any) -> None:
    """A flipped byte in the middle of the log: the index keeps what precedes it and names the damage."""
    import os
    import shutil

    from replay_tools import open_job

    path = str(tmp_path / "job")
    shutil.copytree(demo_job_dir, path)
    seg = sorted(n for n in os.listdir(path) if n.endswith(".seg"))[0]
    with open(os.path.join(path, seg), "r+b") as fh:
        raw = fh.read()
        at = raw.index(b"operator check")  # inside the pause's events, mid-log
        fh.seek(at)
        fh.write(b"O")
    job = open_job(path)  # the tail is intact: the log opens
    with job:
        index = JobIndex(job)
        index.scan()
        assert index.error is not None and "damaged" in str(index.error)
        first_bad = next(rec.seq for rec in open_job(demo_job_dir).read()
                         if b"operator check" in repr(rec.data).encode())
        assert index.head == first_bad - 1
        assert index.scanned
