"""T8: time travel through snapshots is exact (Hypothesis property, both backends).

A projection is rebuilt at seq ``s`` as *the newest snapshot at or below s, then the
fold of the records after it up to s* (eventsourcing's ``lte``/``gt`` pattern). For random
event sequences, snapshot intervals {1, 7, 50} and random target seqs, that must equal
the fold of ``events[:s]`` computed directly. Snapshots that must not be used (another
schema version, or a damaged file) change nothing.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

import eventlog
from eventlog import _fs

SCHEMA = 1
INITIAL: dict[str, Any] = {"n": 0, "acc": 0, "kinds": {}}
MOD = 1_000_003


def apply(state: dict[str, Any], kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """One step of a deliberately order-sensitive fold (pure; returns a new state)."""
    v = data["v"]
    acc = state["acc"]
    if kind == "add":
        acc = (acc + v) % MOD
    elif kind == "mul":
        acc = (acc * v) % MOD
    elif kind == "set":
        acc = v
    kinds = dict(state["kinds"])
    kinds[kind] = kinds.get(kind, 0) + 1
    return {"n": state["n"] + 1, "acc": acc, "kinds": kinds}


def fold(events: list[tuple[str, dict[str, Any]]], state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fold events onto ``state`` (default: the initial state)."""
    state = INITIAL if state is None else state
    for kind, data in events:
        state = apply(state, kind, data)
    return state


def state_at(log: eventlog.EventLog, s: int) -> dict[str, Any]:
    """Rebuild the projection at seq ``s`` from the newest usable snapshot plus the tail."""
    snap = log.latest_snapshot(max_seq=s, schema_version=SCHEMA)
    if snap is None:
        base, start = INITIAL, 1
    else:
        assert snap.seq <= s
        assert snap.link == log.link_at(snap.seq)
        base, start = snap.state, snap.seq + 1
    recs = list(log.read(start, s))
    assert [r.seq for r in recs] == list(range(start, s + 1))
    return fold([(r.kind, r.data) for r in recs], base)


events_st = st.lists(
    st.tuples(st.sampled_from(["add", "mul", "set", "noop"]), st.integers(min_value=-50, max_value=10**6)),
    max_size=120,
)


def _noop_sync(fd: int) -> None:
    """Stands in for fsync: durability is not what this property is about, speed is."""


@pytest.mark.parametrize("backend", ["memory", "file"])
@given(events=events_st, interval=st.sampled_from([1, 7, 50]), batches=st.lists(st.integers(1, 4), max_size=60),
       data=st.data())
def test_snapshot_plus_tail_equals_full_fold(backend: str, events: list[tuple[str, int]], interval: int,
                                             batches: list[int], data: st.DataObject) -> None:
    """latest_snapshot(max_seq=s) + fold of read(snap.seq+1, s) == fold(events[:s]) for every tried s."""
    evs = [(kind, {"v": v}) for kind, v in events]
    with tempfile.TemporaryDirectory() as tmp, \
            mock.patch.object(_fs, "fsync", _noop_sync), mock.patch.object(_fs, "fdatasync", _noop_sync):
        path = os.path.join(tmp, "log")
        log = eventlog.InMemoryEventLog() if backend == "memory" else eventlog.open_log(path, segment_bytes=4096)
        try:
            # Append in random batch sizes; snapshot the fold whenever a multiple of the
            # interval has been passed (snapshots sit on frame boundaries).
            i = 0
            sizes = iter(batches)
            while i < len(evs):
                chunk = evs[i: i + next(sizes, 1)]
                if len(chunk) == 1:
                    log.append(*chunk[0])
                else:
                    log.append_batch(chunk)
                before, i = i, i + len(chunk)
                if i // interval > before // interval:
                    log.save_snapshot(fold(evs[:i]), schema_version=SCHEMA)
                elif i % 2:
                    # A decoy of another schema version, which must never be used. (Not at
                    # a seq with a real snapshot: a snapshot replaces any other at its seq.)
                    log.save_snapshot({"n": -1, "acc": -1, "kinds": {"decoy": 1}}, schema_version=SCHEMA + 1)
            n = len(evs)
            assert log.head_seq == n
            if n <= 40:
                targets = set(range(n + 1))
            else:
                targets = {0, n, *data.draw(st.lists(st.integers(0, n), min_size=10, max_size=20), label="targets")}
            for s in sorted(targets):
                assert state_at(log, s) == fold(evs[:s]), f"state at seq {s}"

            if backend == "file":
                snap_dir = os.path.join(path, "snapshots")
                files = sorted(f for f in os.listdir(snap_dir) if f.endswith(".snap")) if os.path.isdir(snap_dir) else []
                if files:
                    victim = os.path.join(snap_dir, data.draw(st.sampled_from(files), label="victim"))
                    with open(victim, "r+b") as fh:
                        blob = bytearray(fh.read())
                        pos = data.draw(st.integers(0, len(blob) - 1), label="flip at")
                        blob[pos] ^= 1 << data.draw(st.integers(0, 7), label="bit")
                        fh.seek(0)
                        fh.write(blob)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # a skipped snapshot warns by design
                        for s in sorted(targets):
                            assert state_at(log, s) == fold(evs[:s]), f"state at seq {s} after damaging {victim}"
                        log.close()
                        again = eventlog.open_log(path, segment_bytes=4096)
                        try:
                            for s in sorted(targets):
                                assert state_at(again, s) == fold(evs[:s]), f"after reopen, state at seq {s}"
                        finally:
                            again.close()
        finally:
            log.close()
