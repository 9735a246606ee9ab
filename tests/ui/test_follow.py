"""The index follows a job that another writer is still appending to (directory and PostgreSQL)."""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

import pytest

from replay_tools import open_job
from replay_tools.ui.index import JobIndex
from routilux.job_state import JobState


def _follow_while_writing(location: str) -> None:
    writer = JobState.open(location, flow_id="live")
    try:
        writer.status = "running"
        job = open_job(location)
        index = JobIndex(job)
        index.scan()
        first = index.head
        thread = threading.Thread(target=index.follow, daemon=True)
        thread.start()
        for i in range(50):
            writer.update_shared_data("i", i)
        writer.status = "completed"
        writer.sync()
        assert index.wait_for(writer.version, timeout=20), (index.head, writer.version)
        assert index.head == writer.version > first
        assert index.kind_of(index.head) == "status_set"
        index.stop()
        thread.join(10)
        assert not thread.is_alive()
        job.close()
    finally:
        writer.close()


def test_follows_a_directory(tmp_path: Any) -> None:
    """Events appended to a durable directory after the first pass are indexed, in order."""
    _follow_while_writing(str(tmp_path / "job"))


@pytest.mark.skipif(not os.environ.get("EVENTLOG_PG_URL"),
                    reason="set EVENTLOG_PG_URL=postgresql://... to run the PostgreSQL tests; .ci/run starts a server")
def test_follows_a_postgres_job() -> None:
    """The same for a job in PostgreSQL (woken by its notifications)."""
    _follow_while_writing(f"{os.environ['EVENTLOG_PG_URL']}#ui-follow-{uuid.uuid4().hex[:10]}")
