"""Frame and segment format units, and the file log's basic behaviour against the in-memory oracle."""

from __future__ import annotations

import os
import struct
import threading
import zlib
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import eventlog
from eventlog import (
    ConcurrencyError,
    EventEncodingError,
    InMemoryEventLog,
    LogClosedError,
    LogLockedError,
    LogReadOnlyError,
    WrongKeyError,
    open_log,
)
from eventlog._frame import (
    FRAME_HEADER_SIZE,
    SEG_HEADER_SIZE,
    BadFrame,
    FrameHeader,
    check_frame,
    pack_frame,
    pack_seg_header,
    split_events,
    unpack_seg_header,
)
from eventlog.index import SegmentIndex

events_st = st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=20)


@given(events_st, st.integers(1, 2**40), st.integers(0, 2**62))
@example([b"\x92\xa1k\x80"], 1, 0)
def test_frame_round_trip(events: list[bytes], seq: int, ts: int) -> None:
    """A packed frame checks out and gives back its events, header fields and 8-byte alignment."""
    link = bytes(range(16))
    frame = pack_frame(events, seq, ts, link)
    assert len(frame) % 8 == 0
    hdr = check_frame(frame, 0, len(frame), seq, 0)
    assert isinstance(hdr, FrameHeader)
    assert (hdr.seq, hdr.count, hdr.ts, hdr.link, hdr.total) == (seq, len(events), ts, link, len(frame))
    payload = frame[FRAME_HEADER_SIZE : FRAME_HEADER_SIZE + hdr.length]
    assert split_events(payload, hdr.count) == events


def test_check_frame_classifies_damage() -> None:
    """Each kind of damage is named: short, header, past_end, bad (seq, body, pad, table, ts)."""
    frame = pack_frame([b"abc"], 7, 100, bytes(16))
    assert check_frame(frame, 0, 47, 7, 0).kind == "short"
    assert check_frame(frame[:-1], 0, len(frame) - 1, 7, 0).kind == "past_end"
    bad = bytearray(frame)
    bad[0] ^= 1  # the length: caught by the header CRC, never read as a torn write
    assert check_frame(bytes(bad), 0, len(bad), 7, 0).kind == "header"
    assert check_frame(frame, 0, len(frame), 8, 0).kind == "bad"  # wrong seq
    assert check_frame(frame, 0, len(frame), 7, 101).kind == "bad"  # ts goes back
    bad = bytearray(frame)
    bad[FRAME_HEADER_SIZE] ^= 1
    res = check_frame(bytes(bad), 0, len(bad), 7, 0)
    assert res.kind == "bad" and "body checksum" in res.reason
    bad = bytearray(frame)
    bad[-1] = 1
    assert "padding" in check_frame(bytes(bad), 0, len(bad), 7, 0).reason
    # A batch whose length table does not add up, with both CRCs made valid.
    batch = bytearray(pack_frame([b"ab", b"cd"], 1, 0, bytes(16)))
    struct.pack_into("<I", batch, FRAME_HEADER_SIZE, 3)
    struct.pack_into("<I", batch, 40, zlib.crc32(bytes(batch[FRAME_HEADER_SIZE : FRAME_HEADER_SIZE + 12])))
    struct.pack_into("<I", batch, 44, zlib.crc32(bytes(batch[:44])))
    assert "length table" in check_frame(bytes(batch), 0, len(batch), 1, 0).reason


def test_segment_header_round_trip_and_damage() -> None:
    """The segment header keeps its anchor and key check; a flip anywhere in it is reported."""
    head = pack_seg_header(42, 99, b"L" * 16, b"key")
    assert len(head) == SEG_HEADER_SIZE
    h = unpack_seg_header(head)
    assert (h.base_seq, h.prev_ts, h.prev_link, h.flags) == (42, 99, b"L" * 16, 1)
    for i in range(SEG_HEADER_SIZE):
        bad = bytearray(head)
        bad[i] ^= 0x40
        assert isinstance(unpack_seg_header(bytes(bad)), str)
    assert isinstance(unpack_seg_header(head[:10]), str)


def test_index_round_trip_and_damage() -> None:
    """An index file round-trips; any damaged byte makes it rejected (then rebuilt)."""
    idx = SegmentIndex(5, SEG_HEADER_SIZE, 3, b"p" * 16)
    for k in range(10):
        off = SEG_HEADER_SIZE + k * 20000
        idx.note(off, 5 + k, 5 + k, 100 + k, bytes([k]) * 16, off + 64)
    data = idx.to_bytes()
    back = SegmentIndex.from_bytes(data, 5)
    assert back is not None
    assert list(back.seqs) == list(idx.seqs) and list(back.offs) == list(idx.offs)
    assert (back.last_seq, back.last_link, back.covered_end) == (14, bytes([9]) * 16, idx.covered_end)
    assert SegmentIndex.from_bytes(data, 6) is None
    for i in range(0, len(data), 7):
        bad = bytearray(data)
        bad[i] ^= 1
        assert SegmentIndex.from_bytes(bytes(bad), 5) is None


def _fill(log, mem, n: int = 300) -> None:
    for i in range(n):
        if i % 17 == 3:
            evs = [("b", {"i": i, "j": j}) for j in range(4)]
            log.append_batch(evs, ts=10 * (i // 3))
            mem.append_batch(evs, ts=10 * (i // 3))
        else:
            log.append("e", {"i": i, "pad": "z" * (i % 50)}, ts=10 * (i // 3))
            mem.append("e", {"i": i, "pad": "z" * (i % 50)}, ts=10 * (i // 3))


@pytest.mark.parametrize("key", [None, b"sekrit"])
def test_same_history_as_the_in_memory_log(tmp_path: Path, key: bytes | None) -> None:
    """Head hash, every link, reads, and time lookups equal the in-memory log's, across rolls and reopen."""
    mem = InMemoryEventLog(key=key)
    with open_log(tmp_path / "log", key=key, segment_bytes=4096, durability="none") as log:
        _fill(log, mem)
        assert len(list((tmp_path / "log").glob("*.seg"))) > 3
        assert log.head_hash == mem.head_hash
    with open_log(tmp_path / "log", key=key, segment_bytes=4096) as log:
        assert (log.head_seq, log.head_ts, log.head_hash) == (mem.head_seq, mem.head_ts, mem.head_hash)
        assert list(log.read()) == list(mem.read())
        assert list(log.read(37, 95)) == list(mem.read(37, 95))
        assert list(log.read_raw(100, 120)) == list(mem.read_raw(100, 120))
        for seq in range(0, mem.head_seq + 1):
            assert log.link_at(seq) == mem.link_at(seq), seq
        for t in range(-5, 10 * 300 + 20, 7):
            assert log.seq_at_time(t) == mem.seq_at_time(t), t
        assert log.get(77) == mem.get(77)


def test_index_files_are_derived_data(tmp_path: Path) -> None:
    """Deleted or damaged index files are rebuilt and change nothing."""
    mem = InMemoryEventLog()
    with open_log(tmp_path / "log", segment_bytes=4096, durability="none") as log:
        _fill(log, mem, 120)
    idxs = sorted((tmp_path / "log").glob("*.idx"))
    idxs[0].unlink()
    idxs[-1].write_bytes(b"garbage")
    with open_log(tmp_path / "log", segment_bytes=4096) as log:
        assert list(log.read()) == list(mem.read())
        log.append("more", {})
    assert (tmp_path / "log" / idxs[0].name).exists()


def test_append_errors_write_nothing(tmp_path: Path) -> None:
    """A bad value or a stale expected_seq leaves the segment byte-for-byte unchanged."""
    with open_log(tmp_path / "log") as log:
        log.append("a", {"x": 1})
        seg = next((tmp_path / "log").glob("*.seg"))
        before = seg.read_bytes()
        with pytest.raises(EventEncodingError, match=r"data\['s'\]"):
            log.append("a", {"s": [1, object()]})
        with pytest.raises(ConcurrencyError):
            log.append("a", {}, expected_seq=0)
        with pytest.raises(ConcurrencyError):
            log.append_batch([("a", {}), ("b", {})], expected_seq=5)
        with pytest.raises(ValueError):
            log.append("a", {}, ts=-1)
        assert seg.read_bytes() == before
        assert log.append("b", {}, expected_seq=1).seq == 2


def test_lock_and_readonly(tmp_path: Path) -> None:
    """One writer at a time (even in one process); readers take no lock and cannot write."""
    with open_log(tmp_path / "log") as log:
        log.append("a", {})
        with pytest.raises(LogLockedError) as ei:
            open_log(tmp_path / "log")
        assert str(os.getpid()) in str(ei.value) and str(tmp_path / "log") in str(ei.value)
        with open_log(tmp_path / "log", readonly=True) as reader:
            assert reader.head_seq == 1
            log.append("b", {})
            assert reader.head_seq == 2  # picks up the writer's appends
            assert [r.kind for r in reader.read()] == ["a", "b"]
            with pytest.raises(LogReadOnlyError):
                reader.append("c", {})
    with open_log(tmp_path / "log") as log:
        assert log.head_seq == 2
    with pytest.raises(FileNotFoundError):
        open_log(tmp_path / "missing", readonly=True)
    with pytest.raises(FileNotFoundError):
        open_log(tmp_path / "missing", create=False)


def test_wrong_key_is_refused(tmp_path: Path) -> None:
    """Opening with a different, missing or superfluous key is a clear error."""
    with open_log(tmp_path / "k", key=b"one"):
        pass
    for key in (b"two", None):
        with pytest.raises(WrongKeyError):
            open_log(tmp_path / "k", key=key)
    with open_log(tmp_path / "u"):
        pass
    with pytest.raises(WrongKeyError):
        open_log(tmp_path / "u", key=b"one")


def test_follow_sees_every_record_once(tmp_path: Path) -> None:
    """follow yields each seq once and in order while a thread appends, then stops on timeout."""
    with open_log(tmp_path / "log") as log:
        def writer() -> None:
            for i in range(200):
                log.append("e", {"i": i})

        t = threading.Thread(target=writer)
        t.start()
        got = [r.seq for r in log.follow(1, timeout=0.5)]
        t.join()
        assert got == list(range(1, 201))
        with open_log(tmp_path / "log", readonly=True) as reader:
            log.append("late", {})
            assert [r.seq for r in reader.follow(150, timeout=0.3, poll_interval=0.01)] == list(range(150, 202))


@pytest.mark.parametrize("mode", ["always", "batch", "none"])
def test_durability_modes(tmp_path: Path, mode: str) -> None:
    """sync() makes every appended record durable in every mode; "always" is durable on return."""
    with open_log(tmp_path / "log", durability=mode) as log:
        assert log.durability == mode
        for i in range(20):
            rec = log.append("e", {"i": i})
            if mode == "always":
                assert log.durable_seq >= rec.seq
        assert log.sync() == 20 == log.durable_seq


def test_group_commit_with_threads(tmp_path: Path) -> None:
    """Concurrent "always" appenders all get durable, distinct, contiguous seqs."""
    with open_log(tmp_path / "log", durability="always") as log:
        seqs: list[int] = []
        lock = threading.Lock()

        def worker(k: int) -> None:
            for i in range(25):
                rec = log.append("e", {"k": k, "i": i})
                assert log.durable_seq >= rec.seq
                with lock:
                    seqs.append(rec.seq)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(seqs) == list(range(1, 201))


def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    """close() twice is fine; afterwards appends and reads raise LogClosedError."""
    log = open_log(tmp_path / "log")
    log.append("a", {})
    log.close()
    log.close()
    assert log.closed
    with pytest.raises(LogClosedError):
        log.append("b", {})
    with pytest.raises(LogClosedError):
        list(log.read())


def test_failed_reservation_changes_nothing_and_keeps_errno(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Disk full while reserving space: errno kept, file and head unchanged; a failed fsync fails the writer."""
    from eventlog import LogFailedError, LogWriteError, _fs

    log = open_log(tmp_path / "log", durability="always")
    log.append("a", {})
    seg = next((tmp_path / "log").glob("*.seg"))
    size = seg.stat().st_size
    real_fallocate = _fs.fallocate
    tried = []

    def reserve_half_then_fail(fd: int, offset: int, length: int) -> None:
        tried.append(length)
        real_fallocate(fd, offset, length // 2)  # part of the range, as a filling disk may
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_fs, "fallocate", reserve_half_then_fail)
    with pytest.raises(LogWriteError) as ei:
        log.append("b", {"x": "y" * 100_000})  # needs more than the space reserved so far
    assert ei.value.errno == 28 and seg.stat().st_size == size
    assert len(tried) == 2 and tried[1] < tried[0]  # then only what the frame needed
    assert log.head_seq == 1
    monkeypatch.undo()
    assert log.append("c", {}).seq == 2

    def bad_sync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(_fs, "fdatasync", bad_sync)
    with pytest.raises(LogWriteError):
        log.append("d", {})
    monkeypatch.undo()
    with pytest.raises(LogFailedError):
        log.append("e", {})
    log.close()
    with open_log(tmp_path / "log") as again:
        assert [r.kind for r in again.read()] == ["a", "c", "d"]


def test_unsupported_version(tmp_path: Path) -> None:
    """A segment of a newer format version is refused with UnsupportedFormatError."""
    with open_log(tmp_path / "log"):
        pass
    seg = next((tmp_path / "log").glob("*.seg"))
    data = bytearray(seg.read_bytes())
    struct.pack_into("<H", data, 4, 9)
    struct.pack_into("<I", data, 52, zlib.crc32(bytes(data[:52])))
    seg.write_bytes(bytes(data))
    with pytest.raises(eventlog.UnsupportedFormatError, match="version 9"):
        open_log(tmp_path / "log")


def test_bad_frame_kinds_are_badframe() -> None:
    """check_frame never raises on garbage; it returns BadFrame."""
    for junk in (b"", b"\0" * 48, b"\xff" * 100):
        assert isinstance(check_frame(junk, 0, len(junk), 1, 0), BadFrame)


# -- differential state machine: file log vs in-memory oracle, with reopen and crash ------------
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule  # noqa: E402


class FileVsMemory(RuleBasedStateMachine):
    """Random appends, batches, snapshots, reopens and crashes never make the two logs differ."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.dir = tempfile.mkdtemp(prefix="evsm-")
        self.path = os.path.join(self.dir, "log")
        self.mem = InMemoryEventLog()
        self.log = open_log(self.path, segment_bytes=4096, durability="none")
        self.ts = 0

    @rule(n=st.integers(0, 300), dt=st.integers(0, 3))
    def append(self, n: int, dt: int) -> None:
        self.ts += dt
        data = {"n": n, "s": "q" * (n % 97)}
        assert self.log.append("e", data, ts=self.ts) == self.mem.append("e", data, ts=self.ts)

    @rule(k=st.integers(1, 6), dt=st.integers(0, 3))
    def batch(self, k: int, dt: int) -> None:
        self.ts += dt
        evs = [("b", {"j": j, "pad": "w" * (j * 40)}) for j in range(k)]
        assert self.log.append_batch(evs, ts=self.ts) == self.mem.append_batch(evs, ts=self.ts)

    @rule()
    def reopen(self) -> None:
        self.log.close()
        self.log = open_log(self.path, segment_bytes=4096, durability="none")

    @rule()
    def crash(self) -> None:
        """Drop the writer without close(): no index save, no final sync (like kill -9)."""
        self.log._release_all()
        self.log = open_log(self.path, segment_bytes=4096, durability="none")

    @precondition(lambda self: self.mem.head_seq > 0)
    @rule(data=st.data())
    def snapshot(self, data: st.DataObject) -> None:
        seq = data.draw(st.integers(0, self.mem.head_seq))
        snap = self.log.save_snapshot({"at": seq}, schema_version=1, seq=seq)
        assert snap.link == self.mem.link_at(seq)
        assert self.log.latest_snapshot(max_seq=seq).state == {"at": seq}

    @invariant()
    def same(self) -> None:
        assert (self.log.head_seq, self.log.head_ts, self.log.head_hash) == (
            self.mem.head_seq, self.mem.head_ts, self.mem.head_hash)

    def teardown(self) -> None:
        import shutil

        head = self.mem.head_seq
        if head:
            assert list(self.log.read()) == list(self.mem.read())
            for seq in {1, head, head // 2, max(1, head - 3)}:
                assert self.log.link_at(seq) == self.mem.link_at(seq)
            for t in range(0, self.ts + 2):
                assert self.log.seq_at_time(t) == self.mem.seq_at_time(t)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


TestFileVsMemory = FileVsMemory.TestCase
# Each step does real file I/O (fsynced snapshots, reopen): keep the run short.
TestFileVsMemory.settings = settings(settings.default, max_examples=min(settings.default.max_examples, 20),
                                     stateful_step_count=25)


@given(events=st.lists(st.binary(max_size=40), min_size=1, max_size=6), seq=st.integers(1, 2**40),
       ts=st.integers(0, 2**62), key=st.sampled_from([b"", b"k" * 32]))
def test_chain_next_is_run_for_one_event(events: list[bytes], seq: int, ts: int, key: bytes) -> None:
    """Chain.next (one link, written out) agrees with Chain.run, and both with BLAKE2b of the documented input."""
    import hashlib

    from eventlog.chain import GENESIS, Chain

    chain = Chain(key)
    link = GENESIS
    for i, event in enumerate(events):
        want = hashlib.blake2b(link + struct.pack("<Qq", seq + i, ts) + event, digest_size=16, key=key).digest()
        assert chain.next(link, seq + i, ts, event) == want == chain.run(link, seq + i, [ts], [event])
        link = want
    assert chain.run(GENESIS, seq, [ts] * len(events), events) == link == chain.extend(GENESIS, seq, ts, events)
