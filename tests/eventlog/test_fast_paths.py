"""Snapshot retention, ``append_encoded``, lazy bundle decoding and group commit.

Retention: the file log keeps the newest few snapshots plus a sparse ladder of older
ones, so the state at any seq is one snapshot plus at most ``snapshot_gap`` events.
``append_encoded`` is the trusted fast path other layers use: it must give the same
records, bytes and hash chain as ``append``.
"""

from __future__ import annotations

import os
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

import eventlog
from eventlog import (
    BundleError,
    ConcurrencyError,
    InMemoryEventLog,
    RecordDecodeError,
    RecordTooLargeError,
)
from eventlog.encoding import MAX_RECORD_BYTES, encode_event
from eventlog.filelog import snapshots_to_prune

T0 = 1_700_000_000_000_000_000


def _kept_gaps(seqs: list[int], doomed: set[int]) -> list[tuple[int, int]]:
    """Consecutive (earlier, later) pairs of kept snapshots, seq 0 standing in first."""
    kept = [0] + [s for s in seqs if s not in doomed]
    return list(zip(kept, kept[1:], strict=False))


# -- the retention policy itself ------------------------------------------------------

@given(
    steps=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=60),
    keep=st.integers(min_value=1, max_value=5),
    gap=st.integers(min_value=1, max_value=1000),
)
def test_pruning_after_every_save_keeps_a_bounded_gap_ladder(steps: list[int], keep: int, gap: int) -> None:
    """Saved one by one and pruned after each: the newest ``keep`` survive, and every gap
    between kept neighbours is <= ``gap`` unless two saves were already further apart."""
    on_disk: list[int] = []
    seq = 0
    for step in steps:
        seq += step
        on_disk.append(seq)
        doomed = snapshots_to_prune(on_disk, keep, gap)
        assert not doomed & set(on_disk[-keep:]), "one of the newest snapshots was deleted"
        on_disk = [s for s in on_disk if s not in doomed]
    everything = [sum(steps[: i + 1]) for i in range(len(steps))]
    widest_save_gap = max(b - a for a, b in zip([0, *everything], everything, strict=False))
    for a, b in _kept_gaps(on_disk, set()):
        assert b - a <= max(gap, widest_save_gap), f"kept snapshots {a} and {b} are too far apart"
    assert on_disk[-keep:] == everything[-keep:]


@given(seqs=st.lists(st.integers(min_value=1, max_value=10**6), min_size=0, max_size=40, unique=True),
       keep=st.integers(min_value=1, max_value=4))
def test_gap_zero_keeps_all_and_none_keeps_only_the_newest(seqs: list[int], keep: int) -> None:
    seqs.sort()
    assert snapshots_to_prune(seqs, keep, 0) == set()
    assert snapshots_to_prune(seqs, keep, None) == set(seqs[: max(0, len(seqs) - keep)])


def test_dense_snapshots_are_thinned_to_about_one_per_gap() -> None:
    """Snapshots every 100 seqs over 100k seqs with a 5k gap: a few dozen survive, not 1000."""
    on_disk: list[int] = []
    for seq in range(100, 100_001, 100):
        on_disk.append(seq)
        doomed = snapshots_to_prune(on_disk, 3, 5000)
        on_disk = [s for s in on_disk if s not in doomed]
    assert 20 <= len(on_disk) <= 2 * 100_000 // 5000 + 3
    assert all(b - a <= 5000 for a, b in _kept_gaps(on_disk, set()))


# -- retention in the file log ----------------------------------------------------------

def _snap_files(path: str) -> list[int]:
    names = sorted(os.listdir(os.path.join(path, "snapshots")))
    return [int(n[5:25]) for n in names if n.endswith(".snap")]


def test_file_log_keeps_a_snapshot_within_the_gap_of_every_seq(tmp_path) -> None:
    path = str(tmp_path / "log")
    with eventlog.open_log(path, durability="none", keep_snapshots=2, snapshot_gap=50) as log:
        for i in range(1, 601):
            log.append("tick", {"i": i})
            if i % 10 == 0:
                log.save_snapshot({"upto": i}, schema_version=1)
        kept = _snap_files(path)
        assert kept[-2:] == [590, 600]
        assert len(kept) <= 2 * 600 // 50 + 2
        for k in range(0, 601):
            snap = log.latest_snapshot(max_seq=k)
            start = snap.seq if snap is not None else 0
            assert k - start <= 50, f"state at seq {k} needs {k - start} events of replay"
            if snap is not None:
                assert snap.state == {"upto": snap.seq}


@pytest.mark.parametrize(("gap", "expected"), [(None, [80, 90, 100]), (0, list(range(10, 101, 10)))])
def test_file_log_gap_none_keeps_newest_and_zero_keeps_all(tmp_path, gap: int | None, expected: list[int]) -> None:
    path = str(tmp_path / "log")
    with eventlog.open_log(path, durability="none", keep_snapshots=3, snapshot_gap=gap) as log:
        for i in range(1, 101):
            log.append("tick", {"i": i})
            if i % 10 == 0:
                log.save_snapshot({"upto": i}, schema_version=1)
    assert _snap_files(path) == expected


def test_default_retention_keeps_older_snapshots_on_a_long_log(tmp_path) -> None:
    """With the defaults, a snapshot far behind the head survives many newer saves."""
    path = str(tmp_path / "log")
    with eventlog.open_log(path, durability="none", segment_bytes=1 << 20) as log:
        for i in range(1, 30_001):
            log.append("tick", {"i": i})
            if i % 1000 == 0:
                log.save_snapshot({"upto": i}, schema_version=1)
        kept = _snap_files(path)
        assert kept[-eventlog.filelog.KEEP_SNAPSHOTS:] == [28_000, 29_000, 30_000]
        assert kept[0] <= eventlog.filelog.SNAPSHOT_GAP
        assert len(kept) < 10
        gap = eventlog.filelog.SNAPSHOT_GAP
        for k in (gap, gap + 500, 25_000, 27_999):
            snap = log.latest_snapshot(max_seq=k)
            assert snap is not None and k - snap.seq <= gap and snap.state == {"upto": snap.seq}


@pytest.mark.parametrize(("opt", "value"), [("keep_snapshots", 0), ("keep_snapshots", 1.5),
                                            ("snapshot_gap", -1), ("snapshot_gap", "10")])
def test_bad_retention_options_are_refused(tmp_path, opt: str, value: object) -> None:
    with pytest.raises(ValueError, match=opt):
        eventlog.open_log(str(tmp_path / "log"), **{opt: value})  # type: ignore[arg-type]
    assert not (tmp_path / "log").exists(), "a refused open must not create the log"


# -- append_encoded -----------------------------------------------------------------------

def test_append_encoded_matches_append(make_log) -> None:
    """Same records, same bytes, same head hash as the plain append of the same events."""
    plain = make_log()
    fast = make_log()
    events = [("tick", {"i": i, "txt": f"event {i}", "nested": {"x": [i, 1.5], "t": (i, None)}}) for i in range(1, 40)]
    for i, (kind, data) in enumerate(events, start=1):
        want = plain.append(kind, data, ts=T0 + i)
        got = fast.append_encoded(encode_event(kind, data), ts=T0 + i)
        assert got == (want.seq, want.ts)
        assert fast.get(want.seq) == want
    assert list(fast.read()) == list(plain.read())
    assert list(fast.read_raw()) == list(plain.read_raw())
    assert fast.head_hash == plain.head_hash


def test_append_encoded_expected_seq_mismatch_writes_nothing(make_log) -> None:
    log = make_log()
    log.append("a", {})
    event_bytes = encode_event("b", {"x": 1})
    with pytest.raises(ConcurrencyError):
        log.append_encoded(event_bytes, expected_seq=0)
    assert log.head_seq == 1
    seq, _ts = log.append_encoded(event_bytes, expected_seq=1)
    assert seq == 2 and log.get(2).data == {"x": 1}


def test_append_encoded_refuses_oversized_bytes(make_log) -> None:
    log = make_log()
    big = b"\x92\xa1a" + b"\xc0" * (MAX_RECORD_BYTES + 1)
    with pytest.raises(RecordTooLargeError):
        log.append_encoded(big)
    assert log.head_seq == 0


def test_append_encoded_survives_reopen(tmp_path) -> None:
    path = str(tmp_path / "log")
    with eventlog.open_log(path) as log:
        seqs = [log.append_encoded(encode_event("k", {"i": i}))[0] for i in range(100)]
    with eventlog.open_log(path, readonly=True) as log:
        assert [(r.seq, r.data) for r in log.read()] == [(s, {"i": i}) for i, s in enumerate(seqs)]
    assert eventlog.verify(path).ok



def test_appender_appends_as_append_encoded_does(make_log) -> None:
    """Every backend's ``appender()`` gives the records, bytes and head hash of ``append_encoded``."""
    plain = make_log()
    fast = make_log()
    lock = threading.RLock()
    append = fast.appender(lock)
    for i in range(1, 30):
        event_bytes = encode_event("tick", {"i": i, "nested": {"x": [i, 1.5]}})
        want = plain.append_encoded(event_bytes, expected_seq=i - 1, ts=T0 + i)
        with lock:
            got = append(event_bytes, expected_seq=i - 1, ts=T0 + i)
        assert got == want
    with lock, pytest.raises(ConcurrencyError):
        append(encode_event("late", {}), expected_seq=0)
    assert list(fast.read_raw()) == list(plain.read_raw())
    assert fast.head_hash == plain.head_hash


def test_memory_appender_under_the_logs_own_lock_skips_it_and_stays_thread_safe() -> None:
    """Given the lock the log was built with, the appender does not take it again: threads
    that hold that lock around each call still append every event exactly once, in order."""
    lock = threading.RLock()
    log = InMemoryEventLog(lock=lock)
    append = log.appender(lock)
    assert append != log.append_encoded  # the variant without its own acquisition
    other = InMemoryEventLog()
    assert other.appender(lock) == other.append_encoded  # not its lock: the locking append

    def writer(w: int) -> None:
        for i in range(300):
            with lock:
                seq, _ts = append(encode_event("w", {"w": w, "i": i}), expected_seq=log.head_seq)
                assert seq == log.head_seq

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = list(log.read())
    assert [r.seq for r in records] == list(range(1, 1201))
    for w in range(4):
        assert [r.data["i"] for r in records if r.data["w"] == w] == list(range(300))
    tss = [r.ts for r in records]
    assert tss == sorted(tss)

# -- bundles decode lazily -------------------------------------------------------------------

def test_bundle_with_an_undecodable_event_fails_on_read_or_with_check_events(tmp_path) -> None:
    """A bundle whose frames and chain are sound but whose event bytes are not msgpack
    opens (events decode when read) and raises RecordDecodeError on reading that event;
    check_events=True refuses it at once."""
    src = InMemoryEventLog()
    src.append("ok", {"i": 1})
    src.append_encoded(b"\x92\xa3bad\xc1")  # 0xc1 is never valid msgpack
    src.append("ok", {"i": 3})
    path = tmp_path / "b.bundle"
    eventlog.write_bundle(path, src)
    log, _snap = eventlog.read_bundle(path)
    assert log.head_hash == src.head_hash
    assert log.get(1).data == {"i": 1} and log.get(3).data == {"i": 3}
    with pytest.raises(RecordDecodeError):
        log.get(2)
    with pytest.raises(BundleError, match="seq 2"):
        eventlog.read_bundle(path, check_events=True)


def test_bundle_round_trip_reads_every_record(tmp_path, rng) -> None:
    src = InMemoryEventLog()
    for i in range(3000):
        src.append("k", {"i": i, "v": rng.random(), "s": "x" * rng.randrange(50)})
    eventlog.write_bundle(tmp_path / "b", src)
    for check in (False, True):
        log, _ = eventlog.read_bundle(tmp_path / "b", check_events=check)
        assert list(log.read()) == list(src.read())
        assert log.head_hash == src.head_hash


# -- group commit -----------------------------------------------------------------------------

def test_always_mode_with_many_threads_is_durable_on_every_return(tmp_path) -> None:
    """Group commit shares fsyncs, but every append returns only once it is durable."""
    path = str(tmp_path / "log")
    log = eventlog.open_log(path, durability="always")
    failures: list[str] = []
    barrier = threading.Barrier(6)

    def work(t: int) -> None:
        barrier.wait()
        for i in range(60):
            rec = log.append("w", {"t": t, "i": i})
            if log.durable_seq < rec.seq:
                failures.append(f"seq {rec.seq} returned before it was durable ({log.durable_seq})")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    log.close()
    assert failures == []
    with eventlog.open_log(path, readonly=True) as again:
        recs = list(again.read())
    assert [r.seq for r in recs] == list(range(1, 361))
    for t in range(6):
        assert [r.data["i"] for r in recs if r.data["t"] == t] == list(range(60))
