"""Recovery on open: torn tails, bit flips, garbage tails, broken snapshots (RELIABILITY.md T3-T5, T7)."""

from __future__ import annotations

import os
import random
import shutil
import warnings
from pathlib import Path

import pytest

import eventlog
from eventlog import CorruptionError, open_log
from eventlog._frame import SEG_HEADER_SIZE
from eventlog.segment import FrameScanner, frame_end
from eventlog.snapshot import pack_snapshot, snap_name

T4_FLIPS = int(os.environ.get("EVENTLOG_T4_FLIPS", "1500"))


def _segs(path: Path) -> list[Path]:
    return sorted(path.glob("*.seg"))


def _frame_ends(seg: Path, first_seq: int) -> list[tuple[int, int, int]]:
    """``(offset, end, last_seq)`` of every frame of a segment file."""
    fd = os.open(seg, os.O_RDONLY)
    try:
        sc = FrameScanner(fd, SEG_HEADER_SIZE, os.fstat(fd).st_size, first_seq, 0)
        out = [(off, frame_end(off, len(payload)), seq + count - 1) for off, seq, count, _t, _l, payload in sc]
        assert sc.bad is None
        return out
    finally:
        os.close(fd)


def _make_log(path: Path, n: int = 30, *, segment_bytes: int = 1 << 20, batch_every: int = 0,
              key: bytes | None = None) -> list[tuple[int, int, str, dict]]:
    """Write ``n`` records (some in batches) with fixed timestamps; return them."""
    with open_log(path, segment_bytes=segment_bytes, durability="none", key=key) as log:
        i = 0
        while i < n:
            if batch_every and i % batch_every == 1 and i + 3 <= n:
                log.append_batch([("b", {"i": i + j}) for j in range(3)], ts=1000 + i)
                i += 3
            else:
                log.append("e", {"i": i, "s": "x" * (i % 7)}, ts=1000 + i)
                i += 1
        return [tuple(r) for r in log.read()]  # type: ignore[misc]


def _records(path: Path, **kw) -> list[tuple]:
    with open_log(path, **kw) as log:
        return [tuple(r) for r in log.read()]


# -- T3: truncation at every byte of the tail -----------------------------------------------
def test_truncate_every_byte_of_the_last_records(tmp_path: Path) -> None:
    """Every cut inside the last 5 frames opens to exactly the frames that end before the cut."""
    pristine = tmp_path / "pristine"
    full = _make_log(pristine, 30, batch_every=10)
    seg = _segs(pristine)[-1]
    frames = _frame_ends(seg, 1)
    start = frames[-5][0]
    size = seg.stat().st_size
    for cut in range(start, size):
        work = tmp_path / f"cut{cut}"
        shutil.copytree(pristine, work)
        os.truncate(work / seg.name, cut)
        k = max([last for _off, end, last in frames if end <= cut], default=0)
        got = _records(work)
        assert got == full[:k], f"cut at byte {cut}"
        prev_end = max(e for _o, e, _l in frames if e <= cut)
        if cut != prev_end:
            assert (work / f"{seg.name}.torn-{prev_end}").exists(), f"no backup for cut {cut}"
        # Reopening is idempotent, and the next append continues the seqs.
        with open_log(work) as log:
            assert [tuple(r) for r in log.read()] == full[:k]
            assert log.append("next", {}).seq == k + 1
        assert _records(work)[-1][0] == k + 1
        shutil.rmtree(work)


def test_torn_backup_holds_the_cut_bytes(tmp_path: Path) -> None:
    """The truncated bytes are kept in ``<seg>.torn-<offset>``."""
    _make_log(tmp_path / "log", 5)
    seg = _segs(tmp_path / "log")[-1]
    frames = _frame_ends(seg, 1)
    off, end, _ = frames[-1]
    data = seg.read_bytes()
    os.truncate(seg, end - 3)
    _records(tmp_path / "log")
    assert (tmp_path / "log" / f"{seg.name}.torn-{off}").read_bytes() == data[off : end - 3]
    assert seg.stat().st_size == off


def test_truncate_inside_the_last_segment_header(tmp_path: Path) -> None:
    """A last segment cut inside its header holds nothing; earlier segments are intact."""
    pristine = tmp_path / "pristine"
    full = _make_log(pristine, 150, segment_bytes=4096)
    segs = _segs(pristine)
    assert len(segs) >= 2
    last = segs[-1]
    base = int(last.name[:20])
    for cut in range(0, SEG_HEADER_SIZE):
        work = tmp_path / f"h{cut}"
        shutil.copytree(pristine, work)
        os.truncate(work / last.name, cut)
        assert _records(work) == full[: base - 1], f"cut at {cut}"
        with open_log(work, segment_bytes=4096) as log:
            assert log.append("next", {}).seq == base
        shutil.rmtree(work)


def test_truncate_inside_the_only_segment_header(tmp_path: Path) -> None:
    """Cutting the only segment's header gives an empty log that accepts seq 1 again."""
    _make_log(tmp_path / "log", 3)
    seg = _segs(tmp_path / "log")[0]
    os.truncate(seg, 17)
    assert _records(tmp_path / "log") == []
    with open_log(tmp_path / "log") as log:
        assert log.append("a", {}).seq == 1


def test_cut_in_a_sealed_segment_is_corruption(tmp_path: Path) -> None:
    """A non-last segment is never treated as a torn tail."""
    _make_log(tmp_path / "log", 150, segment_bytes=4096)
    segs = _segs(tmp_path / "log")
    first = segs[0]
    frames = _frame_ends(first, 1)
    cut = frames[3][0] + 10
    os.truncate(first, cut)
    before = sorted(p.name for p in (tmp_path / "log").iterdir())
    with pytest.raises(CorruptionError) as ei:
        _records(tmp_path / "log")
    assert os.path.basename(ei.value.segment) == first.name
    assert ei.value.offset is not None and ei.value.offset <= cut
    assert first.stat().st_size == cut, "a sealed segment must not be truncated"
    assert sorted(p.name for p in (tmp_path / "log").iterdir()) == before


def test_strict_refuses_a_torn_tail(tmp_path: Path) -> None:
    """strict=True reports even a certain torn tail instead of truncating it."""
    _make_log(tmp_path / "log", 5)
    seg = _segs(tmp_path / "log")[-1]
    size = seg.stat().st_size
    os.truncate(seg, size - 5)
    with pytest.raises(CorruptionError) as ei:
        open_log(tmp_path / "log", strict=True)
    assert ei.value.repairable
    assert seg.stat().st_size == size - 5


def test_readonly_treats_torn_tail_as_eof_and_changes_nothing(tmp_path: Path) -> None:
    """A reader stops at a torn tail and leaves the bytes where they are."""
    full = _make_log(tmp_path / "log", 5)
    seg = _segs(tmp_path / "log")[-1]
    os.truncate(seg, seg.stat().st_size - 5)
    size = seg.stat().st_size
    names = sorted(p.name for p in (tmp_path / "log").iterdir())
    assert _records(tmp_path / "log", readonly=True) == full[:4]
    assert seg.stat().st_size == size
    assert sorted(p.name for p in (tmp_path / "log").iterdir()) == names


# -- T4: single bit flips ----------------------------------------------------------------
def _expected_state(records: list[tuple], seq: int) -> int:
    return sum(r[3]["i"] for r in records if r[0] <= seq)


def test_single_bit_flips_are_detected_or_harmless(tmp_path: Path, rng: random.Random) -> None:
    """Every bit flip anywhere is a CorruptionError at or before it, or changes nothing.

    Files: every segment, index and snapshot; one case in eight flips two nearby bits.
    """
    pristine = tmp_path / "pristine"
    full = _make_log(pristine, 150, segment_bytes=4096, batch_every=9)
    with open_log(pristine, segment_bytes=4096) as log:
        head = log.head_hash
        root = log.merkle_root()
        log.save_snapshot(_expected_state(full, 40), schema_version=1, seq=40)
        log.save_snapshot(_expected_state(full, 150), schema_version=1)
    files = sorted(p for p in pristine.rglob("*") if p.is_file() and p.name != "LOCK")
    weights = [p.stat().st_size for p in files]
    detected = harmless = 0
    work = tmp_path / "work"
    for i in range(T4_FLIPS):
        f = rng.choices(files, weights)[0]
        rel = f.relative_to(pristine)
        size = f.stat().st_size
        pos = rng.randrange(size)
        bit = rng.randrange(8)
        shutil.copytree(pristine, work)
        target = work / rel
        data = bytearray(target.read_bytes())
        data[pos] ^= 1 << bit
        where = f"{rel} byte {pos} bit {bit}"
        if i % 8 == 7:
            # One in eight: a second flip close by (two bits in one record).
            pos2 = min(size - 1, max(0, pos + rng.randint(-40, 40)))
            bit2 = rng.randrange(8)
            if pos2 != pos or bit2 != bit:
                data[pos2] ^= 1 << bit2
                where += f" and byte {pos2} bit {bit2}"
                pos = max(pos, pos2)
        target.write_bytes(bytes(data))
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with open_log(work, segment_bytes=4096) as log:
                    got = [tuple(r) for r in log.read()]
                    got_head = log.head_hash
                    snap = log.latest_snapshot()
                    every = log.snapshots()
                    got_root = log.merkle_root()
        except CorruptionError as err:
            assert os.path.basename(err.segment) == f.name, where
            assert err.offset is not None and err.offset <= pos, where
            detected += 1
        else:
            assert got == full, f"silent change: {where}"
            assert got_head == head, f"silent change: {where}"
            assert snap is not None, where
            assert snap.state == _expected_state(full, snap.seq), where
            assert all(sn.state == _expected_state(full, sn.seq) for sn in every), where
            # The Merkle tree's store is derived data too: whatever a flip did to it, the
            # root is the log's (a damaged store is emptied and rebuilt at open).
            assert got_root == root, f"silent change of the Merkle root: {where}"
            if f.suffix == ".snap":
                assert caught, f"snapshot flip not reported: {where}"
                detected += 1
            else:
                assert f.suffix == ".idx" or rel.parts[0] == "merkle", \
                    f"flip in {where} neither detected nor in derived data"
                harmless += 1
        shutil.rmtree(work)
    assert detected > 0


def test_bit_flips_at_the_tail_of_a_crashed_log_are_never_silent(tmp_path: Path, rng: random.Random) -> None:
    """A crashed writer's segment runs on into reserved zeros: a flip in its last frames or
    in those zeros is a CorruptionError at or before it, or loses and changes nothing."""
    live = tmp_path / "live"
    log = open_log(live, durability="none")
    for i in range(40):
        # Some payloads end in a zero byte (the int 0), the shape the torn-frame rule
        # must not mistake for a cut-short copy.
        log.append("e", {"s": "x" * (i % 5), "i": i % 3})
    crashed = tmp_path / "crashed"
    shutil.copytree(live, crashed, ignore=shutil.ignore_patterns("LOCK"))
    full = [tuple(r) for r in log.read()]
    data_end = log._size
    log.close()
    seg = _segs(crashed)[-1]
    assert seg.stat().st_size > data_end
    fd = os.open(seg, os.O_RDONLY)
    try:
        sc = FrameScanner(fd, SEG_HEADER_SIZE, data_end, 1, 0)
        offsets = [frame[0] for frame in sc]
    finally:
        os.close(fd)
    lo, hi = offsets[-3], data_end + 1024
    (crashed / "00000000000000000001.idx").unlink(missing_ok=True)
    work = tmp_path / "work"
    outcomes = {"detected": 0, "unchanged": 0}
    for _ in range(300):
        pos = rng.randrange(lo, hi)
        bit = rng.randrange(8)
        shutil.copytree(crashed, work)
        target = work / seg.name
        data = bytearray(target.read_bytes())
        data[pos] ^= 1 << bit
        target.write_bytes(bytes(data))
        where = f"byte {pos} bit {bit} (frames end at {data_end})"
        try:
            got = _records(work)
        except CorruptionError as err:
            assert os.path.basename(err.segment) == seg.name, where
            assert err.offset is not None and err.offset <= pos, where
            outcomes["detected"] += 1
        else:
            assert got == full, f"silent change: {where}"
            outcomes["unchanged"] += 1
        shutil.rmtree(work)
    assert outcomes["detected"] and outcomes["unchanged"], outcomes


# -- T5: garbage and zero tails ------------------------------------------------------------
def test_zero_and_garbage_tails(tmp_path: Path, rng: random.Random) -> None:
    """Zeros are reserved space (kept until the writer closes, no backup); garbage under 48
    bytes is a torn tail (backed up); garbage of 48+ bytes is an ambiguous tail needing repair_tail."""
    pristine = tmp_path / "pristine"
    full = _make_log(pristine, 20)
    seg_name = _segs(pristine)[-1].name
    for rnd in range(60):
        work = tmp_path / f"g{rnd}"
        shutil.copytree(pristine, work)
        seg = work / seg_name
        old = seg.stat().st_size
        n = rng.randint(1, 1024)
        zeros = rnd % 2 == 0
        junk = bytes(n) if zeros else rng.randbytes(n)
        with open(seg, "ab") as f:
            f.write(junk)
        if zeros:
            assert _records(work) == full
            assert seg.stat().st_size == old  # cut when the writer closed
            assert not list(work.glob("*.torn-*")), "zeros hold nothing worth a backup"
            assert _records(work, readonly=True) == full
        elif n < 48:
            assert _records(work) == full
            assert seg.stat().st_size == old
            assert (work / f"{seg_name}.torn-{old}").read_bytes() == junk
        else:
            with pytest.raises(CorruptionError) as ei:
                open_log(work)
            assert ei.value.offset == old and ei.value.repairable
            assert "repair_tail" in str(ei.value)
            assert seg.stat().st_size == old + n
            assert _records(work, repair_tail=True) == full
            assert (work / f"{seg_name}.torn-{old}").read_bytes() == junk
            assert _records(work) == full
        shutil.rmtree(work)


# -- reserved space (the writer's zeros ahead of itself) -----------------------------------
def _crashed_copy(tmp_path: Path, n: int) -> tuple[Path, list[tuple], int]:
    """A copy of a log taken while its writer is still open: what a kill -9 leaves."""
    live = tmp_path / "live"
    log = open_log(live, durability="none")
    for i in range(n):
        log.append("e", {"i": i})
    crashed = tmp_path / "crashed"
    shutil.copytree(live, crashed, ignore=shutil.ignore_patterns("LOCK"))
    end = log._size  # where the next frame goes: the reserved zeros start here
    records = [tuple(r) for r in log.read()]
    log.close()
    return crashed, records, end


def test_reserved_zeros_after_a_crash_are_free_space(tmp_path: Path) -> None:
    """A crashed writer's reserved zeros: no backup, no error, verify ok, the next writer reuses them."""
    crashed, records, end = _crashed_copy(tmp_path, 50)
    seg = _segs(crashed)[-1]
    assert seg.stat().st_size > end and not any(seg.read_bytes()[end:]), "the copy should hold reserved zeros"
    assert eventlog.verify(crashed).ok
    assert _records(crashed, readonly=True) == records
    with open_log(crashed) as log:
        assert [tuple(r) for r in log.read()] == records
        log.append("more", {})
    assert not list(crashed.glob("*.torn-*"))
    assert seg.stat().st_size == _frame_ends(seg, 1)[-1][1], "close cuts the reserved zeros"


def _one_more_frame(tmp_path: Path, records: list[tuple]) -> bytes:
    """The bytes of the frame an append of ``{"i": 10**6, ...}`` after ``records`` would store."""
    other = tmp_path / "other"
    with open_log(other, durability="none") as log:
        for _seq, ts, kind, data in records:
            log.append(kind, data, ts=ts)
        log.append("e", {"i": 10**6, "pad": "z" * 1500})
    seg = _segs(other)[-1]
    off, end, _ = _frame_ends(seg, 1)[-1]
    return seg.read_bytes()[off:end]


@pytest.mark.parametrize("landed", [0, 8, 100, 700, -1])
def test_frame_copy_cut_short_is_a_torn_tail(tmp_path: Path, landed: int) -> None:
    """A frame whose length was never stored (killed mid-copy), or whose tail pages never
    reached the disk (power cut), is a torn tail: backed up and cut; readers stop before it."""
    crashed, records, end = _crashed_copy(tmp_path, 20)
    frame = _one_more_frame(tmp_path, records)
    seg = _segs(crashed)[-1]
    data = bytearray(seg.read_bytes())
    assert len(data) >= end + len(frame) + 512
    if landed == -1:
        # a power cut: the frame's first sector reached the disk, the rest did not
        cut = 512 - end % 512
        data[end : end + cut] = frame[:cut]
    else:
        # killed mid-copy: the body is copied first, the length (bytes 0..7) last
        data[end + 8 : end + 8 + landed] = frame[8 : 8 + landed]
    seg.write_bytes(bytes(data))
    assert _records(crashed, readonly=True) == records
    report = eventlog.verify(crashed)
    assert report.ok or report.first_problem.kind == "torn_tail", report.first_problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _records(crashed) == records
    backups = list(crashed.glob("*.torn-*"))
    assert (landed == 0) == (not backups), backups  # nothing landed: plain reserved zeros
    with open_log(crashed) as log:
        assert log.append("next", {}).seq == len(records) + 1


def test_damaged_last_frame_of_a_closed_log_is_not_mistaken_for_torn(tmp_path: Path) -> None:
    """A closed segment ends at its last frame: zeroing part of that frame's payload (inside one
    sector) is damage to report, not a torn copy to cut."""
    path = tmp_path / "log"
    with open_log(path, durability="none") as log:
        for i in range(5):
            log.append("e", {"i": i, "pad": "q" * 40})
    seg = _segs(path)[-1]
    off, end, _ = _frame_ends(seg, 1)[-1]
    data = bytearray(seg.read_bytes())
    assert end == len(data)
    data[end - 20 :] = bytes(20)  # the payload's last bytes (and the pad) read as zeros
    seg.write_bytes(bytes(data))
    (path / "00000000000000000001.idx").unlink()
    with pytest.raises(CorruptionError) as ei:
        open_log(path)
    assert ei.value.offset == off


def test_damage_before_valid_frames_is_not_repairable(tmp_path: Path) -> None:
    """A bad frame followed by good ones is damage in the middle: repair_tail refuses it."""
    _make_log(tmp_path / "log", 10)
    seg = _segs(tmp_path / "log")[-1]
    frames = _frame_ends(seg, 1)
    off = frames[-3][0]
    data = bytearray(seg.read_bytes())
    data[off + 50] ^= 0x10
    seg.write_bytes(bytes(data))
    (tmp_path / "log" / "00000000000000000001.idx").unlink()
    for kw in ({}, {"repair_tail": True}):
        with pytest.raises(CorruptionError) as ei:
            open_log(tmp_path / "log", **kw)
        assert ei.value.offset == off and not ei.value.repairable
    assert seg.read_bytes() == bytes(data)


# -- T7: broken snapshots ------------------------------------------------------------------
@pytest.fixture
def snapped(tmp_path: Path) -> tuple[Path, list[tuple]]:
    """A log of 30 records with snapshots at 10 and 20 (state = sum of i)."""
    path = tmp_path / "log"
    full = _make_log(path, 30)
    with open_log(path) as log:
        for s in (10, 20):
            log.save_snapshot(_expected_state(full, s), schema_version=1, seq=s)
    return path, full


def _latest(path: Path, **kw):
    with open_log(path, **kw) as log:
        return log.latest_snapshot()


def test_snapshot_tmp_file_is_ignored(snapped) -> None:
    """(a) A half-written temp snapshot that was never renamed is ignored and cleaned up."""
    path, full = snapped
    tmp = path / "snapshots" / (snap_name(30) + ".tmp")
    tmp.write_bytes(b"EVSN" + bytes(20))
    snap = _latest(path)
    assert snap.seq == 20 and snap.state == _expected_state(full, 20)
    assert not tmp.exists()


@pytest.mark.parametrize("how", ["zero", "half", "minus1", "flip"])
def test_damaged_snapshot_falls_back(snapped, how: str) -> None:
    """(b, c) A truncated or bit-flipped snapshot is skipped with a warning and renamed .broken."""
    path, full = snapped
    f = path / "snapshots" / snap_name(20)
    data = f.read_bytes()
    if how == "zero":
        data = b""
    elif how == "half":
        data = data[: len(data) // 2]
    elif how == "minus1":
        data = data[:-1]
    else:
        b = bytearray(data)
        b[-1] ^= 4
        data = bytes(b)
    f.write_bytes(data)
    with pytest.warns(RuntimeWarning, match="ignoring snapshot"):
        snap = _latest(path)
    assert snap.seq == 10 and snap.state == _expected_state(full, 10)
    assert not f.exists() and (f.parent / (f.name + ".broken")).exists()


def test_snapshot_beyond_the_head_falls_back(snapped) -> None:
    """(d) A snapshot whose seq is past the log head is not used."""
    path, full = snapped
    body = eventlog.encoding.encode(123)
    (path / "snapshots" / snap_name(31)).write_bytes(pack_snapshot(31, 2000, bytes(16), 1, body))
    with pytest.warns(RuntimeWarning, match="beyond"):
        snap = _latest(path)
    assert snap.seq == 20


def test_snapshot_from_another_history_falls_back(snapped) -> None:
    """A snapshot whose chain link does not match the log is not used."""
    path, _full = snapped
    body = eventlog.encoding.encode(999)
    (path / "snapshots" / snap_name(25)).write_bytes(pack_snapshot(25, 1025, bytes(16), 1, body))
    with pytest.warns(RuntimeWarning, match="chain link"):
        assert _latest(path).seq == 20


def test_schema_version_mismatch_skips_to_matching(snapped) -> None:
    """(e) latest_snapshot(schema_version=v) returns only snapshots of that version."""
    path, full = snapped
    with open_log(path) as log:
        log.save_snapshot("v2", schema_version=2, seq=25)
        assert log.latest_snapshot(schema_version=1).seq == 20
        assert log.latest_snapshot(schema_version=2).state == "v2"
        assert log.latest_snapshot(schema_version=3) is None
        assert log.latest_snapshot(max_seq=19).seq == 10


def test_every_snapshot_broken_means_replay_from_start(snapped) -> None:
    """(f) With every snapshot broken there is none; read-only mode leaves the files alone."""
    path, full = snapped
    for f in (path / "snapshots").glob("*.snap"):
        f.write_bytes(f.read_bytes()[:10])
    with pytest.warns(RuntimeWarning):
        assert _latest(path, readonly=True) is None
    assert len(list((path / "snapshots").glob("*.snap"))) == 2
    with pytest.warns(RuntimeWarning):
        assert _latest(path) is None
    assert len(list((path / "snapshots").glob("*.broken"))) == 2
    assert _records(path) == full


def test_failed_snapshot_write_keeps_the_good_one(snapped, monkeypatch: pytest.MonkeyPatch) -> None:
    """A snapshot write that fails leaves the previous snapshot intact."""
    from eventlog import _fs

    path, full = snapped
    with open_log(path) as log:
        def boom(fd: int) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(_fs, "fsync", boom)
        with pytest.raises(eventlog.LogWriteError) as ei:
            log.save_snapshot("new", schema_version=1, seq=20)
        assert ei.value.errno == 28
        monkeypatch.undo()
        snap = log.latest_snapshot()
    assert snap.seq == 20 and snap.state == _expected_state(full, 20)
    assert not list((path / "snapshots").glob("*.tmp"))
