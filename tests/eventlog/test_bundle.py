"""Bundles: one portable file holding a whole log and a snapshot."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from eventlog import BundleError, EventLogError, InMemoryEventLog, open_log, read_bundle, write_bundle


def _mem(n: int = 50, key: bytes | None = None) -> InMemoryEventLog:
    log = InMemoryEventLog(key=key)
    for i in range(n):
        if i % 9 == 4:
            log.append_batch([("b", {"i": i}), ("c", {"x": [i, "s"]})], ts=500 + i)
        else:
            log.append("e", {"i": i, "name": f"r{i}"}, ts=500 + i)
    return log


def test_round_trip_with_snapshot(tmp_path: Path) -> None:
    """Every record, the head hash and the snapshot survive a bundle round trip."""
    src = _mem()
    path = tmp_path / "deep" / "dir" / "job.bundle"
    write_bundle(path, src, state={"status": "done", "n": [1, 2]}, schema_version=3)
    log, snap = read_bundle(path)
    assert list(log.read()) == list(src.read())
    assert log.head_hash == src.head_hash and log.head_ts == src.head_ts
    assert snap is not None and snap.seq == src.head_seq and snap.schema_version == 3
    assert snap.state == {"status": "done", "n": [1, 2]} and snap.link == src.head_hash
    assert log.latest_snapshot() == snap
    assert not [p for p in path.parent.iterdir() if p.name != "job.bundle"], "temp file left behind"


def test_round_trip_without_snapshot_and_from_file_log(tmp_path: Path) -> None:
    """A bundle of a file log (many events per bundle frame) matches the file log."""
    with open_log(tmp_path / "log", segment_bytes=8192, durability="none") as flog:
        for i in range(3000):
            flog.append("e", {"i": i}, ts=i)
        flog.append_batch([("x", {"k": 1}), ("y", {"k": 2})], ts=5000)
        write_bundle(tmp_path / "b", flog)
        log, snap = read_bundle(tmp_path / "b")
        assert snap is None
        assert log.head_seq == flog.head_seq and log.head_hash == flog.head_hash
        assert list(log.read(2990)) == list(flog.read(2990))


def test_empty_log(tmp_path: Path) -> None:
    """An empty log makes a valid, empty bundle."""
    write_bundle(tmp_path / "b", InMemoryEventLog(), state={})
    log, snap = read_bundle(tmp_path / "b")
    assert log.head_seq == 0 and snap is not None and snap.seq == 0 and snap.state == {}


def test_keyed_bundle(tmp_path: Path) -> None:
    """A keyed bundle needs its key; a wrong key is a chain mismatch."""
    src = _mem(key=b"k1")
    write_bundle(tmp_path / "b", src, state=1)
    log, _ = read_bundle(tmp_path / "b", key=b"k1")
    assert log.head_hash == src.head_hash
    with pytest.raises(BundleError, match="keyed"):
        read_bundle(tmp_path / "b")
    with pytest.raises(BundleError, match="chain"):
        read_bundle(tmp_path / "b", key=b"k2")
    write_bundle(tmp_path / "u", _mem())
    with pytest.raises(BundleError, match="not keyed"):
        read_bundle(tmp_path / "u", key=b"k1")


def test_missing_file(tmp_path: Path) -> None:
    """A missing bundle is FileNotFoundError."""
    with pytest.raises(FileNotFoundError):
        read_bundle(tmp_path / "nope")


@pytest.mark.parametrize("content", [b"", b"{}", b"EVBUNDLE", b"hello world, not a bundle" * 10])
def test_not_a_bundle(tmp_path: Path, content: bytes) -> None:
    """Something else entirely is a BundleError (an EventLogError and a ValueError)."""
    (tmp_path / "x").write_bytes(content)
    with pytest.raises(BundleError) as ei:
        read_bundle(tmp_path / "x")
    assert isinstance(ei.value, ValueError) and isinstance(ei.value, EventLogError)


def test_every_truncation_is_an_error(tmp_path: Path) -> None:
    """A bundle cut at any byte is refused."""
    write_bundle(tmp_path / "b", _mem(12), state={"a": 1})
    data = (tmp_path / "b").read_bytes()
    for cut in range(len(data)):
        (tmp_path / "t").write_bytes(data[:cut])
        with pytest.raises(BundleError):
            read_bundle(tmp_path / "t")
    (tmp_path / "t").write_bytes(data + b"\0" * 8)
    with pytest.raises(BundleError):
        read_bundle(tmp_path / "t")


def test_bit_flips_are_errors_or_harmless(tmp_path: Path, rng: random.Random) -> None:
    """A flipped bit is a BundleError, or (only in padding) changes nothing."""
    src = _mem(30)
    write_bundle(tmp_path / "b", src, state={"a": 1})
    data = (tmp_path / "b").read_bytes()
    want = list(src.read())
    for _ in range(300):
        pos = rng.randrange(len(data))
        b = bytearray(data)
        b[pos] ^= 1 << rng.randrange(8)
        (tmp_path / "f").write_bytes(bytes(b))
        try:
            log, snap = read_bundle(tmp_path / "f")
        except BundleError:
            continue
        assert list(log.read()) == want and log.head_hash == src.head_hash, f"silent change at byte {pos}"
        assert snap is not None and snap.state == {"a": 1}


def test_failed_write_keeps_the_old_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bundle write that fails leaves the previous file as it was, and no temp file."""
    from eventlog import LogWriteError, _fs

    write_bundle(tmp_path / "b", _mem(5))
    before = (tmp_path / "b").read_bytes()

    def boom(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(_fs, "fsync", boom)
    with pytest.raises(LogWriteError) as ei:
        write_bundle(tmp_path / "b", _mem(9))
    assert ei.value.errno == 5
    assert (tmp_path / "b").read_bytes() == before
    assert os.listdir(tmp_path) == ["b"]


def test_large_events_split_into_several_frames(tmp_path: Path) -> None:
    """Events too big to share a frame still round-trip (frames are bounded in bytes)."""
    src = InMemoryEventLog()
    for i in range(12):
        src.append("big", {"i": i, "blob": bytes([i]) * 300_000}, ts=i)
    write_bundle(tmp_path / "b", src)
    log, _ = read_bundle(tmp_path / "b")
    assert list(log.read()) == list(src.read()) and log.head_hash == src.head_hash


def _alter_an_event(path: Path, old: bytes, new: bytes) -> None:
    """Replace ``old`` by ``new`` (same length) inside the first frame, fixing both CRCs."""
    import struct
    import zlib

    data = bytearray(path.read_bytes())
    frame = 32  # the bundle header: 28 bytes + crc
    length = struct.unpack_from("<I", data, frame)[0]
    body = frame + 40
    at = data.index(old, body, body + length)
    data[at : at + len(old)] = new
    struct.pack_into("<I", data, frame + 32, zlib.crc32(bytes(data[body : body + length])))
    struct.pack_into("<I", data, frame + 36, zlib.crc32(bytes(data[frame : frame + 36])))
    path.write_bytes(bytes(data))


def test_altered_history_with_good_checksums_is_caught_by_the_chain_check(tmp_path: Path) -> None:
    """read_bundle trusts the stored links (fast); check_chain=True (what verify uses) recomputes them."""
    write_bundle(tmp_path / "b", _mem())
    _alter_an_event(tmp_path / "b", b"r7", b"r8")
    log, _ = read_bundle(tmp_path / "b")
    assert log.get(9).data["name"] == "r8"  # opened: every checksum is right (r7 was at seq 9)
    with pytest.raises(BundleError, match="hash chain mismatch"):
        read_bundle(tmp_path / "b", check_chain=True)
