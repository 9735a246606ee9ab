"""`routilux-replay copy` between file storages: same head hash, snapshots, resume, refusals.

The PostgreSQL side of the copy tool is in test_pg_replay.py (needs a server); these
tests need none.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from replay_tools import open_job
from replay_tools.copying import copy_job
from replay_tools.errors import DestinationError
from routilux.job_state import JobState


def _head(run: Any, path: str, *extra: str) -> str:
    res = run("info", path, "--json", *extra)
    assert res.exit_code == 0, res.stderr
    return str(json.loads(res.stdout)["head_hash"])


def _events(run: Any, path: str, *extra: str) -> list[Any]:
    res = run("events", path, "--json", *extra)
    assert res.exit_code == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


def test_copy_directory_to_directory_keeps_events_hash_and_snapshots(run: Any, snap_job: str,
                                                                     tmp_path: Path) -> None:
    dest = str(tmp_path / "copy")
    res = run("copy", snap_job, dest, "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    head = _head(run, snap_job)
    assert out["head_hash"] == head == _head(run, dest)
    assert out["copied"] == out["events"] > 0 and out["resumed_from"] == 0
    assert _events(run, dest) == _events(run, snap_job)
    with open_job(snap_job) as src, open_job(dest) as dst:
        src_snaps = {s.seq: s.state for s in src.log.snapshots()}
        dst_snaps = {s.seq: s.state for s in dst.log.snapshots()}
    assert dst_snaps, "snapshots are copied"
    assert out["snapshots"] >= len(dst_snaps)
    for seq, state in dst_snaps.items():
        assert state == src_snaps.get(seq, state)  # every copied snapshot is the source's
    verify = run("verify", dest, "--expect-head", head)
    assert verify.exit_code == 0, verify.stderr


def test_copy_round_trip_through_a_saved_job_file(run: Any, flow_job: str, tmp_path: Path) -> None:
    saved = str(tmp_path / "job.rjob")
    back = str(tmp_path / "back")
    res = run("copy", flow_job, saved, "--file")
    assert res.exit_code == 0, res.stderr
    head = _head(run, flow_job)
    assert head in res.stdout  # the head hash is printed
    assert run("copy", saved, back).exit_code == 0
    assert _head(run, saved) == _head(run, back) == head
    for path in (saved, back):
        assert run("verify", path, "--expect-head", head).exit_code == 0
    state_src = run("state", flow_job, "--json")
    assert run("state", back, "--json").stdout == state_src.stdout


def test_copy_resumes_when_the_destination_holds_a_prefix(drive_job: Any, tmp_path: Path) -> None:
    src = str(tmp_path / "grow")
    job = JobState.open(src, flow_id="grow")
    try:
        drive_job(job, rounds=3)
    finally:
        job.close()
    dest = str(tmp_path / "dest")
    first = copy_job(src, dest)
    job = JobState.open(src)
    try:
        job.update_shared_data("later", 1)
        job.record_execution("fetch", "tick", {"late": True})
    finally:
        job.close()
    second = copy_job(src, dest)
    assert second.resumed_from == first.events
    assert second.copied == second.events - first.events > 0
    with open_job(src) as s:
        assert second.head_hash == s.log.head_hash.hex()
    third = copy_job(src, dest)  # nothing left to copy: a no-op, not an error
    assert third.copied == 0 and third.head_hash == second.head_hash


def test_copy_refuses_a_destination_with_another_job_unless_forced(run: Any, flow_job: str, snap_job: str,
                                                                   tmp_path: Path) -> None:
    dest = str(tmp_path / "dest")
    assert run("copy", snap_job, dest).exit_code == 0
    before = _head(run, dest)
    res = run("copy", flow_job, dest)
    assert res.exit_code == 2
    assert "already holds" in res.stderr and "--force" in res.stderr
    assert _head(run, dest) == before  # untouched
    res = run("copy", flow_job, dest, "--force")
    assert res.exit_code == 0, res.stderr
    assert _head(run, dest) == _head(run, flow_job)
    assert not [n for n in os.listdir(tmp_path) if ".copy-" in n]  # no temp copy left behind
    saved = str(tmp_path / "x.rjob")
    assert run("copy", snap_job, saved, "--file").exit_code == 0
    assert run("copy", flow_job, saved, "--file").exit_code == 2
    assert run("copy", flow_job, saved, "--file", "--force").exit_code == 0
    assert _head(run, saved) == _head(run, flow_job)


def test_copy_refuses_itself_and_a_non_job_directory(flow_job: str, tmp_path: Path) -> None:
    with pytest.raises(DestinationError, match="source itself"):
        copy_job(flow_job, flow_job)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(DestinationError, match="not a job log"):
        copy_job(flow_job, str(other))
    assert (other / "notes.txt").read_text() == "mine"


def test_copy_of_a_keyed_job_needs_its_key(run: Any, drive_job: Any, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(b"secret-key\n")
    src = str(tmp_path / "keyed")
    job = JobState.open(src, flow_id="k", key=b"secret-key")
    try:
        drive_job(job, rounds=2)
    finally:
        job.close()
    res = run("copy", src, str(tmp_path / "nokey"))
    assert res.exit_code == 2 and "--key-file" in res.stderr
    dest = str(tmp_path / "withkey")
    res = run("copy", src, dest, "--key-file", str(key_file), "--json")
    assert res.exit_code == 0, res.stderr
    head = json.loads(res.stdout)["head_hash"]
    assert run("verify", dest, "--key-file", str(key_file), "--expect-head", head).exit_code == 0


def test_copy_help_has_an_example(run: Any) -> None:
    res = run("copy", "--help")
    assert res.exit_code == 0
    assert "Example:" in res.stdout and "routilux-replay copy" in res.stdout


def test_unreachable_postgresql_server_is_exit_6(run: Any) -> None:
    # Port 1 on the loopback interface refuses connections at once: no server needed.
    res = run("info", "postgresql://nobody@127.0.0.1:1/none#job")
    assert res.exit_code == 6
    assert "cannot read" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert run("jobs", "postgresql://nobody@127.0.0.1:1/none").exit_code == 6


def test_postgresql_url_without_a_job_id_is_not_a_job(run: Any) -> None:
    res = run("state", "postgresql://nobody@127.0.0.1:1/none")
    assert res.exit_code == 4
    assert "routilux-replay jobs" in res.stderr
