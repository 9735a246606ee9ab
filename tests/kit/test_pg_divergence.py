"""rerun and fork read jobs stored in PostgreSQL (``postgresql://...#<job id>``).

Needs ``EVENTLOG_PG_URL`` (``scripts/pg_server`` starts a throw-away server); skipped
without it. Each test works in a fresh schema, dropped afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kit_flows
import pytest

from replay_tools.divergence import fork, verify_fork
from routilux import JobState

PG_URL = os.environ.get("EVENTLOG_PG_URL", "")
pytestmark = pytest.mark.skipif(not PG_URL, reason="set EVENTLOG_PG_URL=postgresql://... to run the PostgreSQL tests")


@pytest.fixture
def db(pg_schema_url: str) -> str:
    """A URL whose search_path is a new, empty PostgreSQL schema (tests/conftest.py)."""
    return pg_schema_url


def test_rerun_and_fork_a_job_stored_in_postgresql(run: Any, db: str, tmp_path: Path) -> None:
    """The same report as for a directory; a fork of a PostgreSQL job verifies against it."""
    location = f"{db}#ledger-pg"
    flow = kit_flows.build_ledger_v1()
    job = JobState.open(location, flow_id="ledger")
    try:
        flow.execute("load", {"items": [3, 4, 5], "rate": 2}, job_state=job)
        assert JobState.wait_for_completion(flow, job, timeout=30)
        head = job.head_hash
    finally:
        flow.shutdown(wait=True, timeout=5)
        job.close()
    same = run("rerun", location, "--flow", "kit_flows:build_ledger_v1")
    assert same.exit_code == 0, same.output
    changed = run("rerun", location, "--flow", "kit_flows:build_ledger_v2")
    assert changed.exit_code == 1
    assert "output_sent of routine total differs" in changed.stdout and "data.total: 24 -> 19" in changed.stdout
    result = fork(location, tmp_path / "fork", at=8)
    assert result.source_job_id == "ledger-pg"
    assert verify_fork(tmp_path / "fork", location) == []
    with JobState.open(location, readonly=True) as again:
        assert again.head_hash == head
