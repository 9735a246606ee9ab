"""Filtered raw reads (``read_raw(..., select=PrefixFilter(...))``), on every backend.

A filtered read must yield exactly the events of the unfiltered read that the filter
passes, in order, and must check the frames of the events it leaves out as strictly
as the others: a damaged event is an error even when nobody asked for it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventlog
from eventlog import CorruptionError, PrefixFilter
from eventlog.encoding import encode_event

KINDS = ("tick", "tock", "status_set", "x", "shared_data_set")

_events = st.lists(
    st.lists(st.tuples(st.sampled_from(KINDS), st.fixed_dictionaries({"i": st.integers(0, 9)})),
             min_size=1, max_size=4),  # a batch of 1-4 events (a batch is one frame)
    min_size=1, max_size=25)


def _prefix_filter(width: int, kinds: list[str]) -> PrefixFilter:
    return PrefixFilter(width, frozenset(encode_event(kind, {})[:width] for kind in kinds))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=_events, width=st.integers(1, 9), skipped=st.lists(st.sampled_from(KINDS), unique=True),
       bounds=st.tuples(st.integers(1, 40), st.integers(0, 40)))
def test_filtered_read_is_the_unfiltered_read_filtered(make_log, batches, width, skipped, bounds) -> None:
    """The events yielded are those of the plain read that ``passes`` lets through, in order."""
    log = make_log()
    for batch in batches:
        if len(batch) == 1:
            log.append(*batch[0])
        else:
            log.append_batch(batch)
    select = _prefix_filter(width, skipped)
    start, stop = bounds
    plain = list(log.read_raw(start, stop))
    assert list(log.read_raw(start, stop, select)) == [e for e in plain if select.passes(e[2])]
    assert list(log.read_raw(start, stop, None)) == plain


def test_passes_looks_at_the_leading_bytes_only() -> None:
    """An event is left out when its first ``width`` bytes are a skipped prefix; a short one passes."""
    select = PrefixFilter(3, frozenset({b"abc"}))
    assert not select.passes(b"abcdef")
    assert select.passes(b"abd")
    assert select.passes(b"ab")  # shorter than the width
    assert PrefixFilter(3, frozenset()).passes(b"abc")


def test_a_damaged_event_left_out_is_still_an_error(tmp_path: Path) -> None:
    """The frame of an event the filter leaves out is checked all the same (its CRC fails)."""
    path = tmp_path / "log"
    with eventlog.open_log(str(path), segment_bytes=4096) as log:
        for i in range(120):
            log.append("skipped" if i % 2 else "kept", {"i": i, "text": f"payload {i:04d}"})
        assert len(os.listdir(path)) > 3  # several segments: the damage is in a sealed one
    first = sorted(p for p in path.iterdir() if p.suffix == ".seg")[0]
    data = bytearray(first.read_bytes())
    at = data.find(b"payload 0003")  # event 4: a "skipped" one
    assert at > 0
    data[at + 8] ^= 0x01
    first.write_bytes(bytes(data))
    select = _prefix_filter(6, ["skipped"])
    with eventlog.open_log(str(path), readonly=True) as log:
        with pytest.raises(CorruptionError):
            list(log.read_raw(1, 120, select))
