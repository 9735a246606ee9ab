"""Fuzz the reader (RELIABILITY.md T11).

Whatever bytes follow a valid segment header, open + read either returns records
that were really written (a prefix of the original log, for mutations of a real
segment) or raises ``CorruptionError``/``UnsupportedFormatError``; nothing else.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from eventlog import CorruptionError, UnsupportedFormatError, open_log
from eventlog._frame import SEG_HEADER_SIZE, pack_seg_header
from eventlog.chain import GENESIS
from eventlog.segment import FrameScanner, frame_end

SEG = "00000000000000000001.seg"


def _build(path: Path, tag: str, n: int = 12) -> tuple[bytes, list[tuple], list[tuple[int, int]]]:
    """Write a small log; return (segment bytes, records, frame spans)."""
    with open_log(path, durability="none") as log:
        for i in range(n):
            if i % 4 == 3:
                log.append_batch([(tag, {"i": i, "j": 0}), (tag, {"i": i, "j": 1})], ts=100 + i)
            else:
                log.append(tag, {"i": i, "s": tag * (i % 5)}, ts=100 + i)
        recs = [tuple(r) for r in log.read()]
    data = (path / SEG).read_bytes()
    fd = os.open(path / SEG, os.O_RDONLY)
    try:
        spans = [(off, frame_end(off, len(payload)))
             for off, _s, _c, _t, _l, payload in FrameScanner(fd, SEG_HEADER_SIZE, len(data), 1, 0)]
    finally:
        os.close(fd)
    return data, recs, spans


_TMP = Path(tempfile.mkdtemp(prefix="evfuzz-"))
atexit.register(shutil.rmtree, _TMP, True)
ORIG, ORIG_RECS, SPANS = _build(_TMP / "a", "a")
OTHER, _OTHER_RECS, OTHER_SPANS = _build(_TMP / "b", "b")


def _open_and_read(seg_bytes: bytes) -> list[tuple] | None:
    """Write a log holding just this segment; return its records, or None on a clean error."""
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / SEG).write_bytes(seg_bytes)
        try:
            with open_log(d) as log:
                recs = [tuple(r) for r in log.read()]
            # A second open must agree (recovery is idempotent).
            with open_log(d, readonly=True) as log:
                assert [tuple(r) for r in log.read()] == recs
            return recs
        except (CorruptionError, UnsupportedFormatError):
            return None


@given(st.binary(max_size=4096))
def test_random_body_behind_a_valid_header(body: bytes) -> None:
    """Random bytes after a valid header give records with contiguous seqs, or a clean error."""
    recs = _open_and_read(pack_seg_header(1, 0, GENESIS, b"") + body)
    if recs is not None:
        assert [r[0] for r in recs] == list(range(1, len(recs) + 1))


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, len(ORIG) - 1), st.integers(0, 7)),
    st.tuples(st.just("insert"), st.integers(0, len(ORIG)), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), st.integers(0, len(ORIG) - 1), st.integers(1, 64)),
    st.tuples(st.just("duplicate"), st.integers(0, len(SPANS) - 1), st.integers(0, len(SPANS) - 1)),
    st.tuples(st.just("swap"), st.integers(0, len(SPANS) - 2), st.just(0)),
    st.tuples(st.just("foreign"), st.integers(0, len(OTHER_SPANS) - 1), st.integers(0, len(SPANS) - 1)),
)


def _mutate(kind: str, a: int, b) -> bytes:
    data = bytearray(ORIG)
    if kind == "flip":
        data[a] ^= 1 << b
    elif kind == "insert":
        data[a:a] = b
    elif kind == "delete":
        del data[a : a + b]
    elif kind == "duplicate":
        s, e = SPANS[a]
        at = SPANS[b][0]
        data[at:at] = ORIG[s:e]
    elif kind == "swap":
        (s1, e1), (s2, e2) = SPANS[a], SPANS[a + 1]
        data[s1:e2] = ORIG[s2:e2] + ORIG[s1:e1]
    else:  # a frame from another log spliced in
        s, e = OTHER_SPANS[a]
        at = SPANS[b][0]
        data[at:at] = OTHER[s:e]
    return bytes(data)


@given(mutation)
def test_mutated_segment_gives_a_prefix_or_an_error(m: tuple) -> None:
    """A damaged real segment never yields a record that was not written at that seq."""
    recs = _open_and_read(_mutate(*m))
    if recs is not None:
        assert recs == ORIG_RECS[: len(recs)], m
        if m[0] in ("duplicate", "swap", "foreign"):
            # Frames out of place are caught by seq checks, never read as data.
            assert len(recs) <= len(ORIG_RECS)
