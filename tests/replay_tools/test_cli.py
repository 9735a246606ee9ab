"""Every routilux-replay command through the CLI entry point, on real job logs."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import eventlog
from replay_tools.cli import cli
from replay_tools.errors import (
    EXIT_CHECK_FAILED,
    EXIT_DAMAGED,
    EXIT_NOT_A_JOB,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
)
from routilux.job_state import JobState
from routilux.projection import ts_to_datetime


def records(path: str) -> list[Any]:
    """Every record of a durable job directory, read straight from eventlog."""
    log = eventlog.open_log(path, readonly=True, create=False)
    try:
        return list(log.read())
    finally:
        log.close()


def head_hash(path: str) -> str:
    log = eventlog.open_log(path, readonly=True, create=False)
    try:
        return log.head_hash.hex()
    finally:
        log.close()


def about(rec: Any) -> Any:
    """The routine a record is about: its routine_id, or the routine its task targets."""
    task = rec.data.get("task") or {}
    return rec.data.get("routine_id") or task.get("routine_id") or task.get("slot_routine_id")


def one_line_error(result: Any) -> str:
    """The error output must be exactly one line on stderr, and nothing on stdout."""
    err = result.stderr.strip()
    assert err, "expected an error message on stderr"
    assert "\n" not in err, f"error is not one line: {err!r}"
    assert "Traceback" not in err
    return err


# -- help --------------------------------------------------------------------------------------
def test_every_command_has_help_with_an_example(run: Any) -> None:
    """`--help` of every command shows an Example section with a routilux-replay command."""
    names = sorted(cli.commands)
    assert {"demo", "jobs", "info", "events", "state", "diff", "bisect", "blame", "verify", "export",
            "import", "tail"} <= set(names)
    for name in names:
        result = run(name, "--help")
        assert result.exit_code == 0, name
        text = result.stdout
        assert "Example:" in text, f"{name} --help has no example"
        example = text.split("Example:", 1)[1]
        assert f"routilux-replay {name}" in example, f"{name} --help example does not run {name}"


# -- info / events / state --------------------------------------------------------------------
def test_info_reports_identity_status_counts_and_head(run: Any, flow_job: str) -> None:
    """info --json gives ids, status, ranges, counts by kind and the head hash."""
    recs = records(flow_job)
    result = run("info", flow_job, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["flow_id"] == "order-batch"
    assert data["job_id"] == recs[0].data["job_id"]
    assert data["status"] == "completed"
    assert (data["first_version"], data["head_version"]) == (1, len(recs))
    assert (data["first_ts"], data["last_ts"]) == (recs[0].ts, recs[-1].ts)
    expected: dict[str, int] = {}
    for rec in recs:
        expected[rec.kind] = expected.get(rec.kind, 0) + 1
    assert data["counts"] == expected
    assert data["head_hash"] == head_hash(flow_job)
    text = run("info", flow_job)
    assert text.exit_code == 0
    assert "order-batch" in text.stdout and data["head_hash"] in text.stdout
    assert "\x1b[" not in text.stdout + text.stderr  # no colour or progress bar off a terminal


def test_events_filters_by_kind_routine_and_range(run: Any, flow_job: str) -> None:
    """events filters by kind, routine and version range; --json is JSON Lines."""
    recs = records(flow_job)
    result = run("events", flow_job, "--kind", "shared_data_set", "--json")
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["seq"] for e in lines] == [r.seq for r in recs if r.kind == "shared_data_set"]
    assert set(lines[0]) == {"seq", "ts", "time", "kind", "routine", "data"}
    by_routine = run("events", flow_job, "--routine", "validate", "--json")
    rows = [json.loads(line) for line in by_routine.stdout.splitlines()]
    assert {r["routine"] for r in rows} == {"validate"}
    # Every event that names validate, and the limit changes validate made before its
    # task_started was recorded (the same routine blame gives them).
    assert {r.seq for r in recs if about(r) == "validate"} <= {r["seq"] for r in rows}
    blamed = json.loads(run("blame", flow_job, "shared_data.limit", "--json").stdout)["changes"]
    assert {c["version"] for c in blamed if c["routine_id"] == "validate"} <= {r["seq"] for r in rows}
    ranged = run("events", flow_job, "--from", "3", "--to", "5", "--json")
    assert [json.loads(line)["seq"] for line in ranged.stdout.splitlines()] == [3, 4, 5]
    table = run("events", flow_job, "--kind", "paused")
    assert table.exit_code == 0 and "operator check" in table.stdout


def test_events_time_range(run: Any, flow_job: str) -> None:
    """--since/--until select events by the timestamps users see."""
    recs = records(flow_job)
    mid = recs[len(recs) // 2]
    since = ts_to_datetime(mid.ts).isoformat()
    result = run("events", flow_job, "--since", since, "--json")
    seqs = [json.loads(line)["seq"] for line in result.stdout.splitlines()]
    assert seqs == [r.seq for r in recs if ts_to_datetime(r.ts) >= ts_to_datetime(mid.ts)]
    until = run("events", flow_job, "--until", since, "--json")
    seqs = [json.loads(line)["seq"] for line in until.stdout.splitlines()]
    assert seqs == [r.seq for r in recs if ts_to_datetime(r.ts) <= ts_to_datetime(mid.ts)]


@pytest.mark.parametrize("which", ["directory", "file"])
def test_state_at_each_version_equals_jobstate_at(run: Any, flow_job: str, saved_job: str, which: str) -> None:
    """state --at V --full --json equals JobState.at(V).serialize() for every version."""
    path = flow_job if which == "directory" else saved_job
    job = JobState.open(flow_job, readonly=True)
    try:
        for version in range(1, job.version + 1):
            result = run("state", path, "--at", str(version), "--json", "--full")
            assert result.exit_code == 0, result.stderr
            data = json.loads(result.stdout)
            assert data["version"] == version
            assert data["state"] == job.at(version=version).serialize()
    finally:
        job.close()


def test_state_by_time_and_text(run: Any, flow_job: str) -> None:
    """--time T picks the last version whose timestamp is <= T; text output names the status."""
    recs = records(flow_job)
    paused = next(r for r in recs if r.kind == "paused")
    when = ts_to_datetime(paused.ts).isoformat()
    result = run("state", flow_job, "--time", when, "--json")
    data = json.loads(result.stdout)
    expected = max(r.seq for r in recs if ts_to_datetime(r.ts) <= ts_to_datetime(paused.ts))
    assert data["version"] == expected
    assert data["state"]["status"] == "paused"
    assert len(data["state"]["execution_history"]) == 2  # every list is included
    light = json.loads(run("state", flow_job, "--time", when, "--json", "--no-history").stdout)
    assert "execution_history" not in light["state"] and light["state"]["status"] == "paused"
    exported = json.loads(run("events", flow_job, "--kind", "paused", "--json").stdout.splitlines()[0])
    by_utc = run("state", flow_job, "--time", exported["time"], "--json")  # ISO, nanoseconds, Z
    assert json.loads(by_utc.stdout)["version"] == expected
    text = run("state", flow_job, "--at", str(paused.seq))
    assert text.exit_code == 0
    assert "paused" in text.stdout and "limit" in text.stdout


# -- diff / bisect / blame ---------------------------------------------------------------------
def test_diff_groups_changes(run: Any, flow_job: str) -> None:
    """diff A B lists status, shared data, history and outputs changes, grouped."""
    recs = records(flow_job)
    paused = next(r for r in recs if r.kind == "paused").seq
    result = run("diff", flow_job, str(paused), "head", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["a"], data["b"]) == (paused, len(recs))
    groups = data["groups"]
    assert {"path": "status", "change": "changed", "old": "paused", "new": "completed"} in groups["status"]
    assert {"path": "shared_data.done", "change": "added", "old": None, "new": True} in groups["shared_data"]
    assert [d["new"]["output_type"] for d in groups["output_log"]] == ["invoice", "summary"]
    assert all(d["change"] == "added" for d in groups["execution_history"])
    text = run("diff", flow_job, str(paused), "head")
    assert "Shared data" in text.stdout and "Outputs" in text.stdout
    same = run("diff", flow_job, "3", "3")
    assert "no differences" in same.stdout


def test_bisect_finds_first_version(run: Any, flow_job: str) -> None:
    """bisect returns the event that first made the condition true; exit 1 when it never is."""
    recs = records(flow_job)
    first_zero = next(r.seq for r in recs if r.kind == "shared_data_set" and r.data == {"key": "limit", "value": 0})
    result = run("bisect", flow_job, "--where", "shared_data.limit == 0", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["version"] == first_zero
    assert data["kind"] == "shared_data_set"
    assert data["probes"] <= 2 + len(recs).bit_length()
    exhaustive = run("bisect", flow_job, "--where", "status == paused", "--exhaustive", "--json")
    assert json.loads(exhaustive.stdout)["version"] == next(r.seq for r in recs if r.kind == "paused")
    never = run("bisect", flow_job, "--where", "shared_data.limit < 0")
    assert never.exit_code == EXIT_CHECK_FAILED
    assert "holds at no version" in never.stdout


def test_blame_lists_every_change_with_routine(run: Any, flow_job: str) -> None:
    """blame FIELD lists each event that changed it, with the routine that did it."""
    recs = records(flow_job)
    expected = [r.seq for r in recs if r.kind == "shared_data_set" and r.data["key"] == "limit"]
    result = run("blame", flow_job, "shared_data.limit", "--json")
    assert result.exit_code == 0
    changes = json.loads(result.stdout)["changes"]
    assert [c["version"] for c in changes] == expected
    assert changes[0]["old_exists"] is False and changes[0]["new"] == 3
    assert [c["routine_id"] for c in changes] == ["fetch", "validate", "validate", "validate"]
    assert [c["new"] for c in changes] == [3, 2, 1, 0]
    status = run("blame", flow_job, "routine_states.fetch.status")
    assert status.exit_code == 0 and "completed" in status.stdout
    nothing = run("blame", flow_job, "shared_data.never_set")
    assert nothing.exit_code == EXIT_USAGE
    assert "no version of this job has shared_data.never_set" in one_line_error(nothing)
    later = run("blame", flow_job, "shared_data.limit", "--from", "30")
    assert later.exit_code == 0 and "no event changed shared_data.limit in versions 30.." in later.stdout


# -- verify ----------------------------------------------------------------------------------
def test_verify_passes_on_intact_logs(run: Any, flow_job: str, saved_job: str, snap_job: str) -> None:
    """verify exits 0 on intact logs and prints the head hash; --expect-head is checked."""
    for path, snapshots in ((flow_job, None), (saved_job, True), (snap_job, True)):
        result = run("verify", path, "--json")
        assert result.exit_code == 0, result.stdout + result.stderr
        data = json.loads(result.stdout)
        assert data["ok"] is True and data["problems"] == []
        # "snapshots": None when the job has none to check (the flow job takes none).
        assert data["checks"] == {"storage": True, "snapshots": snapshots, "determinism": True, "head": None,
                                  "audit": True}
    snap = json.loads(run("verify", snap_job, "--json").stdout)
    assert snap["snapshots_checked"] >= 2
    expected = head_hash(flow_job)
    text = run("verify", flow_job, "--expect-head", expected)
    assert text.exit_code == 0 and expected in text.stdout
    wrong = run("verify", flow_job, "--expect-head", "0" * 32)
    assert wrong.exit_code == EXIT_CHECK_FAILED
    assert "head hash is" in wrong.stderr


def _flip_byte(path: str, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x40]))


def _segment(job_dir: str) -> str:
    return os.path.join(job_dir, sorted(n for n in os.listdir(job_dir) if n.endswith(".seg"))[0])


def test_damaged_segment_is_reported_with_file_and_offset(run: Any, flow_job: str) -> None:
    """A flipped byte mid-log: verify exits 1 naming the segment and offset; reads exit 5."""
    seg = _segment(flow_job)
    size = os.path.getsize(seg)
    _flip_byte(seg, size // 2)
    result = run("verify", flow_job, "--json")
    assert result.exit_code in (EXIT_CHECK_FAILED, EXIT_DAMAGED)
    data = json.loads(result.stdout)
    assert data["ok"] is False
    first = data["problems"][0]
    assert first["file"] == os.path.basename(seg)
    assert first["offset"] is not None and first["offset"] <= size // 2
    text = run("verify", flow_job)
    assert text.exit_code in (EXIT_CHECK_FAILED, EXIT_DAMAGED)
    assert os.path.basename(seg) in text.stderr
    for args in (["state", flow_job, "--json", "--full"], ["info", flow_job], ["export", flow_job]):
        broken = run(*args)
        assert broken.exit_code == EXIT_DAMAGED, args
        err = one_line_error(broken)
        assert os.path.basename(seg) in err and "byte" in err


def test_tampered_snapshot_fails_verify(run: Any, snap_job: str) -> None:
    """A snapshot whose state disagrees with the events (valid checksums) fails verify."""
    log = eventlog.open_log(snap_job)
    try:
        snap = log.latest_snapshot()
        assert snap is not None
        bad = dict(snap.state)
        bad["status"] = "cancelled" if bad["status"] != "cancelled" else "running"
        log.save_snapshot(bad, schema_version=snap.schema_version, seq=snap.seq)
    finally:
        log.close()
    result = run("verify", snap_job, "--json")
    assert result.exit_code == EXIT_CHECK_FAILED
    data = json.loads(result.stdout)
    problem = next(p for p in data["problems"] if p["kind"] == "snapshot_state")
    assert problem["seq"] == snap.seq
    assert data["checks"]["snapshots"] is False


def test_truncated_saved_file_is_damaged(run: Any, saved_job: str) -> None:
    """A saved job file cut short is a damaged log (exit 5), for every command."""
    size = os.path.getsize(saved_job)
    with open(saved_job, "r+b") as fh:
        fh.truncate(size - 20)
    for args in (["info", saved_job], ["verify", saved_job], ["state", saved_job]):
        result = run(*args)
        assert result.exit_code == EXIT_DAMAGED, args
        one_line_error(result)


# -- errors -------------------------------------------------------------------------------------
def test_usage_errors_are_one_line_with_exit_codes(run: Any, flow_job: str, tmp_path: Path) -> None:
    """Missing file, not a job log, bad version/time/condition/field: one line, right code."""
    missing = run("info", str(tmp_path / "nope"))
    assert missing.exit_code == EXIT_NOT_FOUND
    assert "nope" in one_line_error(missing)
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello\n")
    not_job = run("state", str(text_file))
    assert not_job.exit_code == EXIT_NOT_A_JOB
    assert "not a job log" in one_line_error(not_job)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert run("info", str(empty_dir)).exit_code == EXIT_NOT_A_JOB
    head = len(records(flow_job))
    past = run("state", flow_job, "--at", str(head + 1))
    assert past.exit_code == EXIT_USAGE
    assert f"1..{head}" in one_line_error(past)
    bad_time = run("state", flow_job, "--time", "yesterday")
    assert bad_time.exit_code == EXIT_USAGE
    assert "ISO time" in one_line_error(bad_time)
    early = run("diff", flow_job, "2000-01-01T00:00:00", "head")
    assert early.exit_code == EXIT_USAGE
    assert "before the job's first event" in one_line_error(early)
    bad_cond = run("bisect", flow_job, "--where", "shared_data.limit === 0")
    assert bad_cond.exit_code == EXIT_USAGE
    err = one_line_error(bad_cond)
    assert "column 21" in err and "'='" in err
    bad_field = run("blame", flow_job, "shared_data..limit")
    assert bad_field.exit_code == EXIT_USAGE
    assert "empty segment" in one_line_error(bad_field)
    for args in (["state"], ["state", flow_job, "--bogus"], ["nosuch"], ["bisect", flow_job]):
        usage = run(*args)
        assert usage.exit_code == EXIT_USAGE, args
        assert "--help" in one_line_error(usage)


# -- export / import ----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["jsonl", "json"])
@pytest.mark.parametrize("as_file", [False, True])
def test_export_import_round_trip(run: Any, flow_job: str, tmp_path: Path, fmt: str, as_file: bool) -> None:
    """export then import rebuilds a job with the same head hash that passes verify."""
    out = tmp_path / f"trail.{fmt}"
    result = run("export", flow_job, "--format", fmt, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    if fmt == "jsonl":
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(lines) == len(records(flow_job))
        assert lines[-1]["link"] == head_hash(flow_job)
        assert lines[0]["time"].endswith("Z") and lines[0]["kind"] == "job_created"
    dest = str(tmp_path / ("restored.rjob" if as_file else "restored"))
    args = ["import", str(out), dest, "--json"] + (["--file"] if as_file else [])
    imported = run(*args)
    assert imported.exit_code == 0, imported.stderr
    assert json.loads(imported.stdout)["head_hash"] == head_hash(flow_job)
    check = run("verify", dest, "--expect-head", head_hash(flow_job))
    assert check.exit_code == 0, check.stderr
    original = json.loads(run("state", flow_job, "--json", "--full").stdout)
    restored = json.loads(run("state", dest, "--json", "--full").stdout)
    assert original == restored


def test_import_refuses_a_tampered_export(run: Any, flow_job: str, tmp_path: Path) -> None:
    """Changing one exported value makes import fail at that line (its link no longer matches)."""
    out = tmp_path / "trail.jsonl"
    run("export", flow_job, "-o", str(out))
    lines = out.read_text().splitlines()
    target = next(i for i, line in enumerate(lines) if '"limit"' in line and '"value":0' in line)
    lines[target] = lines[target].replace('"value":0', '"value":1')
    out.write_text("\n".join(lines) + "\n")
    result = run("import", str(out), str(tmp_path / "restored"))
    assert result.exit_code == EXIT_NOT_A_JOB
    assert f"line {target + 1}" in one_line_error(result)
    not_export = tmp_path / "x.json"
    not_export.write_text('{"hello": 1}\n')
    assert run("import", str(not_export), str(tmp_path / "r2")).exit_code == EXIT_NOT_A_JOB
    assert run("import", str(tmp_path / "missing.jsonl"), str(tmp_path / "r3")).exit_code == EXIT_NOT_FOUND


# -- tail ----------------------------------------------------------------------------------------
def test_tail_prints_the_latest_events(run: Any, flow_job: str) -> None:
    """tail -n 3 prints the three newest events."""
    recs = records(flow_job)
    result = run("tail", flow_job, "-n", "3", "--json")
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == [r.seq for r in recs[-3:]]


def test_tail_follow_sees_events_appended_by_a_running_job(run: Any, tmp_path: Path) -> None:
    """tail --follow prints events appended while it runs, in order, none skipped."""
    path = str(tmp_path / "live")
    job = JobState.open(path, flow_id="live")
    job.status = "running"
    job.sync()
    stop = threading.Event()

    def writer() -> None:
        time.sleep(0.2)
        for i in range(20):
            job.update_shared_data("n", i)
        job.status = "completed"
        job.sync()
        stop.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = run("tail", path, "-n", "1", "--follow", "--timeout", "1.5", "--json")
    finally:
        thread.join()
        job.close()
    seqs = [json.loads(line)["seq"] for line in result.stdout.splitlines()]
    assert result.exit_code == 0
    assert stop.is_set()
    assert seqs == list(range(2, 2 + 22))


# -- demo and jobs -------------------------------------------------------------------------------
def test_demo_runs_the_flow_and_shows_the_tools(run: Any, tmp_path: Path) -> None:
    """demo DIR runs the example flow and shows info, bisect, blame, state, diff and verify."""
    target = str(tmp_path / "demo-job")
    result = run("demo", target)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for command in ("info", "events", "bisect", "blame", "state", "diff", "verify"):
        assert f"$ routilux-replay {command} " in out
    assert "result:" in out and "OK" in out
    assert "first version where 'shared_data.limit == 0' holds" in out
    recs = records(target)
    kinds = [r.kind for r in recs]
    assert "paused" in kinds and "resumed" in kinds and "output_sent" in kinds
    assert recs[-1].data == {"status": "completed"}
    again = run("demo", target)
    assert again.exit_code == EXIT_USAGE  # never overwrites an existing job


def test_jobs_lists_a_job_store(run: Any, tmp_path: Path) -> None:
    """jobs DIR prints one row per job of a JobStore."""
    from routilux.job_store import JobStore

    store = JobStore(str(tmp_path / "store"))
    ids = []
    for flow in ("a", "b"):
        job = store.create(flow_id=flow)
        job.status = "running"
        ids.append(job.job_id)
        job.close()
    result = run("jobs", str(tmp_path / "store"), "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert sorted(r["job_id"] for r in rows) == sorted(ids)
    assert {r["flow_id"] for r in rows} == {"a", "b"}
    assert all(r["status"] == "running" and r["version"] >= 2 and r["size"] > 0 for r in rows)
    text = run("jobs", str(tmp_path / "store"))
    assert all(i in text.stdout for i in ids)
    assert run("jobs", str(tmp_path / "nowhere")).exit_code == EXIT_NOT_FOUND


def test_module_entry_point(tmp_path: Path) -> None:
    """`python -m replay_tools` is the same command (checked in a subprocess)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "replay_tools", "info", str(tmp_path / "missing")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_NOT_FOUND
    assert result.stderr.count("\n") == 1 and "no such job" in result.stderr


def test_damaged_snapshot_is_skipped_by_reads_and_reported_by_verify(run: Any, snap_job: str) -> None:
    """A snapshot with a bad checksum: state falls back (a one-line warning); verify names it."""
    expected = JobState.open(snap_job, readonly=True)
    try:
        want = expected.serialize()
    finally:
        expected.close()
    snap_dir = os.path.join(snap_job, "snapshots")
    newest = sorted(n for n in os.listdir(snap_dir) if n.endswith(".snap"))[-1]
    _flip_byte(os.path.join(snap_dir, newest), os.path.getsize(os.path.join(snap_dir, newest)) - 3)
    state = run("state", snap_job, "--json", "--full")
    assert state.exit_code == 0
    assert json.loads(state.stdout)["state"] == want
    warning = state.stderr.strip()
    assert warning.startswith("routilux-replay: warning:") and newest in warning and "\n" not in warning
    result = run("verify", snap_job, "--json")
    assert result.exit_code == EXIT_CHECK_FAILED
    problems = json.loads(result.stdout)["problems"]
    assert any(p["file"] == newest for p in problems)


def test_import_takes_snapshots_like_jobstate(run: Any, snap_job: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """An imported durable job gets snapshots, and verify checks them against its events."""
    import replay_tools.exporting as exporting

    monkeypatch.setattr(exporting, "_snapshot_every", lambda: 5)
    trail = tmp_path / "trail.jsonl"
    assert run("export", snap_job, "-o", str(trail)).exit_code == 0
    dest = str(tmp_path / "imported")
    assert run("import", str(trail), dest).exit_code == 0
    report = json.loads(run("verify", dest, "--json", "--expect-head", head_hash(snap_job)).stdout)
    assert report["ok"] is True and report["snapshots_checked"] >= 2
    for version in (3, 11, 27):
        a = json.loads(run("state", snap_job, "--at", str(version), "--json", "--full").stdout)
        b = json.loads(run("state", dest, "--at", str(version), "--json", "--full").stdout)
        assert a == b
