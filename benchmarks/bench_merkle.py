"""Benchmark the Merkle tree (issue 14): its cost per append, proof generation, proof sizes.

    python benchmarks/bench_merkle.py                    # 200k appends, 1M-leaf proofs
    python benchmarks/bench_merkle.py --quick            # small sizes, a sanity run

What it measures (medians of ``--runs`` interleaved runs, in this process):

1. The file log's append in ``"batch"`` durability (``eventlog.open_log``), the same
   ~130-byte nested events as ``bench_eventlog.py``: ``append`` and the trusted fast path
   ``append_encoded``. This is the baseline of the 1.15x target.
2. The same appends, each followed by what the tree costs at append time: the leaf
   preimage ``event_leaf(seq, ts, event_bytes)`` (the bytes the hash chain already
   hashes), queued on a :class:`MerkleTree` over a :class:`FileNodeStore` (hashed in
   batches of 256: leaf hashes, compact range, node hashes, buffered node writes),
   committed (fsync) at the end. Reported as µs per event and as the ratio to (1).
   Until part 2 the tree is fed beside the log, so ``append_encoded`` is what gives the
   tree the event's bytes without encoding them twice.
3. The tree's work alone, per leaf: one leaf at a time (``CompactRange.append``: a
   leaf hash and amortised one node hash in Python per leaf), batched in memory, and
   batched onto the file store (what 2 adds), with the closing commit's fsync and
   without it (nodes only written to the page cache): the difference is the disk's
   cost of 64 more bytes per event.
4. On a 1M-leaf file store (built once, committed, reopened): open time, and the
   time to make (and self-check) an inclusion proof, a consistency proof and a past
   root, at random indices and sizes: median, p99 and worst of ``--samples``. Also the time
   an auditor takes to verify one.
5. Proof sizes at 1M leaves: hashes per proof and bytes of the proof files (with a
   ~130-byte event); node-store bytes per leaf.

The machine is shared and noisy (2 cores, up to 8 engineers at once): compare figures
of the same run, and rerun before drawing conclusions.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import eventlog  # noqa: E402
from eventlog.checkpoint import Checkpoint  # noqa: E402
from eventlog.encoding import encode_event  # noqa: E402
from eventlog.merkle import CompactRange, event_leaf, leaf_hash, leaf_hashes, verify_inclusion  # noqa: E402
from eventlog.merkle_store import FileNodeStore, MemoryNodeStore  # noqa: E402
from eventlog.merkle_tree import MerkleTree  # noqa: E402
from eventlog.proof import make_consistency_proof, make_inclusion_proof  # noqa: E402

#: The clock of the per-append and per-proof figures: wall time by default; ``--clock cpu``
#: uses this process's CPU time (all threads), steadier on a loaded machine (a preempted
#: process is not charged for the wait) but blind to waiting for the disk.
_clock = time.perf_counter

EVENT = {
    "routine": "routine_0042",
    "kind": "execution_recorded",
    "n": 0,
    "data": {"value": 3.25, "status": "completed", "message": "processed item in 12 ms"},
}


def _events(n: int) -> list[dict]:
    out = []
    for i in range(n):
        ev = dict(EVENT)
        ev["n"] = i
        out.append(ev)
    return out


def append_plain(d: str, evs: list[dict]) -> float:
    """µs per ``append`` on a fresh "batch" file log (close included: it syncs)."""
    path = os.path.join(d, "plain")
    shutil.rmtree(path, ignore_errors=True)
    log = eventlog.open_log(path, durability="batch")
    append = log.append
    t = _clock()
    for ev in evs:
        append("exec", ev)
    log.close()
    return (_clock() - t) / len(evs) * 1e6


def append_encoded(d: str, encoded: list[tuple[bytes, dict]], tree_dir: str | None) -> float:
    """µs per ``append_encoded``, with the tree fed too when ``tree_dir`` is given."""
    path = os.path.join(d, "encoded")
    shutil.rmtree(path, ignore_errors=True)
    log = eventlog.open_log(path, durability="batch")
    append = log.append_encoded
    if tree_dir is None:
        t = _clock()
        for event_bytes, _data in encoded:
            append(event_bytes)
        log.close()
        return (_clock() - t) / len(encoded) * 1e6
    shutil.rmtree(tree_dir, ignore_errors=True)
    tree = MerkleTree(FileNodeStore(tree_dir))
    add = tree.append
    t = _clock()
    for event_bytes, _data in encoded:
        seq, ts = append(event_bytes)
        add(event_leaf(seq, ts, event_bytes))
    log.close()
    tree.commit(log.head_hash)
    dt = _clock() - t
    tree.close()
    return dt / len(encoded) * 1e6


def append_with_tree(d: str, evs: list[dict], tree_dir: str) -> float:
    """µs per ``append`` + feeding the tree (the event re-encoded for its bytes, as a caller outside the log must)."""
    path = os.path.join(d, "plain-tree")
    shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(tree_dir, ignore_errors=True)
    log = eventlog.open_log(path, durability="batch")
    tree = MerkleTree(FileNodeStore(tree_dir))
    append = log.append
    add = tree.append
    t = _clock()
    for ev in evs:
        rec = append("exec", ev)
        add(event_leaf(rec.seq, rec.ts, encode_event("exec", rec.data)))
    log.close()
    tree.commit(log.head_hash)
    dt = _clock() - t
    tree.close()
    return dt / len(evs) * 1e6


def tree_alone(preimages: list[bytes], how: str, d: str) -> float:
    """µs per leaf of the tree's own work (leaf hash, compact range, node storage)."""
    n = len(preimages)
    if how == "one at a time":
        rng = CompactRange()
        store = MemoryNodeStore()
        add = rng.append
        sink = store.add
        t = _clock()
        for p in preimages:
            add(leaf_hash(p), sink)
        return (_clock() - t) / n * 1e6
    if how == "batched, memory store":
        tree = MerkleTree(MemoryNodeStore())
        add = tree.append
        t = _clock()
        for p in preimages:
            add(p)
        tree.root()
        return (_clock() - t) / n * 1e6
    path = os.path.join(d, "alone")
    shutil.rmtree(path, ignore_errors=True)
    tree = MerkleTree(FileNodeStore(path))
    add = tree.append
    t = _clock()
    for p in preimages:
        add(p)
    if how == "batched, file store, written":
        tree.store.flush()  # type: ignore[attr-defined]  # written to the page cache, no fsync
    else:
        tree.commit()
    dt = _clock() - t
    tree.close()
    return dt / n * 1e6


def build_big(path: str, n: int) -> tuple[float, list[bytes]]:
    """A committed n-leaf file store of event-like leaves; returns (seconds, a few preimages)."""
    shutil.rmtree(path, ignore_errors=True)
    tree = MerkleTree(FileNodeStore(path))
    event_bytes = encode_event("exec", EVENT)
    t = time.perf_counter()
    chunk = 1 << 16
    for start in range(0, n, chunk):
        tree.extend(event_leaf(seq, seq, event_bytes) for seq in range(start + 1, min(start + chunk, n) + 1))
    tree.commit()
    dt = time.perf_counter() - t
    tree.close()
    return dt, [event_bytes]


def _ms(xs: list[float]) -> str:
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    return (f"median {statistics.median(xs) * 1e3:7.3f} ms   p99 {p99 * 1e3:7.3f} ms   "
            f"worst {xs[-1] * 1e3:7.3f} ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000, help="appends per run")
    ap.add_argument("--runs", type=int, default=5, help="interleaved runs per figure; medians are printed")
    ap.add_argument("--leaves", type=int, default=1_000_000, help="leaves of the proof-generation store")
    ap.add_argument("--samples", type=int, default=300, help="proofs timed on the big store")
    ap.add_argument("--quick", action="store_true", help="small sizes: a sanity run in seconds")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="clock of the per-append figures (cpu: process CPU time, steadier when the machine is busy)")
    args = ap.parse_args(argv)
    global _clock
    _clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.quick:
        args.events, args.runs, args.leaves, args.samples = 20_000, 3, 50_000, 50
    rnd = random.Random(14)
    d = tempfile.mkdtemp(prefix="bench-merkle-")
    try:
        evs = _events(args.events)
        encoded = [(encode_event("exec", ev), ev) for ev in evs]
        avg = statistics.mean(len(b) for b, _ in encoded)
        preimages = [event_leaf(i + 1, 1_765_000_000_000_000_000 + i, b) for i, (b, _) in enumerate(encoded)]
        tree_dir = os.path.join(d, "tree")
        figures: dict[str, list[float]] = {}
        runs = {
            "append": lambda: append_plain(d, evs),
            "append + tree": lambda: append_with_tree(d, evs, tree_dir),
            "append_encoded": lambda: append_encoded(d, encoded, None),
            "append_encoded + tree": lambda: append_encoded(d, encoded, tree_dir),
            "tree: one at a time": lambda: tree_alone(preimages, "one at a time", d),
            "tree: batched, memory": lambda: tree_alone(preimages, "batched, memory store", d),
            "tree: batched, file": lambda: tree_alone(preimages, "batched, file store", d),
            "tree: batched, file, no fsync": lambda: tree_alone(preimages, "batched, file store, written", d),
        }
        for _ in range(args.runs):  # interleaved: every figure sees the same noise
            for name, fn in runs.items():
                figures.setdefault(name, []).append(fn())
        m = {k: statistics.median(v) for k, v in figures.items()}
        print(f"Merkle tree benchmark: {args.events} events of ~{avg:.0f} bytes, {args.runs} interleaved "
              f"runs, medians, {args.clock} clock (shared, noisy machine)")
        print("  per append, file log 'batch':")
        print(f"    append                      {m['append']:7.2f} us")
        print(f"    append + tree               {m['append + tree']:7.2f} us   "
              f"{m['append + tree'] / m['append']:.2f}x  (re-encodes the event: a caller outside the log)")
        print(f"    append_encoded              {m['append_encoded']:7.2f} us")
        print(f"    append_encoded + tree       {m['append_encoded + tree']:7.2f} us   "
              f"{m['append_encoded + tree'] / m['append_encoded']:.2f}x")
        print("  the tree's own work per leaf:")
        for name in ("tree: one at a time", "tree: batched, memory", "tree: batched, file",
                     "tree: batched, file, no fsync"):
            print(f"    {name[6:]:<28}{m[name]:7.2f} us   = {m[name] / m['append']:.1%} of append, "
                  f"{m[name] / m['append_encoded']:.1%} of append_encoded")
        batched = m["tree: batched, file"]
        print(f"  part 2 estimate (the tree inside the append, preimage shared with the chain): "
              f"append {(m['append'] + batched) / m['append']:.2f}x, "
              f"append_encoded {(m['append_encoded'] + batched) / m['append_encoded']:.2f}x")

        big = os.path.join(d, "big")
        build_s, (event_bytes,) = build_big(big, args.leaves)
        t = time.perf_counter()
        tree = MerkleTree(FileNodeStore(big))
        open_s = time.perf_counter() - t
        n = tree.size
        store_bytes = sum(os.path.getsize(os.path.join(big, f)) for f in os.listdir(big) if f.endswith(".hashes"))
        print(f"  {n:,}-leaf file store: built in {build_s:.1f} s ({build_s / n * 1e6:.2f} us/leaf), "
              f"{store_bytes / n:.1f} bytes/leaf on disk, open + check {open_s * 1e3:.2f} ms")
        incl, cons, roots, verif = [], [], [], []
        for _ in range(args.samples):
            i = rnd.randrange(n)
            size = rnd.randint(i + 1, n) if rnd.random() < 0.5 else n
            t = _clock()
            path = tree.inclusion_proof(i, size)
            incl.append(_clock() - t)
            root = tree.root_at(size)
            leaf = tree.leaf_hash_at(i)
            t = _clock()
            verify_inclusion(leaf, i, size, path, root)
            verif.append(_clock() - t)
            m1 = rnd.randint(1, n)
            t = _clock()
            tree.consistency_proof(m1, n)
            cons.append(_clock() - t)
            t = _clock()
            tree.root_at(rnd.randint(1, n))
            roots.append(_clock() - t)
        print(f"  on it, {args.samples} random samples each, {args.clock} clock "
              "(every proof self-checked before it is returned):")
        print(f"    inclusion proof             {_ms(incl)}")
        print(f"    consistency proof (m -> n)  {_ms(cons)}")
        print(f"    past root root_at(m)        {_ms(roots)}")
        print(f"    auditor's verify_inclusion  {_ms(verif)}")
        cp = Checkpoint("bench/log", n, tree.root(), 0)
        old = Checkpoint("bench/log", n // 3 + 1, tree.root_at(n // 3 + 1), 0)
        ip = make_inclusion_proof(tree, cp, 12345, 12345, event_bytes)
        cpf = make_consistency_proof(tree, old, cp)
        print(f"  proof sizes at {n:,} leaves (log2 n = {n.bit_length() - 1}..{n.bit_length()}):")
        print(f"    inclusion: {len(ip.path)} hashes = {32 * len(ip.path)} bytes; file "
              f"{len(ip.to_json().encode())} bytes (with a {len(event_bytes)}-byte event)")
        print(f"    consistency: {len(cpf.path)} hashes = {32 * len(cpf.path)} bytes; file "
              f"{len(cpf.to_json().encode())} bytes")
        tree.close()
        hashes = leaf_hashes(preimages[:10])
        assert hashes[0] == leaf_hash(preimages[0])
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
