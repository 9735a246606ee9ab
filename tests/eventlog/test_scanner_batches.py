"""The frame scanner's event lists: the same events whatever the chunk size, stops, damage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventlog import CorruptionError, open_log
from eventlog._frame import SEG_HEADER_SIZE
from eventlog.encoding import EventSplitter, encode, encode_event
from eventlog.segment import FrameScanner


def _log(path: Path, n: int) -> list[tuple[int, int, bytes]]:
    """A one-segment log of ``n`` events of varied sizes (every fourth a batch of three)."""
    with open_log(path, durability="none") as log:
        i = 0
        while i < n:
            if i % 4 == 3 and i + 3 <= n:
                log.append_batch([("b", {"i": i + j, "pad": "y" * j}) for j in range(3)], ts=1000 + i)
                i += 3
            else:
                log.append("e", {"i": i, "s": "x" * (i * 7 % 23)}, ts=1000 + i)
                i += 1
        return list(log.read_raw())


@given(chunk=st.integers(min_value=48, max_value=700), first=st.integers(min_value=1, max_value=40),
       span=st.integers(min_value=0, max_value=40))
def test_events_are_the_same_for_every_chunk_size_and_range(tmp_path_factory: pytest.TempPathFactory, chunk: int,
                                                            first: int, span: int) -> None:
    """Events first..last come out in order, once each, in non-empty lists, for any chunk size."""
    path = tmp_path_factory.mktemp("log")
    events = _log(path, 40)
    last = min(first + span, 40)
    (seg,) = path.glob("*.seg")
    fd = os.open(seg, os.O_RDONLY)
    try:
        scanner = FrameScanner(fd, SEG_HEADER_SIZE, os.fstat(fd).st_size, 1, 0, chunk=chunk)
        lists = list(scanner.batches(first, last))
    finally:
        os.close(fd)
    assert all(type(batch) is list and batch for batch in lists)
    assert [event for batch in lists for event in batch] == events[first - 1 : last]
    assert scanner.bad is None and scanner.expected_seq > last


def test_the_events_before_a_damaged_frame_come_first(tmp_path: Path) -> None:
    """A bit flipped in a frame: read_raw yields every event before its frame, then raises, naming it."""
    events = _log(tmp_path, 40)
    (seg,) = tmp_path.glob("*.seg")
    fd = os.open(seg, os.O_RDONLY)
    try:
        at, first = next((off, seq) for off, seq, count, *_ in FrameScanner(fd, SEG_HEADER_SIZE, os.fstat(fd).st_size,
                                                                              1, 0) if seq + count > 21)
    finally:
        os.close(fd)
    data = bytearray(seg.read_bytes())
    data[at + 50] ^= 0x01  # in the payload: the body checksum fails
    seg.write_bytes(bytes(data))
    got = []
    with open_log(tmp_path, readonly=True) as log, pytest.raises(CorruptionError, match=f"seq {first}"):
        got.extend(log.read_raw())
    assert got == events[: first - 1] and first > 15


def test_a_kind_splitter_splits_only_its_kind() -> None:
    """With ``kind``, an event of another kind with the same fields is not split, remembered or not."""
    splitter = EventSplitter("routine_id", "event_name", "data", kind="execution_recorded")
    data = {"routine_id": "r", "event_name": "e", "data": {"k": 1}}
    assert splitter.split(encode_event("execution_recorded", data)) == ("r", "e", encode({"k": 1}))
    assert splitter.split(encode_event("execution_recorded", data)) == ("r", "e", encode({"k": 1}))
    assert splitter.split(encode_event("output_sent", data)) is None
    assert EventSplitter("routine_id", "event_name", "data").split(encode_event("output_sent", data)) == (
        "r", "e", encode({"k": 1}))


@pytest.mark.parametrize("size", [31, 32, 300])
def test_leading_strs_of_every_length_split_the_same_first_and_remembered(size: int) -> None:
    """Ids up to the longest fixstr (remembered) and longer ones (parsed each time) give the same parts."""
    splitter = EventSplitter("routine_id", "event_name", "data", kind="execution_recorded")
    rid, name = "r" * size, "e" * size
    for n in range(3):
        event = encode_event("execution_recorded", {"routine_id": rid, "event_name": name, "data": {"n": n}})
        assert splitter.split(event) == (rid, name, encode({"n": n}))


def test_an_event_of_another_shape_holding_the_last_name_deep_inside_is_not_split() -> None:
    """The packed last name far past where any head ends (a large value holding it) is no head."""
    splitter = EventSplitter("routine_id", "event_name", "data", kind="execution_recorded")
    splitter.split(encode_event("execution_recorded", {"routine_id": "r", "event_name": "e", "data": {}}))
    other = encode_event("shared_data_set", {"key": "k", "value": {"blob": "x" * 100_000, "data": 1}})
    assert splitter.split(other) is None
    untyped = EventSplitter("key", "value")
    assert untyped.split(other) == ("k", encode({"blob": "x" * 100_000, "data": 1}))


@pytest.mark.parametrize("routine_id", ["\u00e4data", "x\u00a4data", "data"])
def test_a_leading_str_holding_the_last_name_is_split_right_every_time(routine_id: str) -> None:
    """A routine id whose UTF-8 holds the packed last name (0xA4 'data') misleads the fast end only."""
    splitter = EventSplitter("routine_id", "event_name", "data")
    for n in range(3):  # first parse, then the remembered fields
        event = encode_event("execution_recorded", {"routine_id": routine_id, "event_name": "e", "data": [n]})
        assert splitter.split(event) == (routine_id, "e", encode([n]))
