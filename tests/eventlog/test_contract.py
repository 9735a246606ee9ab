"""The EventLog contract, run against every backend (the ``make_log`` fixture).

Each test states one behaviour a user of :class:`eventlog.base.EventLog` relies on,
whatever the storage: seqs, ranges, time lookup, follow, optimistic concurrency,
timestamps, closing, snapshots and the hash chain.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import threading
import time

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import eventlog
from eventlog import GENESIS, ConcurrencyError, InMemoryEventLog, LogClosedError, Record
from eventlog.chain import next_link
from eventlog.encoding import encode_event

T0 = 1_700_000_000_000_000_000  # a fixed epoch-ns base for explicit timestamps


def _fill(log: eventlog.EventLog, n: int, *, ts_step: int = 10) -> list[Record]:
    """Append ``n`` events with explicit, strictly increasing timestamps."""
    return [log.append("tick", {"i": i, "txt": f"event {i}"}, ts=T0 + i * ts_step) for i in range(1, n + 1)]


def _expected_chain(items: list[tuple[int, str, dict]], key: bytes = b"") -> list[bytes]:
    """Links 0..n computed independently from (ts, kind, data) triples."""
    links = [GENESIS]
    for seq, (ts, kind, data) in enumerate(items, start=1):
        links.append(next_link(links[-1], seq, ts, encode_event(kind, data), key))
    return links


# -- append and batch -------------------------------------------------------------

def test_empty_log_state(make_log) -> None:
    """A new log is empty: head seq 0, head ts 0, genesis hash, nothing to read."""
    log = make_log()
    assert (log.head_seq, log.head_ts, log.head_hash) == (0, 0, GENESIS)
    assert log.head_hash_hex == "0" * 32
    assert list(log.read()) == []
    assert len(log) == 0
    assert log.latest_snapshot() is None
    assert log.snapshots() == []


def test_append_assigns_contiguous_seqs_from_one(make_log) -> None:
    """Seqs start at 1 and grow by one per event; the head follows."""
    log = make_log()
    recs = [log.append("k", {"n": n}) for n in range(5)]
    assert [r.seq for r in recs] == [1, 2, 3, 4, 5]
    assert log.head_seq == 5
    assert log.head_ts == recs[-1].ts
    assert [r.data["n"] for r in log.read()] == [0, 1, 2, 3, 4]


def test_append_returns_decoded_copy_equal_to_what_is_read(make_log) -> None:
    """The record returned equals, types included, the record read back; later mutation of the input is not seen."""
    log = make_log()
    when = dt.datetime(2026, 11, 28, 7, 0, 1, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    data = {"t": (1, 2), "b": b"\x00\xff", "f": 1.5, "i": -(2**63), "u": 2**64 - 1, "s": "é",
            "n": None, "ok": True, "when": when, "nested": {"l": [[], {}]}}
    rec = log.append("mixed", data)
    data["t"] = "mutated"
    data["nested"]["l"].append(1)
    assert rec.data["t"] == (1, 2) and type(rec.data["t"]) is tuple  # tuples come back as tuples
    assert rec.data["nested"] == {"l": [[], {}]}
    assert rec.data["when"] == when and rec.data["when"].utcoffset() == dt.timedelta(hours=2)
    (read_back,) = list(log.read())
    assert read_back == rec
    assert {k: type(v) for k, v in read_back.data.items()} == {k: type(v) for k, v in rec.data.items()}
    assert log.get(1) == rec


def test_batch_is_contiguous_and_shares_one_ts(make_log) -> None:
    """A batch gets consecutive seqs after the head and one common timestamp."""
    log = make_log()
    log.append("first", {})
    batch = log.append_batch([("a", {"x": 1}), ("b", {"x": 2}), ("c", {"x": 3})])
    assert [r.seq for r in batch] == [2, 3, 4]
    assert [r.kind for r in batch] == ["a", "b", "c"]
    assert len({r.ts for r in batch}) == 1
    assert list(log.read(2)) == batch
    assert log.head_seq == 4


def test_batch_from_a_generator_is_all_or_nothing(make_log) -> None:
    """A batch given as a one-shot iterator is either appended and returned whole, or refused with nothing written."""
    log = make_log()
    try:
        events = (("g", {"i": i}) for i in range(3))
        recs = log.append_batch(events)  # type: ignore[arg-type]
    except TypeError:
        assert log.head_seq == 0, "the batch was refused, yet written"
        return
    assert [r.seq for r in recs] == [1, 2, 3], f"returned {recs} for a batch that wrote {log.head_seq} events"
    assert list(log.read()) == recs


def test_empty_batch_is_refused_and_writes_nothing(make_log) -> None:
    """``append_batch([])`` raises ValueError and leaves the log as it was."""
    log = make_log()
    log.append("a", {})
    head = log.head_hash
    with pytest.raises(ValueError):
        log.append_batch([])
    assert (log.head_seq, log.head_hash) == (1, head)


def test_bad_kind_is_refused(make_log) -> None:
    """The kind must be a non-empty str; anything else is an encoding error and nothing is written."""
    log = make_log()
    for bad in ("", 5, None, b"k"):
        with pytest.raises(eventlog.EventEncodingError):
            log.append(bad, {})  # type: ignore[arg-type]
    assert log.head_seq == 0


# -- reading ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("start", "stop", "expected"),
    [
        (1, None, list(range(1, 11))),
        (4, None, list(range(4, 11))),
        (4, 6, [4, 5, 6]),
        (6, 6, [6]),
        (0, 2, [1, 2]),
        (-5, 1, [1]),
        (7, 3, []),
        (10, None, [10]),
        (11, None, []),
        (50, 60, []),
        (9, 100, [9, 10]),
        (1, 0, []),
    ],
)
def test_read_ranges(make_log, start: int, stop: int | None, expected: list[int]) -> None:
    """``read(start, stop)`` yields exactly the seqs in ``[start, stop]`` clipped to the log."""
    log = make_log()
    recs = _fill(log, 10)
    got = list(log.read(start, stop))
    assert [r.seq for r in got] == expected
    assert got == [recs[s - 1] for s in expected]


def test_get_missing_seq_raises_key_error(make_log) -> None:
    """``get`` of a seq outside the log raises KeyError."""
    log = make_log()
    _fill(log, 3)
    assert log.get(3).seq == 3
    for bad in (0, 4, 100):
        with pytest.raises(KeyError):
            log.get(bad)


def test_iteration_and_len(make_log) -> None:
    """Iterating a log reads it from the start; ``len`` is the head seq."""
    log = make_log()
    recs = _fill(log, 4)
    assert list(log) == recs
    assert len(log) == 4


def test_read_raw_bytes_are_the_canonical_event_encoding(make_log) -> None:
    """``read_raw`` yields (seq, ts, bytes of [kind, data]) for the requested range."""
    log = make_log()
    recs = _fill(log, 6)
    raw = list(log.read_raw(2, 4))
    assert [(s, t) for s, t, _ in raw] == [(r.seq, r.ts) for r in recs[1:4]]
    for (_, _, b), r in zip(raw, recs[1:4], strict=True):
        assert bytes(b) == encode_event(r.kind, r.data)
    assert [s for s, _, _ in log.read_raw()] == list(range(1, 7))
    assert list(log.read_raw(7)) == []


# -- seq_at_time ------------------------------------------------------------------

def test_seq_at_time_edges(make_log) -> None:
    """Highest seq with ts <= t: 0 before the first, ties go to the last equal, the head after the end."""
    log = make_log()
    assert log.seq_at_time(T0) == 0  # empty log
    log.append("a", {}, ts=T0 + 100)                                 # seq 1
    log.append_batch([("b", {}), ("c", {}), ("d", {})], ts=T0 + 200)  # seqs 2-4
    log.append("e", {}, ts=T0 + 200)                                 # seq 5, same ts
    log.append("f", {}, ts=T0 + 300)                                 # seq 6
    cases = {
        0: 0, T0: 0, T0 + 99: 0, T0 + 100: 1, T0 + 150: 1, T0 + 199: 1,
        T0 + 200: 5, T0 + 250: 5, T0 + 299: 5, T0 + 300: 6, T0 + 10**12: 6, 2**63 - 1: 6,
    }
    assert {t: log.seq_at_time(t) for t in cases} == cases


def test_seq_at_time_agrees_with_linear_scan(make_log, rng) -> None:
    """On many records with repeated timestamps, the lookup equals a linear scan."""
    log = make_log(segment_bytes=4096)
    ts = T0
    for i in range(300):
        ts += rng.choice([0, 0, 1, 5, 1000])
        log.append("x", {"i": i}, ts=ts)
    stamps = [r.ts for r in log.read()]
    for probe in [T0 - 1, *rng.sample(stamps, 40), *(s + 1 for s in rng.sample(stamps, 20)), ts + 1]:
        assert log.seq_at_time(probe) == sum(1 for s in stamps if s <= probe)


# -- timestamps -------------------------------------------------------------------

def test_ts_rules(make_log) -> None:
    """Explicit ts may repeat but not go back; it must be an int; the clock never goes below the head."""
    log = make_log()
    r1 = log.append("a", {}, ts=T0 + 50)
    assert r1.ts == T0 + 50
    assert log.append("b", {}, ts=T0 + 50).ts == T0 + 50  # equal is fine
    with pytest.raises(ValueError):
        log.append("c", {}, ts=T0 + 49)
    with pytest.raises(ValueError):
        log.append_batch([("c", {})], ts=T0)
    with pytest.raises(TypeError):
        log.append("c", {}, ts=float(T0 + 60))  # type: ignore[arg-type]
    assert log.head_seq == 2
    # A head in the future: automatic timestamps must not go below it.
    future = time.time_ns() + 3600 * 10**9
    log.append("d", {}, ts=future)
    auto = log.append("e", {})
    assert auto.ts >= future
    assert [r.ts for r in log.read()] == sorted(r.ts for r in log.read())


@pytest.mark.parametrize("bad_ts", [2**63, 2**64 + 3])
def test_ts_beyond_int64_is_refused(make_log, bad_ts: int) -> None:
    """A timestamp that does not fit the stored signed 64 bits is a ValueError, and nothing is written."""
    log = make_log()
    log.append("a", {}, ts=T0)
    before = (log.head_seq, log.head_ts, log.head_hash)
    with pytest.raises(ValueError):
        log.append("b", {}, ts=bad_ts)
    with pytest.raises(ValueError):
        log.append_batch([("b", {})], ts=bad_ts)
    assert (log.head_seq, log.head_ts, log.head_hash) == before
    assert log.append("c", {}).seq == 2
    assert log.save_snapshot({}, schema_version=1).link == log.head_hash


def test_automatic_ts_is_now(make_log) -> None:
    """Without an explicit ts, a record is stamped with the current time (ns)."""
    log = make_log()
    before = time.time_ns()
    rec = log.append("a", {})
    after = time.time_ns()
    assert before <= rec.ts <= after


# -- optimistic concurrency -------------------------------------------------------

def test_expected_seq_match_appends(make_log) -> None:
    """``expected_seq`` equal to the head lets the append through, for single events and batches."""
    log = make_log()
    assert log.append("a", {}, expected_seq=0).seq == 1
    assert [r.seq for r in log.append_batch([("b", {}), ("c", {})], expected_seq=1)] == [2, 3]
    assert log.append("d", {}, expected_seq=3).seq == 4


@pytest.mark.parametrize("expected", [0, 2, 4, 100, -1])
def test_expected_seq_mismatch_writes_nothing(make_log, expected: int) -> None:
    """A stale ``expected_seq`` raises ConcurrencyError naming both seqs, and writes nothing."""
    log = make_log()
    _fill(log, 3)
    before = (log.head_seq, log.head_ts, log.head_hash)
    with pytest.raises(ConcurrencyError) as info:
        log.append("x", {}, expected_seq=expected, ts=T0 + 10**6)
    assert (info.value.expected, info.value.actual) == (expected, 3)
    assert str(expected) in str(info.value) and "3" in str(info.value)
    with pytest.raises(ConcurrencyError):
        log.append_batch([("x", {}), ("y", {})], expected_seq=expected, ts=T0 + 10**6)
    assert (log.head_seq, log.head_ts, log.head_hash) == before
    assert log.append("ok", {}, expected_seq=3).seq == 4


# -- follow -----------------------------------------------------------------------

def _collect(log: eventlog.EventLog, start: int, want: int, out: list[int], timeout: float = 10.0) -> None:
    for rec in log.follow(start, timeout=timeout, poll_interval=0.005):
        out.append(rec.seq)
        if len(out) >= want:
            break


def test_follow_before_and_after_appends_never_skips_or_repeats(make_log) -> None:
    """Followers started before and during appends from another thread see each seq exactly once, in order."""
    log = make_log(segment_bytes=4096)
    total = 300
    early: list[int] = []
    late: list[int] = []
    t_early = threading.Thread(target=_collect, args=(log, 1, total, early))
    t_early.start()

    def writer() -> None:
        for i in range(total):
            if i % 10 == 3:
                log.append_batch([("b", {"i": i}), ("b", {"i": i})])
            else:
                log.append("a", {"i": i, "pad": "x" * (i % 50)})
            if log.head_seq >= total:
                break
            if i % 25 == 0:
                time.sleep(0.002)

    t_writer = threading.Thread(target=writer)
    t_writer.start()
    while log.head_seq < 40:
        time.sleep(0.001)
    t_late = threading.Thread(target=_collect, args=(log, 20, total - 19, late))
    t_late.start()
    for t in (t_writer, t_early, t_late):
        t.join(30)
        assert not t.is_alive()
    assert log.head_seq >= total
    assert early == list(range(1, total + 1))
    assert late == list(range(20, total + 1))


def test_follow_timeout_ends_when_idle(make_log) -> None:
    """With a timeout and no new records, follow yields what exists and then stops."""
    log = make_log()
    _fill(log, 3)
    assert [r.seq for r in log.follow(2, timeout=0.05, poll_interval=0.01)] == [2, 3]
    assert list(log.follow(4, timeout=0.05, poll_interval=0.01)) == []


def test_follow_start_edges(make_log) -> None:
    """follow(start) never yields a seq below start: 0 and negatives mean 1, a future start waits for it."""
    log = make_log()
    _fill(log, 3)
    assert [r.seq for r in log.follow(0, timeout=0.05, poll_interval=0.01)] == [1, 2, 3]
    assert [r.seq for r in log.follow(-7, timeout=0.05, poll_interval=0.01)] == [1, 2, 3]
    got: list[int] = []
    t = threading.Thread(target=_collect, args=(log, 6, 3, got))
    t.start()
    for i in range(4, 9):
        log.append("later", {"i": i}, ts=T0 + 1000 + i)
    t.join(10)
    assert not t.is_alive()
    assert got == [6, 7, 8]


def test_follow_without_timeout_ends_on_close(make_log) -> None:
    """A follower with ``timeout=None`` drains the log and ends when the log is closed."""
    log = make_log()
    seen: list[int] = []

    def follower() -> None:
        for rec in log.follow(1, timeout=None, poll_interval=0.01):
            seen.append(rec.seq)

    t = threading.Thread(target=follower, daemon=True)
    t.start()
    _fill(log, 5)
    while len(seen) < 5 and t.is_alive():
        time.sleep(0.005)
    log.close()
    t.join(10)
    assert not t.is_alive(), "follow(timeout=None) did not end after close()"
    assert seen == [1, 2, 3, 4, 5]


def test_follow_drains_records_appended_before_close(make_log) -> None:
    """A slow follower still gets every record appended before close(), then ends (as the in-memory log does)."""
    log = make_log()
    seen: list[int] = []
    started = threading.Event()

    def follower() -> None:
        for rec in log.follow(1, timeout=None, poll_interval=0.005):
            started.set()
            seen.append(rec.seq)
            time.sleep(0.01)  # a consumer slower than the producer

    t = threading.Thread(target=follower, daemon=True)
    t.start()
    log.append("a", {"i": 0})
    assert started.wait(10)
    for i in range(1, 20):
        log.append("a", {"i": i})
    log.close()
    t.join(10)
    assert not t.is_alive()
    assert seen == list(range(1, 21)), f"the follower stopped at {seen[-1] if seen else None} of 20"


# -- durability and close -----------------------------------------------------------

@pytest.mark.parametrize("durability", ["always", "batch", "none"])
def test_sync_returns_durable_head(make_log, durability: str) -> None:
    """``sync()`` makes everything appended durable and returns the head seq, in every mode."""
    log = make_log(durability=durability)
    _fill(log, 7)
    assert log.sync() == 7
    assert log.durable_seq == 7
    assert log.durability in eventlog.DURABILITY_MODES
    if make_log.is_file:
        assert log.durability == durability


def test_close_is_idempotent_and_refuses_writes(make_log) -> None:
    """After close: ``closed`` is True, close again is harmless, appends raise LogClosedError."""
    log = make_log()
    _fill(log, 2)
    assert not log.closed
    log.close()
    log.close()
    assert log.closed
    with pytest.raises(LogClosedError):
        log.append("a", {})
    with pytest.raises(LogClosedError):
        log.append_batch([("a", {})])


def test_snapshot_after_close_is_refused(make_log) -> None:
    """save_snapshot on a closed log raises LogClosedError, like an append, and stores nothing."""
    log = make_log()
    _fill(log, 2)
    log.close()
    with pytest.raises(LogClosedError):
        log.save_snapshot({"late": True}, schema_version=1)


def test_context_manager_closes(make_log) -> None:
    """``with log:`` closes the log on exit."""
    log = make_log()
    with log as same:
        same.append("a", {})
    assert log.closed


def test_file_log_reopen_reads_everything_back(tmp_path) -> None:
    """A closed file log reopens with identical records, head, chain and snapshot."""
    path = str(tmp_path / "log")
    log = eventlog.open_log(path, segment_bytes=4096)
    _fill(log, 120)
    log.save_snapshot({"n": 120}, schema_version=3)
    before = (list(log.read()), log.head_hash, log.head_ts)
    log.close()
    again = eventlog.open_log(path)
    try:
        assert (list(again.read()), again.head_hash, again.head_ts) == before
        assert again.latest_snapshot().state == {"n": 120}  # type: ignore[union-attr]
        assert again.append("next", {}).seq == 121
    finally:
        again.close()


# -- snapshots --------------------------------------------------------------------

def test_snapshots_latest_max_seq_and_schema_filter(make_log) -> None:
    """``latest_snapshot`` returns the newest at or below ``max_seq`` with the wanted schema."""
    log = make_log()
    recs = _fill(log, 3)
    s3 = log.save_snapshot({"upto": 3}, schema_version=1)
    _fill_more = [log.append("t", {"i": i}, ts=T0 + 1000 + i) for i in range(4, 9)]
    recs += _fill_more
    s8 = log.save_snapshot({"upto": 8, "v": 2}, schema_version=2)
    s6 = log.save_snapshot({"upto": 6}, schema_version=1, seq=6)
    assert (s3.seq, s6.seq, s8.seq) == (3, 6, 8)
    assert s3.ts == recs[2].ts and s8.ts == recs[7].ts and s6.ts == recs[5].ts
    assert s3.link == log.link_at(3) and s8.link == log.head_hash and s6.link == log.link_at(6)
    latest = log.latest_snapshot()
    assert latest is not None and (latest.seq, latest.state, latest.schema_version) == (8, {"upto": 8, "v": 2}, 2)
    assert log.latest_snapshot(max_seq=7).seq == 6  # type: ignore[union-attr]
    assert log.latest_snapshot(max_seq=5).seq == 3  # type: ignore[union-attr]
    assert log.latest_snapshot(max_seq=2) is None
    assert log.latest_snapshot(schema_version=1).seq == 6  # type: ignore[union-attr]
    assert log.latest_snapshot(schema_version=2, max_seq=7) is None
    assert log.latest_snapshot(schema_version=9) is None
    assert [s.seq for s in log.snapshots()] == [3, 6, 8]
    assert [s.state for s in log.snapshots()] == [{"upto": 3}, {"upto": 6}, {"upto": 8, "v": 2}]
    assert log.snapshot_seqs() == [3, 6, 8]  # listed without loading a state


def test_snapshot_of_empty_log_and_bad_seq(make_log) -> None:
    """A snapshot at seq 0 carries the genesis link; a seq past the head is refused."""
    log = make_log()
    s0 = log.save_snapshot({"empty": True}, schema_version=1)
    assert (s0.seq, s0.ts, s0.link) == (0, 0, GENESIS)
    _fill(log, 2)
    with pytest.raises(ValueError):
        log.save_snapshot({}, schema_version=1, seq=3)
    assert log.latest_snapshot().seq == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(("bad", "err"), [("1", TypeError), (1.0, TypeError), (True, TypeError), (2**63, ValueError)],
                         ids=["str", "float", "bool", "2**63"])
def test_snapshot_schema_version_is_validated(make_log, bad: object, err: type[Exception]) -> None:
    """schema_version must be an int that fits the stored 64 bits; anything else is refused and nothing stored."""
    log = make_log()
    _fill(log, 1)
    with pytest.raises(err):
        log.save_snapshot({"s": 1}, schema_version=bad)  # type: ignore[arg-type]
    assert log.snapshots() == []


def test_snapshot_state_is_validated(make_log) -> None:
    """A snapshot state that cannot be encoded is refused with an encoding error, and none is stored."""
    log = make_log()
    _fill(log, 1)
    with pytest.raises(eventlog.EventEncodingError):
        log.save_snapshot({"s": {1, object()}}, schema_version=1)
    assert log.snapshots() == []


# -- hash chain ---------------------------------------------------------------------

def test_head_hash_and_link_at_follow_the_chain(make_log) -> None:
    """``link_at`` and ``head_hash`` equal links recomputed from the events, for keyed and unkeyed logs."""
    for key in (None, b"k" * 32):
        log = make_log(key=key)
        items: list[tuple[int, str, dict]] = []
        for i in range(1, 6):
            items.append((T0 + i, "e", {"i": i}))
            log.append("e", {"i": i}, ts=T0 + i)
        log.append_batch([("b1", {"z": 1}), ("b2", {"z": 2})], ts=T0 + 9)
        items += [(T0 + 9, "b1", {"z": 1}), (T0 + 9, "b2", {"z": 2})]
        links = _expected_chain(items, key or b"")
        assert [log.link_at(s) for s in range(len(items) + 1)] == links
        assert log.head_hash == links[-1]
        for bad in (-1, len(items) + 1):
            with pytest.raises(KeyError):
                log.link_at(bad)
        # read_raw is what the chain covers
        relinked = [GENESIS]
        for seq, ts, b in log.read_raw():
            relinked.append(next_link(relinked[-1], seq, ts, bytes(b), key or b""))
        assert relinked == links


def test_key_changes_the_head_hash(make_log) -> None:
    """The same events under different keys (or none) give different heads."""
    heads = set()
    for key in (None, b"a", b"b"):
        log = make_log(key=key)
        log.append("e", {"x": 1}, ts=T0)
        heads.add(log.head_hash)
    assert len(heads) == 3


def test_head_hash_equal_across_backends(tmp_path, rng) -> None:
    """Identical events with identical timestamps give the same links on the memory and file logs, however batched."""
    events = [(f"k{rng.randrange(4)}", {"i": i, "v": rng.random(), "s": "x" * rng.randrange(300)})
              for i in range(200)]
    for key in (None, b"secret"):
        mem = InMemoryEventLog(key=key)
        fil = eventlog.open_log(str(tmp_path / f"log-{key!r}"), key=key, segment_bytes=4096)
        try:
            i = 0
            ts = T0
            while i < len(events):
                ts += rng.randrange(3)
                n = rng.choice([1, 1, 1, 3])
                chunk = events[i:i + n]
                # the memory log gets every event singly, the file log in batches
                for kind, data in chunk:
                    mem.append(kind, data, ts=ts)
                if len(chunk) == 1:
                    fil.append(*chunk[0], ts=ts)
                else:
                    fil.append_batch(chunk, ts=ts)
                i += n
            assert fil.head_hash == mem.head_hash
            assert fil.head_hash_hex == mem.head_hash_hex
            assert list(fil.read()) == list(mem.read())
            for s in (0, 1, 57, 150, 200):
                assert fil.link_at(s) == mem.link_at(s)
        finally:
            fil.close()
            mem.close()


# -- file-log durability modes --------------------------------------------------------

def test_file_always_mode_is_durable_on_return(tmp_path) -> None:
    """In "always" mode every append is durable when it returns."""
    log = eventlog.open_log(str(tmp_path / "log"), durability="always")
    try:
        assert log.durability == "always"
        for i in range(1, 6):
            log.append("a", {"i": i})
            assert log.durable_seq == i
        log.append_batch([("b", {}), ("b", {})])
        assert log.durable_seq == 7
    finally:
        log.close()


def test_file_batch_mode_flushes_without_sync(tmp_path) -> None:
    """In "batch" mode a background flush makes appends durable without any sync() call."""
    log = eventlog.open_log(str(tmp_path / "log"), durability="batch")
    try:
        assert log.durability == "batch"
        _fill(log, 20)
        deadline = time.monotonic() + 10  # liveness bound only; the design says "a few ms"
        while log.durable_seq < 20 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert log.durable_seq == 20, "the background flusher never made the appends durable"
    finally:
        log.close()


def test_file_open_options_are_checked(tmp_path) -> None:
    """Bad options are refused with a clear error; create=False on a missing log does not create it."""
    path = str(tmp_path / "log")
    with pytest.raises(ValueError):
        eventlog.open_log(path, durability="sometimes")
    missing = str(tmp_path / "missing")
    with pytest.raises((FileNotFoundError, eventlog.EventLogError)):
        eventlog.open_log(missing, create=False)
    assert not (tmp_path / "missing").exists()


# -- differential: the file log against the in-memory oracle --------------------------

_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=6,
)
_events = st.tuples(st.sampled_from(["a", "b", "long.kind.name"]), st.dictionaries(st.text(max_size=8), _values, max_size=4))


class FileMatchesMemory(RuleBasedStateMachine):
    """Drive a file log and an in-memory log with the same calls; they must always agree."""

    def __init__(self) -> None:
        super().__init__()
        # In RAM when possible: each example creates, fsyncs and reopens a log directory.
        ram = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        self.tmp = tempfile.mkdtemp(prefix="evlog-diff-", dir=ram)
        self.path = f"{self.tmp}/log"  # hypothesis runs many machines per test: one temp dir each
        self.ts = T0
        self.boundaries = [0]  # seqs that end a frame (file snapshots need one)
        self.file: eventlog.EventLog | None = None
        self.mem: InMemoryEventLog | None = None

    @initialize(key=st.sampled_from([None, b"secret key"]))
    def start(self, key: bytes | None) -> None:
        self.key = key
        self.mem = InMemoryEventLog(key=key)
        self.file = eventlog.open_log(self.path, key=key, segment_bytes=4096)

    @rule(event=_events, dt=st.integers(0, 3))
    def append(self, event: tuple[str, dict], dt: int) -> None:
        self.ts += dt
        a = self.file.append(*event, ts=self.ts)
        b = self.mem.append(*event, ts=self.ts)
        assert a == b
        self.boundaries.append(a.seq)

    @rule(events=st.lists(_events, min_size=1, max_size=5), dt=st.integers(0, 3))
    def append_batch(self, events: list[tuple[str, dict]], dt: int) -> None:
        self.ts += dt
        a = self.file.append_batch(events, ts=self.ts)
        b = self.mem.append_batch(events, ts=self.ts)
        assert a == b
        self.boundaries.append(a[-1].seq)

    @rule(off=st.sampled_from([-3, -2, -1, 1, 2, 3]))
    def stale_expected_seq(self, off: int) -> None:
        head = self.mem.head_seq
        for log in (self.file, self.mem):
            with pytest.raises(ConcurrencyError):
                log.append("x", {}, expected_seq=head + off, ts=self.ts)

    @rule(state=_values, pick=st.integers(0, 10**6), version=st.integers(0, 3), at_frame=st.booleans())
    def snapshot(self, state: object, pick: int, version: int, at_frame: bool) -> None:
        # a frame boundary, or any seq (inside a batch too)
        seq = self.boundaries[pick % len(self.boundaries)] if at_frame else pick % (self.mem.head_seq + 1)
        a = self.file.save_snapshot(state, schema_version=version, seq=seq)
        b = self.mem.save_snapshot(state, schema_version=version, seq=seq)
        assert a[:5] == b[:5]

    @rule()
    def reopen(self) -> None:
        self.file.close()
        self.file = eventlog.open_log(self.path, key=self.key, segment_bytes=4096)

    @rule(a=st.integers(-2, 400), b=st.integers(-2, 400) | st.none())
    def read_range(self, a: int, b: int | None) -> None:
        assert list(self.file.read(a, b)) == list(self.mem.read(a, b))
        assert [(s, t, bytes(x)) for s, t, x in self.file.read_raw(a, b)] == list(self.mem.read_raw(a, b))

    @rule(dt=st.integers(-2, 400))
    def time_lookup(self, dt: int) -> None:
        assert self.file.seq_at_time(T0 + dt) == self.mem.seq_at_time(T0 + dt)

    @rule(pick=st.integers(0, 10**6))
    def link_lookup(self, pick: int) -> None:
        seq = pick % (self.mem.head_seq + 1)
        assert self.file.link_at(seq) == self.mem.link_at(seq)

    @rule(max_seq=st.integers(0, 400) | st.none(), version=st.integers(0, 3) | st.none())
    def snapshot_lookup(self, max_seq: int | None, version: int | None) -> None:
        # The file log keeps only its newest few snapshots (a retention policy; the
        # memory log keeps all): every snapshot it kept must be the memory log's one at
        # that seq, and the lookup must pick the newest kept one that qualifies.
        kept = self.file.snapshots()
        every = {snap.seq: snap[:5] for snap in self.mem.snapshots()}
        assert [snap.seq for snap in kept] == sorted(snap.seq for snap in kept)
        for snap in kept:
            assert snap[:5] == every[snap.seq]
        assert len(kept) >= min(2, len(every)), "the file log kept fewer than 2 snapshots"
        fits = [snap for snap in kept if (max_seq is None or snap.seq <= max_seq)
                and (version is None or snap.schema_version == version)]
        got = self.file.latest_snapshot(max_seq=max_seq, schema_version=version)
        assert (got[:5] if got else None) == (fits[-1][:5] if fits else None)

    @invariant()
    def heads_agree(self) -> None:
        if self.mem is not None and self.file is not None:
            assert (self.file.head_seq, self.file.head_ts, self.file.head_hash) == (
                self.mem.head_seq, self.mem.head_ts, self.mem.head_hash)

    def teardown(self) -> None:
        if self.file is not None:
            self.file.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


TestFileMatchesMemory = FileMatchesMemory.TestCase
# Fewer steps per example than the default 50: each example still reopens several times,
# and the examples count comes from the profile in tests/conftest.py.
TestFileMatchesMemory.settings = settings(stateful_step_count=30)
