"""The PostgreSQL backend under concurrency and failure: several processes, followers, killed connections.

Needs ``EVENTLOG_PG_URL`` (see tests/eventlog/test_postgres.py); skipped with that
reason otherwise. ``EVENTLOG_PG_FOLLOW_APPENDS`` (default 10000) sets the number of
appends in the followers test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from eventlog import EventLogError
from eventlog.postgres import (
    EVENTS_TABLE,
    LOGS_TABLE,
    SNAPSHOTS_TABLE,
    PostgresError,
    PostgresEventLog,
    open_pg_log,
)

PG_URL = os.environ.get("EVENTLOG_PG_URL", "")
pytestmark = pytest.mark.skipif(
    not PG_URL,
    reason="set EVENTLOG_PG_URL=postgresql://... to run the PostgreSQL tests; .ci/run starts a throw-away server",
)

# A writer process: opens the log, says READY, waits for "go" on stdin (so all writers
# start together), then either races for seqs with expected seqs or appends n events.
WRITER = r"""
import json, sys
from eventlog import ConcurrencyError
from eventlog.postgres import open_pg_log

url, job, mode, n, name = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
log = open_pg_log(url, job)
print("READY", flush=True)
sys.stdin.readline()
out = {}
if mode == "race":
    # Each writer keeps its own idea of the head and only learns the real one when it
    # loses, so the two processes keep colliding on the same seqs.
    known, wins, losses, attempt = 0, [], [], 0
    while len(wins) < n:
        attempt += 1
        try:
            rec = log.append("race", {"who": name, "attempt": attempt}, expected_seq=known)
        except ConcurrencyError as exc:
            losses.append(attempt)
            known = exc.actual
        else:
            wins.append([rec.seq, attempt])
            known = rec.seq
    out = {"wins": wins, "losses": losses}
else:
    for i in range(n):
        log.append("fill", {"i": i, "who": name})
    out = {"done": n}
log.close()
print(json.dumps(out), flush=True)
"""


class Jobs:
    """Unique job ids for one test; their rows are deleted at teardown."""

    def __init__(self) -> None:
        import psycopg

        self.admin = psycopg.connect(PG_URL, autocommit=True)
        self.prefix = f"procs-{uuid.uuid4().hex[:12]}"
        self.names: list[str] = []
        self.logs: list[PostgresEventLog] = []

    def job(self, name: str) -> str:
        job = f"{self.prefix}-{name}"
        self.names.append(job)
        return job

    def open(self, job: str) -> PostgresEventLog:
        log = open_pg_log(PG_URL, job)
        self.logs.append(log)
        return log

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        cur = self.admin.execute(query, params or None)
        return cur.fetchall() if cur.description else []

    def cleanup(self) -> None:
        for log in self.logs:
            log.close()
        ids = [r[0] for r in self.sql(f"SELECT log_id FROM {LOGS_TABLE} WHERE name = ANY(%s)", self.names)]
        for table in (EVENTS_TABLE, SNAPSHOTS_TABLE, LOGS_TABLE):
            self.sql(f"DELETE FROM {table} WHERE log_id = ANY(%s)", ids)
        self.admin.close()


@pytest.fixture
def jobs() -> Iterator[Jobs]:
    """Job ids, handles and an admin connection for one test."""
    j = Jobs()
    yield j
    j.cleanup()


def run_writers(specs: list[tuple[str, str, int, str]], timeout: float = 60) -> list[dict[str, Any]]:
    """Start one writer process per ``(job, mode, n, name)``, release them together, return their reports."""
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, PG_URL, job, mode, str(n), name],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for job, mode, n, name in specs
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            assert line.strip() == "READY", f"writer did not start: {line!r} {p.stderr.read() if p.stderr else ''}"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        reports = []
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, f"writer failed (exit {p.returncode}):\n{err}"
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return reports
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_two_processes_with_expected_seqs_one_winner_per_seq(jobs: Jobs) -> None:
    """Two processes racing with expected seqs: each seq has one winner, losers wrote nothing, no gap."""
    job = jobs.job("race")
    jobs.open(job)  # create the log before the race
    wins_each = 150
    reports = run_writers([(job, "race", wins_each, "A"), (job, "race", wins_each, "B")])
    log = jobs.open(job)
    records = list(log.read())
    assert [r.seq for r in records] == list(range(1, 2 * wins_each + 1))  # no gap, no duplicate
    claimed = {}
    for name, report in zip("AB", reports, strict=True):
        for seq, attempt in report["wins"]:
            assert seq not in claimed, f"seq {seq} reported won by both processes"
            claimed[seq] = (name, attempt)
    stored = {r.seq: (r.data["who"], r.data["attempt"]) for r in records}
    assert stored == claimed  # every stored event is a reported win, and every win is stored
    lost = {(name, a) for name, report in zip("AB", reports, strict=True) for a in report["losses"]}
    assert lost and not lost & set(stored.values())  # there were losses, and none was written


def test_followers_before_and_after_10000_appends_from_4_writers(jobs: Jobs) -> None:
    """Followers started before and after 4 processes append 2,500 events each see all of their job's, once, in order."""
    per_job = int(os.environ.get("EVENTLOG_PG_FOLLOW_APPENDS", "10000")) // 4
    names = [jobs.job(f"fill{i}") for i in range(4)]
    before = [jobs.open(job) for job in names]
    seen: dict[str, list[tuple[int, int]]] = {job: [] for job in names}
    ready = threading.Barrier(len(names) + 1)

    def follow(log: PostgresEventLog) -> None:
        got = seen[log.job_id]
        stream = log.follow(timeout=30)
        ready.wait()
        for rec in stream:
            got.append((rec.seq, rec.data["i"]))
            if rec.seq == per_job:
                break

    threads = [threading.Thread(target=follow, args=(log,), daemon=True) for log in before]
    for t in threads:
        t.start()
    ready.wait()
    run_writers([(job, "fill", per_job, job) for job in names], timeout=120)
    for t in threads:
        t.join(timeout=60)
    expected = [(seq, seq - 1) for seq in range(1, per_job + 1)]
    for job in names:
        assert seen[job] == expected, f"follower before the appends of {job} saw {len(seen[job])} events"
        after = jobs.open(job)
        got = [(rec.seq, rec.data["i"]) for rec in after.follow(timeout=0.3)]
        assert got == expected, f"follower after the appends of {job}"
        assert {rec.data["who"] for rec in after.read(1, 10)} == {job}  # nothing from another job


def test_killing_the_connection_mid_batch_leaves_all_or_nothing(jobs: Jobs) -> None:
    """pg_terminate_backend during a large batch: the writer gets a PostgresError naming the cause; the batch is all or nothing."""
    job = jobs.job("kill")
    log = jobs.open(job)
    for i in range(3):
        log.append("before", {"i": i})
    result: dict[str, Any] = {}
    size = 0
    base = size = 0
    for size in (60_000, 200_000, 500_000):
        result.clear()
        base = log.head_seq

        def writer(n: int = size) -> None:
            try:
                log.append_batch([("bulk", {"i": i, "pad": "x" * 64}) for i in range(n)])
                result["ok"] = True
            except BaseException as exc:  # noqa: BLE001 - inspected below
                result["error"] = exc

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        while t.is_alive():
            # Wait until the INSERT of the batch is running, then terminate that backend.
            rows = jobs.sql("SELECT pid FROM pg_stat_activity WHERE application_name = %s AND state = 'active' "
                            "AND query LIKE %s", f"eventlog {job}"[:63], f"%INSERT INTO {EVENTS_TABLE}%")
            if rows:
                jobs.sql("SELECT pg_terminate_backend(%s)", rows[0][0])
                break
            time.sleep(0.002)
        t.join(timeout=120)
        if "error" in result:
            break
    else:
        pytest.fail("every batch committed before its connection could be terminated")
    err = result["error"]
    assert isinstance(err, PostgresError) and isinstance(err, EventLogError)
    assert "terminat" in str(err) and job in str(err)  # names the cause and the log
    assert err.committed is False and "nothing was written" in str(err)
    assert f"appending {size} event(s) (seq {base + 1}..{base + size})" in str(err)  # killed mid-insert
    head = log.head_seq  # the handle reconnects
    assert head == base  # none of the batch (the error said so: committed is False)
    assert jobs.sql(f"SELECT count(*), max(seq) FROM {EVENTS_TABLE} WHERE log_id = %s", log.log_id)[0] == (head, head)
    assert [r.seq for r in log.read()] == list(range(1, head + 1))  # checksums and chain hold
    assert log.append("after", {}).seq == head + 1
