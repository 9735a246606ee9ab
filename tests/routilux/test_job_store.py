"""JobStore: many durable jobs under one directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventlog import LogLockedError
from routilux.job_store import JobStore, JobSummary


def test_create_open_list(tmp_path: Path) -> None:
    """Jobs are created, listed with their summary, and reopened by id."""
    store = JobStore(tmp_path / "jobs")
    a = store.create("flow-a", "job-a")
    a.status = "running"
    a.record_execution("r", "e", {})
    a.close()
    b = store.create("flow-b")
    b.update_shared_data("k", 1)
    rows = {row.job_id: row for row in store.list()}
    assert set(rows) == {"job-a", b.job_id}
    assert rows["job-a"] == JobSummary("job-a", "flow-a", "running", 3, rows["job-a"].updated_at)
    assert rows[b.job_id].status == "pending" and rows[b.job_id].version == 2
    assert rows[b.job_id].updated_at == b.updated_at
    assert "job-a" in store and "nope" not in store and len(store) == 2
    b.close()
    with store.open("job-a") as again:
        assert again.status == "running" and again.version == 3
        again.status = "completed"
    assert {r.job_id: r.status for r in store.list()}["job-a"] == "completed"


def test_list_reads_a_running_job_without_its_lock(tmp_path: Path) -> None:
    """list() works while a writer holds a job open, and sees its latest events."""
    store = JobStore(tmp_path)
    job = store.create("f", "live")
    job.snapshot_every = 10
    for i in range(25):
        job.update_shared_data("i", i)
    (row,) = store.list()
    assert row.version == 26
    job.close()


def test_errors(tmp_path: Path) -> None:
    """Duplicate ids, bad ids, unknown ids and deleting an open job are refused."""
    store = JobStore(tmp_path)
    job = store.create("f", "x1")
    with pytest.raises(FileExistsError, match="x1"):
        store.create("f", "x1")
    for bad in ("", "../escape", ".hidden", "a/b", "x" * 200):
        with pytest.raises(ValueError, match="invalid job id"):
            store.create("f", bad)
    with pytest.raises(KeyError, match="missing"):
        store.open("missing")
    with pytest.raises(LogLockedError):
        store.delete("x1")
    job.close()
    store.delete("x1")
    assert "x1" not in store and store.list() == []
    with pytest.raises(KeyError):
        store.delete("x1")
