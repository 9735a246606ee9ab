"""verify as an audit: tampering with valid checksums, keyed chains, determinism."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

from eventlog.encoding import encode_event
from replay_tools import open_job, verify_job
from replay_tools.errors import EXIT_CHECK_FAILED, EXIT_USAGE
from replay_tools.source import Job
from routilux.job_state import JobState

SEG_HEADER = 56
FRAME_HEADER = 48


def rewrite_event(job_dir: str, old: bytes, new: bytes) -> int:
    """Replace one single-event frame's payload and fix both CRCs (see eventlog/FORMAT.md).

    This is what someone who can edit the files but does not hold the key would do:
    every checksum is valid afterwards; only the hash chain can tell. Returns the seq.
    """
    assert len(old) == len(new)
    seg = os.path.join(job_dir, sorted(n for n in os.listdir(job_dir) if n.endswith(".seg"))[0])
    data = bytearray(Path(seg).read_bytes())
    off = SEG_HEADER
    while off + FRAME_HEADER <= len(data):
        length, count, seq = struct.unpack_from("<IIQ", data, off)
        body = off + FRAME_HEADER
        if count == 1 and bytes(data[body:body + length]) == old:
            data[body:body + length] = new
            struct.pack_into("<I", data, off + 40, zlib.crc32(new))
            struct.pack_into("<I", data, off + 44, zlib.crc32(bytes(data[off:off + 44])))
            Path(seg).write_bytes(bytes(data))
            return seq
        off = body + length + (-length % 8)
    raise AssertionError("event not found as a single-event frame")


def test_tampered_event_with_valid_checksums_is_caught_by_the_chain(run: Any, flow_job: str) -> None:
    """Changing a value and fixing the CRCs: reads still work, verify names the version."""
    old = encode_event("shared_data_set", {"key": "limit", "value": 0})
    new = encode_event("shared_data_set", {"key": "limit", "value": 1})
    seq = rewrite_event(flow_job, old, new)
    state = run("state", flow_job, "--at", str(seq), "--json")
    assert state.exit_code == 0
    assert json.loads(state.stdout)["state"]["shared_data"]["limit"] == 1
    result = run("verify", flow_job, "--json")
    assert result.exit_code == EXIT_CHECK_FAILED
    data = json.loads(result.stdout)
    first = data["problems"][0]
    assert first["kind"] == "chain" and first["seq"] == seq
    text = run("verify", flow_job)
    assert f"version {seq}" in text.stderr or f"seq {seq}" in text.stderr


def test_keyed_job_needs_its_key(run: Any, tmp_path: Path) -> None:
    """A keyed job verifies with its key; without it verify fails; a wrong key is exit 2."""
    key_file = tmp_path / "key"
    key_file.write_bytes(b"top-secret-key\n")
    path = str(tmp_path / "keyed")
    job = JobState.open(path, flow_id="k", key=b"top-secret-key")
    job.update_shared_data("x", 1)
    job.close()
    ok = run("verify", path, "--key-file", str(key_file), "--json")
    assert ok.exit_code == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    no_key = run("verify", path, "--json")
    assert no_key.exit_code == EXIT_CHECK_FAILED  # never "ok" without checking the chain
    data = json.loads(no_key.stdout)
    assert data["ok"] is False and data["problems"][0]["kind"] == "chain_unchecked"
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"not-the-key")
    bad = run("verify", path, "--key-file", str(wrong))
    assert bad.exit_code == EXIT_USAGE
    assert "wrong hash-chain key" in bad.stderr and bad.stderr.count("\n") == 1


def test_snapshots_are_checked_against_the_replay(snap_job: str) -> None:
    """Every stored snapshot is compared with the fold at its seq; both replays agree."""
    with open_job(snap_job) as job:
        result = verify_job(job, full_determinism=True)
        assert result.ok, result.problems
        assert result.snapshots_checked == len(job.log.snapshots()) >= 2
        assert result.checks == {"storage": True, "snapshots": True, "determinism": True, "head": None, "audit": True}
        quick = verify_job(job, parallel=True)
        assert quick.ok and quick.head_hash == result.head_hash == job.log.head_hash.hex()


def test_kind_counts_use_a_snapshot_counter_when_present() -> None:
    """info's counts come from a snapshot's kind_counts plus the tail, and equal a full count."""
    from eventlog import InMemoryEventLog
    from replay_tools.summary import count_kinds

    log = InMemoryEventLog()
    log.append("job_created", {"job_id": "j", "flow_id": "f"})
    for i in range(5):
        log.append("shared_data_set", {"key": "k", "value": i})
    # A counter that adds up to its seq is trusted (only the tail after it is read):
    # "marker" proves the counter was used rather than a full scan.
    log.save_snapshot({"kind_counts": {"job_created": 1, "marker": 5}}, schema_version=1)
    log.append("status_set", {"status": "running"})
    job = Job("<memory>", "memory", log, None)
    assert count_kinds(job) == {"marker": 5, "job_created": 1, "status_set": 1}
    log.save_snapshot({"kind_counts": {"job_created": 1, "shared_data_set": 99}}, schema_version=1, seq=6)
    # counters that do not add up to the snapshot's seq are ignored: a full count
    assert count_kinds(job) == {"shared_data_set": 5, "job_created": 1, "status_set": 1}
