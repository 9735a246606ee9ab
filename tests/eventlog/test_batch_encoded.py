"""``append_batch_encoded`` and the file log's frame write.

``append_batch_encoded`` is the trusted batch fast path a JobState transaction uses: it
must give the same records, bytes, timestamps and hash chain as ``append_batch``, with the
same atomicity. The file log copies frames into a shared map of the active segment, the
length last; it must store exactly the frame, defer to a replaced ``_fs.map_write`` so
fault injection still reaches every append, and leave nothing of a failed copy behind.
"""

from __future__ import annotations

import errno
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventlog import (
    ConcurrencyError,
    InMemoryEventLog,
    LogWriteError,
    RecordTooLargeError,
    _fs,
    verify,
)
from eventlog.encoding import MAX_RECORD_BYTES, encode_event
from eventlog.filelog import FileEventLog

T0 = 1_700_000_000_000_000_000

_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20)
    | st.binary(max_size=20) | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_batches = st.lists(
    st.lists(st.tuples(st.sampled_from(["a", "task_queued", "x.y"]),
                       st.dictionaries(st.text(max_size=8), _values, max_size=4)), min_size=1, max_size=5),
    min_size=1, max_size=6,
)


def _encoded(events: list[tuple[str, dict[str, Any]]]) -> list[bytes]:
    return [encode_event(kind, data) for kind, data in events]


def _open(kind: str, path: Path) -> Any:
    return InMemoryEventLog() if kind == "memory" else FileEventLog(str(path), durability="none")


@pytest.mark.parametrize("backend", ["memory", "file"])
@given(batches=_batches)
def test_batch_encoded_equals_batch(tmp_path_factory: pytest.TempPathFactory, backend: str,
                                    batches: list[list[tuple[str, dict[str, Any]]]]) -> None:
    """Same records, same stored bytes and the same head hash as append_batch."""
    base = tmp_path_factory.mktemp("b")
    plain, fast = _open(backend, base / "plain"), _open(backend, base / "fast")
    ref = InMemoryEventLog()  # the chain computed by other code, one event at a time
    try:
        for i, batch in enumerate(batches):
            ts = T0 + i
            want = plain.append_batch(batch, ts=ts)
            first, got_ts = fast.append_batch_encoded(_encoded(batch), expected_seq=fast.head_seq, ts=ts)
            assert (first, got_ts) == (want[0].seq, want[0].ts)
            assert list(fast.read(first)) == want
            for kind, data in batch:
                ref.append(kind, data, ts=ts)
        assert fast.head_hash == plain.head_hash == ref.head_hash
        assert list(fast.read_raw()) == list(plain.read_raw())
        assert list(fast.read()) == list(plain.read())
    finally:
        if backend == "file":
            plain.close()
            fast.close()


def test_file_batch_encoded_survives_reopen_and_verifies(tmp_path: Path, rng: random.Random) -> None:
    """Frames written by the fast path (one to many events) read back and verify after reopen."""
    path = tmp_path / "log"
    log = FileEventLog(str(path), durability="batch")
    written = []
    for i in range(200):
        batch = [("ev", {"i": i, "j": j, "pad": "x" * rng.randrange(0, 40)}) for j in range(rng.randrange(1, 20))]
        first, ts = log.append_batch_encoded(_encoded(batch))
        written.extend(list(log.read(first)))
    head = log.head_hash
    log.close()
    with FileEventLog(str(path), readonly=True) as again:
        assert list(again.read()) == written
        assert again.head_hash == head
    report = verify(path)  # checksums and the whole hash chain, event by event
    assert report.ok, str(report)
    assert report.head_seq == len(written)


@pytest.mark.parametrize("backend", ["memory", "file"])
def test_batch_encoded_refusals_write_nothing(tmp_path: Path, backend: str) -> None:
    """A stale expected_seq, an empty batch or an oversized event leave the log as it was."""
    log = _open(backend, tmp_path / "log")
    try:
        log.append_batch_encoded(_encoded([("a", {"n": 1})]))
        head, hash_ = log.head_seq, log.head_hash
        with pytest.raises(ConcurrencyError):
            log.append_batch_encoded(_encoded([("a", {"n": 2})]), expected_seq=0)
        with pytest.raises(ValueError, match="at least one event"):
            log.append_batch_encoded([])
        huge = b"\x92\xa1a" + b"\x00" * MAX_RECORD_BYTES
        with pytest.raises(RecordTooLargeError):
            log.append_batch_encoded([*_encoded([("a", {"n": 3})]), huge])
        assert (log.head_seq, log.head_hash) == (head, hash_)
        assert [r.data for r in log.read()] == [{"n": 1}]
    finally:
        if backend == "file":
            log.close()


def test_frame_is_copied_body_first_then_length(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each append copies the frame minus its first 8 bytes, then those 8 (length, count)."""
    log = FileEventLog(str(tmp_path / "log"), durability="none")
    try:
        log.append("warm", {})
        calls: list[tuple[int, bytes]] = []
        real = _fs.map_write

        def spy(fd: int, mapping: Any, offset: int, data: bytes) -> None:
            # At the moment the body lands, the length slot must still read as zeros.
            if len(data) != 8:
                assert mapping[offset - 8 : offset] == bytes(8)
            calls.append((offset, bytes(data)))
            real(fd, mapping, offset, data)

        monkeypatch.setattr(_fs, "map_write", spy)
        rec = log.append("a", {"n": 1})
        assert [len(d) for _, d in calls][1] == 8
        (body_off, body), (head_off, head) = calls
        assert body_off == head_off + 8
        frame = head + body
        length, count = struct.unpack_from("<II", frame)
        assert count == 1 and 48 + length <= len(frame) < 48 + length + 8
        assert frame[48 : 48 + length] == encode_event("a", {"n": 1})
        assert rec.seq == 2
    finally:
        log.close()
    seg = next((tmp_path / "log").glob("*.seg")).read_bytes()
    assert seg[head_off : head_off + len(frame)] == frame


def test_large_frames_and_replaced_map_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A replaced _fs.map_write sees every append; a failed copy leaves nothing; big frames round-trip."""
    log = FileEventLog(str(tmp_path / "log"), durability="none")
    try:
        big = {"blob": b"\x00\x01" * 300_000}  # larger than the first reserved step
        assert log.append("big", big).data == big
        calls = []
        real = _fs.map_write

        def spy(fd: int, mapping: Any, offset: int, data: bytes) -> None:
            calls.append(len(data))
            real(fd, mapping, offset, data)

        monkeypatch.setattr(_fs, "map_write", spy)
        log.append("a", {"n": 1})
        log.append_batch_encoded(_encoded([("b", {"n": 2}), ("c", {"n": 3})]))
        assert len(calls) == 4  # two copies per frame

        def fail_after_landing_some(fd: int, mapping: Any, offset: int, data: bytes) -> None:
            real(fd, mapping, offset, data[: len(data) // 2])
            raise OSError(errno.EIO, "injected")

        monkeypatch.setattr(_fs, "map_write", fail_after_landing_some)
        head = log.head_seq
        with pytest.raises(LogWriteError) as ei:
            log.append_batch_encoded(_encoded([("d", {"n": 4})]))
        assert ei.value.errno == errno.EIO
        assert log.head_seq == head
        monkeypatch.undo()
        assert log.append("e", {"n": 5}).seq == head + 1
    finally:
        log.close()
    with FileEventLog(str(tmp_path / "log"), readonly=True) as again:
        assert [r.kind for r in again.read()] == ["big", "a", "b", "c", "e"]
