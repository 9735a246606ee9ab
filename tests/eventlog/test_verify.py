"""``eventlog.verify``: checksums, seq continuity, the hash chain, anchors and snapshots."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from pathlib import Path

import msgpack
import pytest

from eventlog import InMemoryEventLog, open_log, verify
from eventlog._frame import SEG_HEADER_SIZE, FrameHeader
from eventlog.chain import next_link
from eventlog.segment import FrameScanner


def _make(path: Path, n: int = 40, key: bytes | None = None, segment_bytes: int = 4096) -> InMemoryEventLog:
    mem = InMemoryEventLog(key=key)
    with open_log(path, key=key, segment_bytes=segment_bytes, durability="none") as log:
        for i in range(n):
            data = {"i": i, "who": "alice", "pad": "p" * 40}
            if i % 10 == 5:
                log.append_batch([("e", data), ("f", {"i": -i})], ts=1000 + i)
                mem.append_batch([("e", data), ("f", {"i": -i})], ts=1000 + i)
            else:
                log.append("e", data, ts=1000 + i)
                mem.append("e", data, ts=1000 + i)
        log.save_snapshot({"n": n}, schema_version=1)
    return mem


def _frames(seg: Path, first: int) -> list[tuple[int, object]]:
    fd = os.open(seg, os.O_RDONLY)
    try:
        return [(off, FrameHeader(len(payload), count, seq, ts, link, 0))
                for off, seq, count, ts, link, payload in FrameScanner(fd, SEG_HEADER_SIZE, os.fstat(fd).st_size, first, 0)]
    finally:
        os.close(fd)


def _snapshot_of_dir(path: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(path)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(path.rglob("*")) if p.is_file()}


def _rewrite_event(seg: Path, off: int, new_event: bytes, link: bytes | None = None) -> None:
    """Replace the single event of the frame at ``off`` (same length), recomputing both CRCs."""
    data = bytearray(seg.read_bytes())
    length = struct.unpack_from("<I", data, off)[0]
    assert len(new_event) == length
    data[off + 48 : off + 48 + length] = new_event
    if link is not None:
        data[off + 24 : off + 40] = link
    struct.pack_into("<I", data, off + 40, zlib.crc32(new_event))
    struct.pack_into("<I", data, off + 44, zlib.crc32(bytes(data[off : off + 44])))
    seg.write_bytes(bytes(data))


def test_clean_log_verifies(tmp_path: Path) -> None:
    """A log written normally verifies, with the in-memory log's head hash."""
    mem = _make(tmp_path / "log")
    rep = verify(tmp_path / "log")
    assert rep.ok, str(rep)
    assert rep.head_seq == mem.head_seq == rep.records
    assert rep.head_hash == mem.head_hash_hex
    assert rep.segments >= 2 and rep.snapshots_checked == 1
    assert rep.first_problem is None
    assert "OK" in str(rep)


def test_verify_never_modifies_files(tmp_path: Path) -> None:
    """verify reads only, even when the tail is torn."""
    _make(tmp_path / "log")
    seg = sorted((tmp_path / "log").glob("*.seg"))[-1]
    os.truncate(seg, seg.stat().st_size - 3)
    before = _snapshot_of_dir(tmp_path / "log")
    rep = verify(tmp_path / "log")
    assert not rep.ok and rep.first_problem.kind == "torn_tail"
    assert _snapshot_of_dir(tmp_path / "log") == before


def test_tampered_record_with_good_crcs_is_caught_by_the_chain(tmp_path: Path) -> None:
    """Rewriting a middle record and fixing its CRCs is found by the chain, naming seq, file and offset."""
    _make(tmp_path / "log")
    seg = sorted((tmp_path / "log").glob("*.seg"))[0]
    off, hdr = _frames(seg, 1)[3]
    old = (seg.read_bytes())[off + 48 : off + 48 + hdr.length]
    new = old.replace(b"alice", b"mally")
    assert new != old
    _rewrite_event(seg, off, new)
    with open_log(tmp_path / "log", readonly=True) as log:
        assert log.get(hdr.seq).data["who"] == "mally"  # plain reads do not recompute the chain
    rep = verify(tmp_path / "log")
    assert not rep.ok
    p = rep.first_problem
    assert p.kind == "chain" and p.seq == hdr.seq
    assert os.path.basename(p.file) == seg.name and p.offset == off
    assert seg.name in str(rep) and f"seq {hdr.seq}" in str(rep)


def test_keyed_chain_detects_rewrite_without_the_key(tmp_path: Path) -> None:
    """Someone without the key who rewrites a record and recomputes an unkeyed chain is caught."""
    key = b"secret-key"
    _make(tmp_path / "log", key=key)
    assert verify(tmp_path / "log", key=key).ok
    seg = sorted((tmp_path / "log").glob("*.seg"))[0]
    frames = _frames(seg, 1)
    off, hdr = frames[2]
    data = seg.read_bytes()
    prev_link = frames[1][1].link
    event = data[off + 48 : off + 48 + hdr.length].replace(b"alice", b"mally")
    # The attacker recomputes the link as best they can: without the key.
    forged = next_link(prev_link, hdr.seq, hdr.ts, event, b"")
    _rewrite_event(seg, off, event, link=forged)
    rep = verify(tmp_path / "log", key=key)
    assert not rep.ok and rep.first_problem.kind == "chain" and rep.first_problem.seq == hdr.seq


def test_keyed_log_without_key_is_not_reported_ok(tmp_path: Path) -> None:
    """verify of a keyed log without the key says the chain was not checked."""
    _make(tmp_path / "log", key=b"k")
    rep = verify(tmp_path / "log")
    assert not rep.ok and rep.first_problem.kind == "chain_unchecked"
    assert rep.head_seq > 0
    wrong = verify(tmp_path / "log", key=b"other")
    assert not wrong.ok and wrong.first_problem.kind == "key"


def test_verify_names_the_first_bad_frame(tmp_path: Path) -> None:
    """A flipped byte in a sealed segment is reported with its file, frame offset and seq."""
    _make(tmp_path / "log")
    seg = sorted((tmp_path / "log").glob("*.seg"))[0]
    off, hdr = _frames(seg, 1)[5]
    data = bytearray(seg.read_bytes())
    data[off + 60] ^= 1
    seg.write_bytes(bytes(data))
    p = verify(tmp_path / "log").first_problem
    assert p.kind == "frame" and p.offset == off and p.seq == hdr.seq
    assert os.path.basename(p.file) == seg.name


def test_missing_middle_segment(tmp_path: Path) -> None:
    """A deleted middle segment is a seq continuity problem."""
    _make(tmp_path / "log", n=80)
    segs = sorted((tmp_path / "log").glob("*.seg"))
    assert len(segs) >= 3
    segs[1].unlink()
    p = verify(tmp_path / "log").first_problem
    assert p.kind == "continuity" and os.path.basename(p.file) == segs[2].name


def test_bad_snapshot_is_reported(tmp_path: Path) -> None:
    """A snapshot whose link does not match the log is a problem."""
    _make(tmp_path / "log")
    snap = next((tmp_path / "log" / "snapshots").glob("*.snap"))
    data = bytearray(snap.read_bytes())
    data[30] ^= 1  # inside the link
    struct.pack_into("<I", data, 60, zlib.crc32(bytes(data[:60])))
    snap.write_bytes(bytes(data))
    rep = verify(tmp_path / "log")
    assert not rep.ok and rep.first_problem.kind == "snapshot"


def test_missing_log_dir(tmp_path: Path) -> None:
    """verify of a path that does not exist raises FileNotFoundError."""
    with pytest.raises(FileNotFoundError):
        verify(tmp_path / "nope")


def test_head_hash_is_blake2b_of_the_events(tmp_path: Path) -> None:
    """The head hash is the documented chain over msgpack [kind, data], independent of batching."""
    with open_log(tmp_path / "log") as log:
        log.append("hello", {"n": 1}, ts=1000)
        head = log.head_hash
    ev = msgpack.packb(["hello", {"n": 1}])
    want = hashlib.blake2b(bytes(16) + struct.pack("<Qq", 1, 1000) + ev, digest_size=16).digest()
    assert head == want
    assert verify(tmp_path / "log").head_hash == want.hex()
