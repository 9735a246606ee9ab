"""T13 and threads: many appenders on one log, and optimistic concurrency races.

* Threads appending to one log (singly and in batches, in every durability mode of the
  file log) get contiguous, distinct seqs; every returned record reads back equal; a
  thread's own records are in its order.
* Threads racing with ``expected_seq`` = the head they saw: for each seq exactly one
  wins, every loser gets :class:`~eventlog.ConcurrencyError` naming the real head, and a
  loser's events are nowhere in the log.
* Threads reading while others append (and segments roll) always see a contiguous,
  correct prefix.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from eventlog import ConcurrencyError, Record

THREADS = 8
PER_THREAD = 60


def _run_threads(n: int, target: Any) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def wrapper(k: int) -> None:
        try:
            barrier.wait()
            target(k)
        except BaseException as exc:  # noqa: BLE001 - collected and reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=wrapper, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "an appending thread hung"
    return errors


@pytest.mark.parametrize("durability", ["always", "batch", "none"])
def test_threads_get_contiguous_distinct_seqs(make_log: Any, durability: str) -> None:
    """Concurrent appends (single and batch) produce seqs 1..N with no gap or duplicate, each readable and equal."""
    log = make_log(durability=durability, segment_bytes=8192)
    got: dict[int, list[Record]] = {k: [] for k in range(THREADS)}

    def work(k: int) -> None:
        for i in range(PER_THREAD):
            if i % 7 == 3:
                got[k].extend(log.append_batch([("b", {"t": k, "i": i, "j": j}) for j in range(3)]))
            else:
                got[k].append(log.append("a", {"t": k, "i": i, "pad": "z" * (i * k % 90)}))

    assert _run_threads(THREADS, work) == []
    every = [r for recs in got.values() for r in recs]
    total = len(every)
    assert sorted(r.seq for r in every) == list(range(1, total + 1))
    assert log.head_seq == total
    by_seq = {r.seq: r for r in every}
    assert list(log.read()) == [by_seq[s] for s in range(1, total + 1)]
    for k, recs in got.items():
        assert [r.seq for r in recs] == sorted(r.seq for r in recs), f"thread {k}'s records out of order"
        batches = [recs[i:i + 3] for i in range(len(recs)) if recs[i].kind == "b" and recs[i].data["j"] == 0]
        for b in batches:
            assert [r.seq for r in b] == [b[0].seq, b[0].seq + 1, b[0].seq + 2], "a batch was split"
            assert len({r.ts for r in b}) == 1
    ts = [r.ts for r in log.read()]
    assert ts == sorted(ts), "timestamps decrease"
    assert log.sync() == total


def test_expected_seq_race_has_exactly_one_winner_per_seq(make_log: Any) -> None:
    """Racing appends with expected_seq: one winner per seq, losers get ConcurrencyError and write nothing."""
    log = make_log(durability="batch")
    rounds = 40
    wins: list[tuple[int, int, int]] = []  # (seq, thread, attempt)
    losses: list[ConcurrencyError] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        attempt = 0
        while log.head_seq < rounds:
            attempt += 1
            seen = log.head_seq
            try:
                if attempt % 3 == 0:
                    recs = log.append_batch([("w", {"t": k, "a": attempt, "part": 0}),
                                             ("w", {"t": k, "a": attempt, "part": 1})], expected_seq=seen)
                else:
                    recs = [log.append("w", {"t": k, "a": attempt, "part": 0}, expected_seq=seen)]
            except ConcurrencyError as exc:
                assert exc.expected == seen and exc.actual > seen
                with lock:
                    losses.append(exc)
                continue
            assert recs[0].seq == seen + 1
            with lock:
                wins.extend((r.seq, k, attempt) for r in recs)

    assert _run_threads(THREADS, work) == []
    head = log.head_seq
    assert head >= rounds
    assert sorted(s for s, _, _ in wins) == list(range(1, head + 1)), "a seq has zero or several winners"
    owner = {s: (k, a) for s, k, a in wins}
    for rec in log.read():
        assert (rec.data["t"], rec.data["a"]) == owner[rec.seq], f"seq {rec.seq} holds a loser's event"
    # Losers wrote nothing: the log holds exactly the winners' events.
    assert len(list(log.read())) == len(wins)


def test_stale_expected_seq_writes_nothing(make_log: Any) -> None:
    """A writer holding a stale head (another appended meanwhile) is refused; nothing of it is stored."""
    log = make_log()
    log.append("a", {"who": "first"})
    seen = log.head_seq
    log.append("a", {"who": "other writer"})
    head_before = log.head_hash
    with pytest.raises(ConcurrencyError) as info:
        log.append_batch([("a", {"who": "stale"}), ("a", {"who": "stale"})], expected_seq=seen)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert log.head_hash == head_before
    assert [r.data["who"] for r in log.read()] == ["first", "other writer"]


def test_readers_during_appends_see_consistent_prefixes(make_log: Any) -> None:
    """Threads reading while others append (and segments roll) always see a contiguous, correct prefix."""
    log = make_log(durability="batch", segment_bytes=4096)
    stop = threading.Event()
    seen_heads: list[int] = []

    def writer(k: int) -> None:
        for i in range(150):
            log.append("w", {"t": k, "i": i, "pad": "p" * (i % 70)})

    def reader() -> None:
        done = 0
        while not stop.is_set() or done < 3:  # at least a few reads, however fast the writers are
            done += 1
            recs = list(log.read())
            assert [r.seq for r in recs] == list(range(1, len(recs) + 1))
            for r in recs:
                assert r.data["pad"] == "p" * (r.data["i"] % 70)
            if recs:
                last = recs[-1]
                assert log.get(last.seq) == last
                assert log.seq_at_time(last.ts) >= last.seq
            seen_heads.append(len(recs))

    writers_left = [4]
    left_lock = threading.Lock()

    def work(k: int) -> None:
        if k < 2:
            reader()
            return
        try:
            writer(k)
        finally:
            with left_lock:
                writers_left[0] -= 1
                if writers_left[0] == 0:
                    stop.set()

    errors = _run_threads(6, work)
    assert errors == []
    assert log.head_seq == 4 * 150
    assert len(seen_heads) >= 6
    assert sorted((r.data["t"], r.data["i"]) for r in log.read()) == [(k, i) for k in range(2, 6) for i in range(150)]
