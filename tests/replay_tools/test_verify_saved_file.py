"""``verify`` of a saved job file recomputes the chain (opening one trusts its stored links)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from replay_tools.source import open_job
from replay_tools.verify import verify_job
from routilux import JobState


def _save(path: Path) -> None:
    js = JobState("f")
    for i in range(20):
        js.record_execution("r", "e", {"name": f"item-{i:02d}"})
    js.save(path)


def test_altered_event_in_a_saved_file_is_reported(tmp_path: Path) -> None:
    """An event changed with every checksum fixed opens, but verify names the broken chain."""
    path = tmp_path / "job.rjob"
    _save(path)
    with open_job(str(path)) as job:
        assert verify_job(job).ok
    data = bytearray(path.read_bytes())
    frame, body = 32, 72  # the bundle header, then the first frame's 40-byte header
    length = struct.unpack_from("<I", data, frame)[0]
    at = data.index(b"item-07", body, body + length)
    data[at : at + 7] = b"item-70"
    struct.pack_into("<I", data, frame + 32, zlib.crc32(bytes(data[body : body + length])))
    struct.pack_into("<I", data, frame + 36, zlib.crc32(bytes(data[frame : frame + 36])))
    path.write_bytes(bytes(data))
    with open_job(str(path)) as job:
        report = verify_job(job)
    assert not report.ok
    assert any("hash chain mismatch" in p.message for p in report.problems), str(report)
