"""Every routilux-replay command on a job stored in PostgreSQL, and the copy tool to/from it.

Needs ``EVENTLOG_PG_URL`` (``.ci/run`` starts a throw-away server with
``scripts/pg_server``); without it every test here is skipped with that reason. Each
test copies real job logs into the database under fresh job ids and deletes their rows
afterwards, so runs never collide.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from replay_tools.copying import copy_job
from replay_tools.errors import DestinationError

PG_URL = os.environ.get("EVENTLOG_PG_URL", "")
pytestmark = pytest.mark.skipif(
    not PG_URL,
    reason="set EVENTLOG_PG_URL=postgresql://... to run the PostgreSQL tests; .ci/run starts a throw-away server",
)


class PgJobs:
    """Hands out fresh PostgreSQL job locations and deletes their rows at teardown."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self.admin = psycopg.connect(url, autocommit=True)
        self.prefix = f"replay-{uuid.uuid4().hex[:10]}"
        self.names: list[str] = []

    def location(self, name: str = "job") -> str:
        """``url#<fresh job id>``."""
        job_id = f"{self.prefix}-{name}-{len(self.names)}"
        self.names.append(job_id)
        return f"{self.url}#{job_id}"

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run SQL on an admin connection (to damage or inspect rows)."""
        cur = self.admin.execute(query, params or None)
        return cur.fetchall() if cur.description else []

    def log_id(self, location: str) -> int:
        name = location.rsplit("#", 1)[1]
        return int(self.sql("SELECT log_id FROM eventlog_logs WHERE name = %s", name)[0][0])

    def cleanup(self) -> None:
        from eventlog.postgres import EVENTS_TABLE, LOGS_TABLE, SNAPSHOTS_TABLE

        if self.sql("SELECT to_regclass('eventlog_logs') IS NOT NULL")[0][0]:
            ids = [r[0] for r in self.sql(f"SELECT log_id FROM {LOGS_TABLE} WHERE name = ANY(%s)", self.names)]
            for table in (EVENTS_TABLE, SNAPSHOTS_TABLE, LOGS_TABLE):
                self.sql(f"DELETE FROM {table} WHERE log_id = ANY(%s)", ids)
        self.admin.close()


@pytest.fixture
def pg() -> Iterator[PgJobs]:
    """Fresh PostgreSQL job locations for one test."""
    jobs = PgJobs(PG_URL)
    yield jobs
    jobs.cleanup()


@pytest.fixture
def pg_flow(flow_job: str, pg: PgJobs) -> str:
    """The demo flow's job, copied into PostgreSQL; returns its location."""
    loc = pg.location("flow")
    copy_job(flow_job, loc)
    return loc


@pytest.fixture
def pg_snap(snap_job: str, pg: PgJobs) -> str:
    """A driven job with snapshots, copied into PostgreSQL (snapshots included)."""
    loc = pg.location("snap")
    copy_job(snap_job, loc)
    return loc


def _ok(res: Any) -> str:
    assert res.exit_code == 0, res.stderr
    return str(res.stdout)


@pytest.mark.parametrize("args", [
    ("events", "--json"),
    ("events", "--kind", "status_set", "--json"),
    ("state", "--json"),
    ("state", "--at", "20", "--json"),
    ("diff", "5", "head", "--json"),
    ("bisect", "--where", "status == completed", "--json"),
    ("blame", "shared_data", "--json"),
    ("tail", "-n", "4", "--json"),
    ("export",),
    ("export", "--format", "json"),
])
def test_every_read_command_gives_the_same_answer_on_postgresql(run: Any, flow_job: str, pg_flow: str,
                                                                args: tuple[str, ...]) -> None:
    command, *rest = args
    assert _ok(run(command, pg_flow, *rest)) == _ok(run(command, flow_job, *rest))


def test_info_and_verify_on_postgresql(run: Any, flow_job: str, pg_flow: str) -> None:
    file_info = json.loads(_ok(run("info", flow_job, "--json")))
    pg_info = json.loads(_ok(run("info", pg_flow, "--json")))
    for field in ("job_id", "flow_id", "status", "head_version", "first_ts", "last_ts", "counts", "head_hash"):
        assert pg_info[field] == file_info[field], field
    assert pg_info["form"] == "postgres" and "PostgreSQL" in pg_info["durability"]
    res = run("verify", pg_flow, "--expect-head", file_info["head_hash"], "--json")
    report = json.loads(_ok(res))
    assert report["ok"] and report["head_hash"] == file_info["head_hash"]
    # "snapshots": None: the flow job has no snapshot to check.
    assert report["checks"] == {"storage": True, "snapshots": None, "determinism": True, "head": True,
                                "audit": True}


def test_verify_checks_postgresql_snapshots_against_the_replay(run: Any, snap_job: str, pg_snap: str,
                                                               pg: PgJobs) -> None:
    report = json.loads(_ok(run("verify", pg_snap, "--json")))
    assert report["ok"] and report["snapshots_checked"] >= 1
    # A snapshot whose bytes no longer match its checksum is refused by the log and
    # reported by verify (exit 1), not silently skipped.
    seq = pg.sql("SELECT max(seq) FROM eventlog_snapshots WHERE log_id = %s", pg.log_id(pg_snap))[0][0]
    pg.sql("UPDATE eventlog_snapshots SET checksum = checksum # 1 WHERE log_id = %s AND seq = %s",
           pg.log_id(pg_snap), seq)
    res = run("verify", pg_snap, "--json")
    assert res.exit_code == 1
    bad = json.loads(res.stdout)
    assert not bad["checks"]["storage"]
    assert any(p["kind"] == "snapshot" and f"seq {seq}" in p["message"] for p in bad["problems"])


def test_verify_names_the_first_damaged_version_in_postgresql(run: Any, pg_flow: str, pg: PgJobs) -> None:
    pg.sql("UPDATE eventlog_events SET body = body || '\\x00'::bytea WHERE log_id = %s AND seq = 17",
           pg.log_id(pg_flow))
    res = run("verify", pg_flow, "--json")
    assert res.exit_code == 1
    report = json.loads(res.stdout)
    first = report["problems"][0]
    assert first["kind"] == "storage" and first["seq"] == 17 and "checksum" in first["message"]
    assert run("state", pg_flow, "--at", "30").exit_code == 5  # reading past the damage: exit 5


def test_jobs_lists_the_database(run: Any, pg_flow: str, pg_snap: str, flow_job: str) -> None:
    rows = json.loads(_ok(run("jobs", PG_URL, "--json")))
    names = (pg_flow.rsplit("#", 1)[1], pg_snap.rsplit("#", 1)[1])
    # The PostgreSQL log name is in "path" (the job's location); job_id is the job's own id.
    mine = {r["path"].rsplit("#", 1)[1]: r for r in rows if r["path"].rsplit("#", 1)[1] in names}
    assert len(mine) == 2
    flow = mine[pg_flow.rsplit("#", 1)[1]]
    file_info = json.loads(_ok(run("info", flow_job, "--json")))
    assert flow["job_id"] == file_info["job_id"]
    assert flow["status"] == file_info["status"] and flow["version"] == file_info["head_version"]
    assert flow["flow_id"] == file_info["flow_id"] and flow["size"] > 0
    assert pg_flow.rsplit("#", 1)[1] in _ok(run("jobs", PG_URL))


def test_export_import_through_postgresql(run: Any, flow_job: str, pg: PgJobs, tmp_path: Path) -> None:
    trail = str(tmp_path / "trail.jsonl")
    _ok(run("export", flow_job, "-o", trail))
    dest = pg.location("imported")
    out = json.loads(_ok(run("import", trail, dest, "--json")))
    head = json.loads(_ok(run("info", flow_job, "--json")))["head_hash"]
    assert out["head_hash"] == head
    assert _ok(run("verify", dest, "--expect-head", head))
    res = run("import", trail, dest)  # a second import into the same job is refused
    assert res.exit_code == 2 and "already holds" in res.stderr


def test_copy_file_to_postgresql_and_back_keeps_the_head_hash(run: Any, snap_job: str, pg: PgJobs,
                                                              tmp_path: Path) -> None:
    head = json.loads(_ok(run("info", snap_job, "--json")))["head_hash"]
    loc = pg.location("copy")
    out = json.loads(_ok(run("copy", snap_job, loc, "--json")))
    assert out["head_hash"] == head and out["kind"] == "postgres" and out["snapshots"] >= 1
    back_dir = str(tmp_path / "back")
    back_file = str(tmp_path / "back.rjob")
    assert json.loads(_ok(run("copy", loc, back_dir, "--json")))["head_hash"] == head
    assert json.loads(_ok(run("copy", loc, back_file, "--file", "--json")))["head_hash"] == head
    for path in (loc, back_dir, back_file):
        assert json.loads(_ok(run("verify", path, "--expect-head", head, "--json")))["ok"]
    assert _ok(run("events", back_dir, "--json")) == _ok(run("events", snap_job, "--json"))


def test_copy_to_a_database_url_uses_the_job_id(run: Any, flow_job: str, pg: PgJobs) -> None:
    job_id = json.loads(_ok(run("info", flow_job, "--json")))["job_id"]
    pg.names.append(job_id)  # cleaned up with the others
    out = json.loads(_ok(run("copy", flow_job, PG_URL, "--json")))
    assert out["destination"].endswith("#" + job_id)
    again = json.loads(_ok(run("copy", flow_job, PG_URL, "--json")))  # already there: nothing to do
    assert again["copied"] == 0 and again["head_hash"] == out["head_hash"]


def test_copy_into_postgresql_refuses_another_history_even_forced(run: Any, flow_job: str, snap_job: str,
                                                                  pg: PgJobs) -> None:
    loc = pg.location("taken")
    _ok(run("copy", snap_job, loc))
    before = json.loads(_ok(run("info", loc, "--json")))["head_hash"]
    for extra in ((), ("--force",)):
        res = run("copy", flow_job, loc, *extra)
        assert res.exit_code == 2 and "already holds" in res.stderr
    assert json.loads(_ok(run("info", loc, "--json")))["head_hash"] == before
    with pytest.raises(DestinationError):
        copy_job(flow_job, loc)


def test_copy_resumes_an_interrupted_copy_into_postgresql(snap_job: str, pg: PgJobs) -> None:
    from eventlog.postgres import open_pg_log
    from replay_tools import open_job

    loc = pg.location("resume")
    with open_job(snap_job) as src:
        partial = open_pg_log(loc)
        try:
            # The first 10 events, as an interrupted copy leaves them.
            for rec in src.log.read(1, 10):
                partial.append(rec.kind, rec.data, ts=rec.ts)
        finally:
            partial.close()
        result = copy_job(src, loc)
        assert result.resumed_from == 10 and result.copied == src.head - 10
        assert result.head_hash == src.log.head_hash.hex()


def test_missing_postgresql_job_is_exit_3(run: Any, pg: PgJobs, pg_flow: str) -> None:
    res = run("info", pg.location("nothing-here"))
    assert res.exit_code == 3 and "no job" in res.stderr


def test_tail_follow_on_postgresql_sees_new_events(run: Any, pg_flow: str) -> None:
    import threading

    from eventlog.postgres import open_pg_log

    writer = open_pg_log(pg_flow)
    try:
        timer = threading.Timer(0.3, lambda: writer.append("shared_data_set", {"key": "late", "value": 1}))
        timer.start()
        res = run("tail", pg_flow, "-n", "0", "--follow", "--timeout", "2", "--json")
        timer.join()
    finally:
        writer.close()
    lines = [json.loads(line) for line in _ok(res).splitlines()]
    assert [r["kind"] for r in lines] == ["shared_data_set"]
    assert lines[0]["data"] == {"key": "late", "value": 1}


def test_a_refused_import_into_postgresql_leaves_no_job(run: Any, flow_job: str, pg: PgJobs, tmp_path: Path) -> None:
    """An altered export imported into PostgreSQL: exit 4, and the job it created is gone again."""
    trail = tmp_path / "trail.jsonl"
    _ok(run("export", flow_job, "-o", str(trail)))
    lines = trail.read_text().splitlines()
    target = next(i for i, line in enumerate(lines) if '"limit"' in line and '"value":0' in line)
    lines[target] = lines[target].replace('"value":0', '"value":1')
    trail.write_text("\n".join(lines) + "\n")
    dest = pg.location("refused")
    res = run("import", str(trail), dest)
    assert res.exit_code == 4 and "does not match the export" in res.stderr
    name = dest.rsplit("#", 1)[1]
    assert pg.sql("SELECT count(*) FROM eventlog_logs WHERE name = %s", name)[0][0] == 0
    assert run("info", dest).exit_code == 3


def test_a_failed_copy_into_postgresql_leaves_no_job(flow_job: str, pg: PgJobs,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy into a new PostgreSQL job that fails half-way deletes the job it created."""
    import replay_tools.copying as copying

    def failing(job: Any, dst: Any, *args: Any) -> Any:
        dst.append_batch([(r.kind, r.data) for r in job.log.read(1, 10)])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(copying, "_append_all", failing)
    dest = pg.location("failed")
    with pytest.raises(OSError):
        copy_job(flow_job, dest)
    assert pg.sql("SELECT count(*) FROM eventlog_logs WHERE name = %s", dest.rsplit("#", 1)[1])[0][0] == 0
