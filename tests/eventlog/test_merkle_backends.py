"""The Merkle tree each backend keeps at append (issue 14): proofs over REAL logs, and forgeries.

Every backend (memory, file, PostgreSQL: the ``make_log`` fixture) maintains the tree of
its events at append. The oracle is independent of it: the RFC 6962 root and proofs
recomputed from the log's own records (``read_raw``) with ``eventlog.merkle`` only.

The attacker of the forgery tests rewrites a log "the honest way": a new log of the same
backend with one event changed, dropped, or two swapped, written through the public
append API with the original timestamps, so its hash chain and checksums are all
recomputed and ``verify`` finds nothing wrong. Only the checkpoints an auditor kept from
the honest log catch it: the relevant proof fails.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlog.encoding import encode_event
from eventlog.errors import ProofError
from eventlog.merkle import event_leaf, leaf_hash, root_of, verify_consistency, verify_inclusion

T0 = 1_765_000_000_000_000_000
FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# One event: a kind and nested data (dicts, lists, numbers, strings), as workflows store.
events_strategy = st.lists(
    st.tuples(
        st.sampled_from(["routine_finished", "shared_data_set", "execution_recorded"]),
        st.fixed_dictionaries({"routine_id": st.sampled_from(["fetch", "parse", "store"]),
                               "out": st.recursive(st.integers(-5, 10**6) | st.text(max_size=8),
                                                   lambda c: st.lists(c, max_size=3)
                                                   | st.dictionaries(st.text(max_size=4), c, max_size=3),
                                                   max_leaves=6)}),
    ),
    min_size=1, max_size=60,
)


def write(log: Any, events: list[tuple[str, dict]], batches: list[int], tss: list[int] | None = None) -> list[int]:
    """Append ``events``: runs of the sizes in ``batches`` go in as one atomic batch. Returns their ts."""
    out: list[int] = []
    i = 0
    b = 0
    while i < len(events):
        n = max(1, min(batches[b % len(batches)] if batches else 1, len(events) - i))
        b += 1
        chunk = events[i : i + n]
        ts = tss[i] if tss is not None else T0 + i
        if n == 1:
            seq, got = log.append_encoded(encode_event(*chunk[0]), ts=ts)
            out.append(got)
        else:
            if tss is not None and len(set(tss[i : i + n])) > 1:
                for j, ev in enumerate(chunk):  # a forged copy keeps every original ts
                    log.append_encoded(encode_event(*ev), ts=tss[i + j])
                    out.append(tss[i + j])
            else:
                _, got = log.append_batch_encoded([encode_event(*ev) for ev in chunk], ts=ts)
                out.extend([got] * n)
        i += n
    return out


def oracle_leaves(log: Any, stop: int | None = None) -> list[bytes]:
    """The leaf hashes recomputed from the log's records, independently of its tree."""
    return [leaf_hash(event_leaf(seq, ts, ev)) for seq, ts, ev in log.read_raw(1, stop)]


def test_the_append_path_leaf_is_event_leaf() -> None:
    """The file log's inline leaf input is byte for byte ``LEAF_PREFIX + merkle.event_leaf``."""
    from eventlog import filelog
    from eventlog.merkle import LEAF_PREFIX

    for seq, ts, ev in [(1, 0, b"\x92\xa1k\x80"), (2**64 - 1, -(2**63), b""), (77, T0, b"x" * 300)]:
        assert filelog._pack_seq_ts(seq, ts) + ev == event_leaf(seq, ts, ev)
        assert filelog._pack_leaf_head(0, seq, ts) + ev == LEAF_PREFIX + event_leaf(seq, ts, ev)


@FIXTURE_OK
@given(events=events_strategy, batches=st.lists(st.integers(1, 5), max_size=6), data=st.data())
def test_every_proof_over_a_real_log_verifies(make_log: Any, events: list[tuple[str, dict]], batches: list[int],
                                             data: st.DataObject) -> None:
    """For random logs and random m <= n: roots are the RFC's, every inclusion and consistency proof verifies."""
    with make_log() as log:  # closed per example (a PostgreSQL log holds a connection)
        check_every_proof(log, events, batches, data)


def check_every_proof(log: Any, events: list[tuple[str, dict]], batches: list[int], data: st.DataObject) -> None:
    write(log, events, batches)
    n = log.head_seq
    assert n == len(events)
    leaves = oracle_leaves(log)
    assert log.merkle_root() == root_of(leaves)
    m = data.draw(st.integers(0, n), label="m")
    size = data.draw(st.integers(1, n), label="size")
    root_m, root_n, root_size = root_of(leaves[:m]), root_of(leaves), root_of(leaves[:size])
    assert log.merkle_root(m) == root_m
    verify_consistency(m, n, root_m, root_n, log.merkle_consistency(m, n))
    verify_consistency(m if m <= size else size, size, root_of(leaves[: min(m, size)]), root_size,
                       log.merkle_consistency(min(m, size), size))
    for seq in {1, size, data.draw(st.integers(1, size), label="seq")}:
        verify_inclusion(leaves[seq - 1], seq - 1, size, log.merkle_inclusion(seq, size), root_size)
        verify_inclusion(leaves[seq - 1], seq - 1, n, log.merkle_inclusion(seq), root_n)


def forge(events: list[tuple[str, dict]], tss: list[int], how: str, j: int) -> tuple[list, list[int]]:
    """The attacker's copy: event ``j`` (0-based) changed, dropped, or swapped with the next."""
    evs, times = list(events), list(tss)
    if how == "changed":
        kind, data = evs[j]
        evs[j] = (kind, {**data, "out": ["forged", data.get("out")]})
    elif how == "dropped":
        del evs[j]
        del times[j]
    else:  # "reordered": two neighbours swapped (each keeps its place's timestamp)
        evs[j], evs[j + 1] = evs[j + 1], evs[j]
    return evs, times


@FIXTURE_OK
@given(events=events_strategy.filter(lambda e: len(e) >= 2), batches=st.lists(st.integers(1, 4), max_size=4),
       how=st.sampled_from(["changed", "dropped", "reordered"]), data=st.data())
def test_a_single_forged_event_makes_the_relevant_proof_fail(make_log: Any, events: list[tuple[str, dict]],
                                                             batches: list[int], how: str,
                                                             data: st.DataObject) -> None:
    """Changed, dropped or reordered, with chain and checksums recomputed: the kept checkpoints refuse it."""
    with make_log() as honest, make_log() as forged:  # closed per example
        check_forgery(honest, forged, events, batches, how, data)


def check_forgery(honest: Any, forged: Any, events: list[tuple[str, dict]], batches: list[int], how: str,
                  data: st.DataObject) -> None:
    tss = write(honest, events, batches)
    n = honest.head_seq
    j = data.draw(st.integers(0, n - 2 if how == "reordered" else n - 1), label="j")
    m = data.draw(st.integers(1, n), label="m")
    kept_m, kept_n = honest.merkle_root(m), honest.merkle_root()  # what the auditor's checkpoints state
    evs, times = forge(events, tss, how, j)
    assume_real_change(events, evs)
    write(forged, evs, [], times)
    n2 = forged.head_seq
    leaves = oracle_leaves(forged)
    # Where the two logs part: usually j, earlier never, later when the edit repeats a
    # neighbour (dropping one of two equal events of a batch drops, in effect, the second).
    honest_records, forged_records = list(honest.read_raw()), list(forged.read_raw())
    j = next((i for i, (a, b) in enumerate(zip(honest_records, forged_records, strict=False)) if a != b), min(n, n2))
    k = min(n, n2)
    if j < k:
        # The forged event, with the forged log's own path, is not in the kept checkpoint of n events ...
        with pytest.raises(ProofError):
            verify_inclusion(leaves[j], j, n, forged.merkle_inclusion(j + 1, k), kept_n)
        # ... and the forged log's root at any size covering it is another root than the honest one.
        assert forged.merkle_root(k) != honest.merkle_root(k)
    if j < m <= n2:
        # No consistency proof connects the forged log to a kept checkpoint the change falls in.
        with pytest.raises(ProofError):
            verify_consistency(m, n2, kept_m, forged.merkle_root(), forged.merkle_consistency(m))
    if n2 < n:
        # A log that lost events cannot extend the checkpoint that counted them.
        with pytest.raises(ProofError):
            verify_consistency(n, n2, kept_n, forged.merkle_root(), forged.merkle_consistency(0))


def assume_real_change(before: list, after: list) -> None:
    """Skip draws where the "forgery" is the same log (two equal neighbours swapped)."""
    from hypothesis import assume

    assume(before != after)


# -- the file log: crash consistency, nothing rebuilt at open, forgeries on disk -----------------
def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the events the file log reads through ``read_raw`` (how catch-up feeds the tree)."""
    from eventlog.filelog import FileEventLog

    counter = [0]
    real = FileEventLog.read_raw

    def counting(self: Any, start: int = 1, stop: int | None = None) -> Any:
        for item in real(self, start, stop):
            counter[0] += 1
            yield item

    monkeypatch.setattr(FileEventLog, "read_raw", counting)
    return counter


def _committed_size(path: Any) -> int | None:
    from eventlog.merkle_store import decode_head

    head = path / "merkle" / "HEAD"
    return decode_head(head.read_bytes()).size if head.exists() else None


def test_a_reopened_file_log_rebuilds_nothing(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """After close, the store's HEAD covers every event: reopening reads no event to feed the tree."""
    import eventlog

    path = tmp_path / "log"
    log = eventlog.open_log(path, segment_bytes=8192)
    write(log, [("k", {"i": i, "pad": "x" * (i % 50)}) for i in range(3000)], [1, 3, 1, 7])
    root = log.merkle_root()
    log.close()
    assert _committed_size(path) == 3000
    reads = _count_reads(monkeypatch)
    again = eventlog.open_log(path)
    assert reads[0] == 0
    assert again.merkle_root() == root == root_of(oracle_leaves(again))
    again.close()


def test_a_file_log_opened_without_the_tree_is_caught_up_later(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """merkle=False skips the tree; the next writer that keeps it reads only the events it lacks."""
    import eventlog

    path = tmp_path / "log"
    with eventlog.open_log(path) as log:
        write(log, [("k", {"i": i}) for i in range(100)], [1])
    with eventlog.open_log(path, merkle=False) as log:
        write(log, [("k", {"i": i}) for i in range(100, 130)], [1], [T0 + 1000 + i for i in range(30)])
        with pytest.raises(eventlog.EventLogError, match="merkle=False"):
            log.merkle_root()
    reads = _count_reads(monkeypatch)
    with eventlog.open_log(path) as log:
        assert reads[0] == 30
        assert log.merkle_root() == root_of(oracle_leaves(log))


CHILD = r"""
import sys, eventlog, eventlog.filelog as fl
fl.TREE_COMMIT_EVENTS = int(sys.argv[2])
log = eventlog.open_log(sys.argv[1], durability=sys.argv[3], segment_bytes=16384)
i = 0
while True:
    if i % 5 == 4:
        log.append_batch([("b", {"i": i, "j": j}) for j in range(3)])
    else:
        log.append("a", {"i": i, "pad": "y" * (i % 40)})
    i += 1
    if i == 200:
        print("ready", flush=True)
"""


@pytest.mark.parametrize("mode", ["batch", "always"])
def test_kill9_leaves_a_tree_that_reopens_as_the_logs(tmp_path: Any, mode: str, rng: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer killed at random points: each reopen gives the log's tree, re-reading only the events past HEAD."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import eventlog

    path = tmp_path / "log"
    reads = _count_reads(monkeypatch)
    for _round in range(3):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), "97", mode], stdout=subprocess.PIPE,
                                 cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.3))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        committed = _committed_size(path) or 0
        reads[0] = 0
        log = eventlog.open_log(path)
        try:
            head = log.head_seq
            assert committed <= head
            assert reads[0] == head - committed  # only the events since the last commit were fed
            reads[0] = 0
            assert log.merkle_root() == root_of(oracle_leaves(log))
            assert _committed_size(path) == head  # the catch-up was committed
        finally:
            log.close()


def test_a_segment_rewritten_on_disk_is_not_believed_by_the_stale_tree(tmp_path: Any) -> None:
    """An attacker rewrites an event inside a segment with the format helpers (chain, CRCs, index
    recomputed) and leaves the tree's store: the anchor check rebuilds the tree from the forged
    log, so no proof for the auditor's kept checkpoint can be made from it."""
    import shutil

    import eventlog
    from eventlog import _frame
    from eventlog.chain import GENESIS, Chain

    path = tmp_path / "log"
    events = [("k", {"i": i, "who": "alice" if i == 5 else "bob"}) for i in range(40)]
    with eventlog.open_log(path, segment_bytes=1 << 20) as log:
        tss = write(log, events, [1])
        kept = log.merkle_root()
        honest_proof = log.merkle_inclusion(6)
    honest_leaf = leaf_hash(event_leaf(6, tss[5], encode_event(*events[5])))
    verify_inclusion(honest_leaf, 5, 40, honest_proof, kept)

    # The forgery: one segment of single-event frames, written with the project's helpers.
    seg = next(p for p in path.iterdir() if p.suffix == ".seg")
    forged_events = list(events)
    forged_events[5] = ("k", {"i": 5, "who": "mallory"})
    body = bytearray(_frame.pack_seg_header(1, 0, GENESIS, b""))
    link = GENESIS
    chain = Chain()
    for seq, (ev, ts) in enumerate(zip(forged_events, tss, strict=True), start=1):
        eb = encode_event(*ev)
        link = chain.next(link, seq, ts, eb)
        body += _frame.pack_frame([eb], seq, ts, link)
    seg.write_bytes(bytes(body))
    for idx in path.glob("*.idx"):
        idx.unlink()  # derived data an attacker would drop (or rebuild)
    shutil.rmtree(path / "snapshots", ignore_errors=True)
    assert eventlog.verify(path, audit=False).ok  # the log itself is a perfectly valid log ...
    stale = eventlog.verify(path)  # ... but its tree's store still holds the honest leaves
    assert [p.kind for p in stale.problems] == ["merkle"] and "leaf 5" in stale.problems[0].message

    with eventlog.open_log(path) as log:
        assert log.merkle_root() != kept
        assert log.merkle_root() == root_of(oracle_leaves(log))
        forged_leaf = leaf_hash(event_leaf(6, tss[5], encode_event(*forged_events[5])))
        with pytest.raises(ProofError):
            verify_inclusion(forged_leaf, 5, 40, log.merkle_inclusion(6), kept)
    # The proof the auditor got before still holds for the honest event.
    verify_inclusion(honest_leaf, 5, 40, honest_proof, kept)
