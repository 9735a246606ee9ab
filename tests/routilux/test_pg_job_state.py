"""JobState and JobStore on PostgreSQL locations (``postgresql://...#<job id>``).

Needs ``EVENTLOG_PG_URL`` (``.ci/run`` starts a throw-away server with
``scripts/pg_server``); without it every test here is skipped with that reason. Each test
works in a fresh PostgreSQL schema (dropped afterwards), so runs never collide.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from eventlog import GENESIS, ConcurrencyError, InMemoryEventLog
from eventlog.chain import next_link
from eventlog.postgres import open_pg_log
from routilux import JobState
from routilux.job_store import JobStore, JobSummary

PG_URL = os.environ.get("EVENTLOG_PG_URL", "")
pytestmark = pytest.mark.skipif(
    not PG_URL,
    reason="set EVENTLOG_PG_URL=postgresql://... to run the PostgreSQL tests; .ci/run starts a throw-away server",
)


@pytest.fixture
def db(pg_schema_url: str) -> str:
    """A URL whose search_path is a new, empty PostgreSQL schema (tests/conftest.py)."""
    return pg_schema_url


def chain_head(job: JobState) -> bytes:
    """The hash-chain head recomputed from the raw event bytes, from GENESIS."""
    link = GENESIS
    for seq, ts, event_bytes in job.log.read_raw():
        link = next_link(link, seq, ts, event_bytes, b"")
    return link


def mutate(job: JobState, i: int) -> None:
    """One of several mutations, chosen by ``i``."""
    step = i % 5
    if step == 0:
        job.record_execution(f"r{i % 3}", "out", {"i": i, "ok": True})
    elif step == 1:
        job.update_routine_state(f"r{i % 3}", {"status": "running", "i": i, "nested": {"x": [i]}})
    elif step == 2:
        job.update_shared_data("progress", i)
    elif step == 3:
        job.record_execution("r", "nested", {"items": [i, {"k": "v"}]})
    else:
        job.append_to_shared_log({"i": i})


def test_round_trip_and_reopen_continue(db: str) -> None:
    """A PG job keeps every event: reopening equals the closed job and continues it."""
    location = f"{db}#job-1"
    job = JobState.open(location, flow_id="flow-pg")
    try:
        assert job.job_id == "job-1"  # a new PG job takes the location's id
        job.status = "running"
        for i in range(30):
            mutate(job, i)
        live = job.serialize()
        version = job.version
        head = job.head_hash
    finally:
        job.close()
    assert job.closed

    again = JobState.open(location, flow_id="flow-pg")
    try:
        assert again.serialize() == live
        assert again.version == version and again.head_hash == head
        for i in range(30, 40):
            mutate(again, i)
        again.status = "completed"
        assert again.version == version + 11
        assert again.serialize() == JobState.from_events(again.events()).serialize()
        assert chain_head(again) == bytes.fromhex(again.head_hash)
        mem = InMemoryEventLog()  # the same records give the same head hash on every backend
        for rec in again.log.read():
            mem.append(rec.kind, rec.data, ts=rec.ts)
        assert mem.head_hash.hex() == again.head_hash
        assert again._p.kind_counts == Counter(e.kind for e in again.events())
    finally:
        again.close()


def test_flow_id_mismatch_and_bad_locations(db: str) -> None:
    """A job of another flow, a URL without a job id and a missing read-only job are refused."""
    with JobState.open(f"{db}#theirs", flow_id="theirs"):
        pass
    with pytest.raises(ValueError, match="belongs to flow 'theirs'"):
        JobState.open(f"{db}#theirs", flow_id="mine")
    with pytest.raises(ValueError, match="job id after '#'"):
        JobState.open(db)
    with pytest.raises(FileNotFoundError):
        JobState.open(f"{db}#missing", readonly=True)


def test_readonly_view_and_time_travel(db: str) -> None:
    """A read-only open follows a live PG job; at(version=k) equals the state after step k."""
    location = f"{db}#tt"
    job = JobState.open(location, flow_id="f")
    job.snapshot_every = 7  # several snapshots in the database, so at() starts from them
    seen = {job.version: job.serialize()}
    try:
        for i in range(40):
            mutate(job, i)
            seen[job.version] = job.serialize()
        job.sync()  # also waits for the background snapshot writer
        with JobState.open(location, readonly=True) as reader:
            assert reader.readonly and reader.version == job.version
            for k, state in seen.items():
                assert reader.at(version=k).serialize() == state
            assert len(reader.log.snapshots()) >= 4
            with pytest.raises(Exception, match="read-only"):
                reader.update_shared_data("x", 1)
    finally:
        job.close()


def test_second_writer_gets_a_concurrency_error(db: str) -> None:
    """Two JobStates on one PG job: the stale one is refused and nothing is written."""
    location = f"{db}#shared"
    first = JobState.open(location, flow_id="f")
    second = JobState.open(location, flow_id="f")
    try:
        first.update_shared_data("a", 1)
        head = first.version
        with pytest.raises(ConcurrencyError):
            second.update_shared_data("b", 2)
        with pytest.raises(ConcurrencyError):
            second.record_execution("r", "e", {"x": 1})
        assert second.log.head_seq == head  # nothing written by the loser
        assert second.version == head - 1 and second.get_shared_data("b") is None
    finally:
        second.close()
    with JobState.open(location) as third:  # reopening catches up
        assert third.version == head and third.get_shared_data("a") == 1
    first.close()


CHILD = textwrap.dedent('''
    import sys
    from routilux import Flow, JobState, Routine

    mode, location = sys.argv[1], sys.argv[2]

    class Start(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", self.go)
            self.define_event("out")

        def go(self, n=1):
            for i in range(n):
                self.emit("out", value=i)

    class Fan(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("in", self.go)
            self.define_event("out")

        def go(self, value):
            for i in range(5):
                self.emit("out", value=i)

    class Sink(Routine):
        def __init__(self, stop_at):
            super().__init__()
            self.stop_at = stop_at
            self.define_slot("in", self.on)

        def on(self, value):
            ctx = self.get_execution_context()
            ctx.job_state.append_to_shared_log({"sink": value, "mode": mode})
            if value == self.stop_at:
                ctx.flow.shutdown(wait=False)  # this process stops working on the job here

    flow = Flow("pg-flow")
    flow.add_routine(Start(), "start")
    flow.add_routine(Fan(), "fan")
    flow.add_routine(Sink(1 if mode == "run" else None), "sink")
    flow.connect("start", "out", "fan", "in")
    flow.connect("fan", "out", "sink", "in")

    job = JobState.open(location, flow_id=flow.flow_id)
    if mode == "run":
        flow.execute("start", {"n": 1}, job_state=job)
        ok = JobState.wait_until_condition(
            flow, job, lambda f, j: len(j.shared_log) == 2 and all(
                t["state"] == "queued" for t in j.open_tasks.values()), timeout=30)
        print("stopped" if ok else "timeout", job.status, len(job.open_tasks), flush=True)
    else:
        flow.resume(job)
        ok = JobState.wait_for_completion(flow, job, timeout=30)
        print(job.status if ok else "timeout", flush=True)
    job.close()
''')


def run_child(script: Path, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_flow_started_in_one_process_resumes_in_another(db: str, tmp_path: Path) -> None:
    """A flow run stops in one process; another process resumes the PG job to completion."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    location = f"{db}#flow-job"
    assert run_child(script, "run", location) == "stopped running 3"
    assert run_child(script, "resume", location) == "completed"

    with JobState.open(location, readonly=True) as job:
        assert job.status == "completed" and dict(job.open_tasks) == {}
        sinks = [(e["mode"], e["sink"]) for e in job.shared_log]
        assert sorted(v for _, v in sinks) == [0, 1, 2, 3, 4]  # every value exactly once
        assert {m for m, v in sinks if v >= 2} == {"resume"}
        # Eventlog-level checks: the chain recomputed from the raw bytes equals the head,
        # and a replay of the log equals the state.
        assert chain_head(job) == job.log.head_hash == bytes.fromhex(job.head_hash)
        assert [e.seq for e in job.events()] == list(range(1, job.version + 1))
        assert job.serialize() == JobState.from_events(job.events()).serialize()
    # And the audit tool's verify (checksums, chain, snapshots, replay determinism) passes.
    checked = subprocess.run([sys.executable, "-m", "replay_tools", "verify", location],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_job_store_in_postgres(db: str) -> None:
    """JobStore(url) creates, lists, opens and deletes jobs kept in the database."""
    store = JobStore(db)
    assert store.directory is None and store.list() == [] and len(store) == 0
    a = store.create("flow-a", "job-a")
    a.status = "running"
    a.record_execution("r", "e", {"n": 1})
    a.close()
    b = store.create("flow-b")
    b.update_shared_data("k", 1)
    rows = {row.job_id: row for row in store.list()}
    assert set(rows) == {"job-a", b.job_id}
    assert rows["job-a"] == JobSummary("job-a", "flow-a", "running", 3, rows["job-a"].updated_at)
    assert rows[b.job_id].version == 2 and rows[b.job_id].updated_at == b.updated_at
    assert "job-a" in store and "nope" not in store
    b.close()
    with pytest.raises(FileExistsError, match="already exists"):
        store.create("flow-a", "job-a")
    with store.open("job-a") as again:
        assert again.version == 3
        again.status = "completed"
    assert {r.job_id: r.status for r in store.list()}["job-a"] == "completed"
    store.delete("job-a")
    assert store.job_ids() == [b.job_id]
    with pytest.raises(KeyError, match="no job 'job-a'"):
        store.open("job-a")
    with pytest.raises(ValueError, match="without '#<job id>'"):
        JobStore(f"{db}#job-a")
    # A log created but without events yet (a job being created) is not listed.
    open_pg_log(db, "job-empty").close()
    assert "job-empty" in store and [r.job_id for r in store.list()] == [b.job_id]


def test_in_place_edits_on_a_postgresql_job_reopen_equal(db: str) -> None:
    """Issue 12: in-place edits of a PostgreSQL job are events; a reopened job (snapshots + tail) equals it."""
    location = f"{db}#edited"
    with JobState.open(location, flow_id="f") as job:
        job.snapshot_every = 5
        job.update_shared_data("items", [])
        for i in range(12):
            job.get_shared_data("items").append({"i": i})
            job.get_shared_data("items")[-1]["done"] = True
        job.update_routine_state("r", {"count": 0})
        job.get_routine_state("r")["count"] += 1
        want = job.serialize()
    with JobState.open(location) as again:
        assert again.serialize() == want
        assert again.get_shared_data("items")[-1] == {"i": 11, "done": True}
        again.get_shared_data("items").pop(0)  # and it keeps recording
        assert len(again.get_shared_data("items")) == 11
