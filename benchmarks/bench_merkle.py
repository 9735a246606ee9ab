"""Benchmark the Merkle tree of audit proofs (issue 14): what it costs at append, proofs on 1M events, sizes.

    python benchmarks/bench_merkle.py                 # 200k appends x 5 interleaved runs, a 1M-event log
    python benchmarks/bench_merkle.py --quick         # small sizes: a sanity run in seconds
    python benchmarks/bench_merkle.py --clock cpu     # this process's CPU time (steadier on a busy machine)
    EVENTLOG_PG_URL=postgresql://... python benchmarks/bench_merkle.py --pg   # also PostgreSQL

What it measures (medians of ``--runs`` interleaved runs; every figure of one table in the
same run, so a noisy moment hits all of them):

1. **The issue's target, append with the tree vs without**: the file log in ``"batch"``
   durability, one thread, ~130-byte nested events, ``open_log(merkle=True)`` (the
   default) against ``open_log(merkle=False)``: ``append`` (encodes the event) and
   ``append_encoded`` (the trusted fast path), ``close`` included (it syncs and commits).
   Then ``JobState.record_execution`` on a durable job (``JobState.open``, "batch"), tree
   on vs off (``eventlog.open_log`` wrapped with ``merkle=False`` for the "off" runs).
   Beside them, what the tree costs with no log around it: **the floor** (the two
   SHA-256 calls per event RFC 6962 needs, a leaf and amortised one node, through
   ``hashlib`` over inputs built beforehand: no queue, no tree, no store) and **the tree
   alone** (what the append path does for the tree: build and queue each leaf input,
   hash per batch, feed a file node store; no log). The 1.15x budget is
   ``0.15 x`` the "off" figure; the floor alone is compared with it.
2. **Designs tried to cut the cost** (the tree work per event is two SHA-256 calls,
   ~0.35-0.5 us each through ``hashlib`` on this machine, most of it per-call overhead):
   the shipped one's shape (the append queues the leaf preimage, hashed inline per batch:
   256 and 4096 shown; the file log uses 1024), hashing in a second *thread* (the appender only queues;
   ``hashlib`` holds the GIL for inputs this small, so both threads share one core), and in
   a second *process* (the appender sends batches of preimages through a pipe; the child
   keeps the tree). Each: the appender's time per event and the time until the tree is done.
3. **Proofs on a 1M-event file log** (built through ``append``, the tree kept at append):
   build time, reopen time (nothing is rebuilt), then at random seqs and sizes the time to
   make an inclusion path (``merkle_inclusion``), a whole inclusion proof object
   (``eventlog.audit.prove_inclusion``: the root at the checkpoint's size is checked and the
   event read), a consistency proof, and an auditor's check of a proof file: median, p99, worst.
4. **Proof sizes** at 1k .. 1M events: hashes and bytes of inclusion and consistency proofs
   (O(log n): an inclusion path has at most ceil(log2 n) hashes, a consistency proof at most
   about 2 log2 n).
5. With ``--pg``: PostgreSQL appends (node rows written with the events) and proofs.

The machine is shared and noisy (2 cores, up to 8 engineers at once): compare figures of
the same run, and rerun before drawing conclusions.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import multiprocessing
import os
import random
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import eventlog  # noqa: E402
from eventlog.audit import make_checkpoint, prove_consistency, prove_inclusion  # noqa: E402
from eventlog.encoding import encode_event  # noqa: E402
from eventlog.merkle_store import FileNodeStore  # noqa: E402
from eventlog.merkle_tree import MerkleTree  # noqa: E402
from eventlog.proof import check_inclusion  # noqa: E402
from eventlog.signing import generate_key  # noqa: E402

_clock = time.perf_counter
_pack = struct.Struct("<Qq").pack
_pack_leaf_head = struct.Struct("<BQq").pack

EVENT = {
    "routine": "routine_0042",
    "kind": "execution_recorded",
    "n": 0,
    "data": {"value": 3.25, "status": "completed", "message": "processed item in 12 ms"},
}


def _events(n: int) -> list[dict[str, Any]]:
    return [dict(EVENT, n=i) for i in range(n)]


# -- 1. the target: append with vs without the tree -----------------------------------------------
def file_append(d: str, evs: list[dict[str, Any]], encoded: list[bytes], how: str, merkle: bool) -> float:
    """us per append on a fresh "batch" file log (close included: it syncs and commits the tree)."""
    path = os.path.join(d, f"{how}-{merkle}")
    shutil.rmtree(path, ignore_errors=True)
    log = eventlog.open_log(path, durability="batch", merkle=merkle)
    t = _clock()
    if how == "append":
        append = log.append
        for ev in evs:
            append("exec", ev)
    else:
        append_encoded = log.append_encoded
        for event_bytes in encoded:
            append_encoded(event_bytes)
    log.close()
    dt = _clock() - t
    shutil.rmtree(path, ignore_errors=True)
    return dt / len(evs) * 1e6


@contextlib.contextmanager
def tree_off() -> Iterator[None]:
    """``eventlog.open_log`` without the tree, for the "off" runs of JobState (it calls the module attribute)."""
    real = eventlog.open_log
    eventlog.open_log = functools.partial(real, merkle=False)  # type: ignore[assignment]
    try:
        yield
    finally:
        eventlog.open_log = real  # type: ignore[assignment]


def job_record(d: str, n: int, merkle: bool) -> float:
    """us per record_execution on a durable "batch" JobState (close included)."""
    from routilux import JobState

    path = os.path.join(d, f"job-{merkle}")
    shutil.rmtree(path, ignore_errors=True)
    data = dict(EVENT["data"])  # type: ignore[call-overload]
    with contextlib.nullcontext() if merkle else tree_off():
        job = JobState.open(path, flow_id="bench", durability="batch")
    record = job.record_execution
    t = _clock()
    for _ in range(n):
        record("routine_0042", "done", data)
    job.close()
    dt = _clock() - t
    shutil.rmtree(path, ignore_errors=True)
    return dt / n * 1e6


def hash_floor(encoded: list[bytes]) -> float:
    """us per event for the two SHA-256 calls RFC 6962 needs and nothing else.

    One leaf hash (``0x00 || seq || ts || event``) and one node hash (``0x01 || left ||
    right``; a tree of n leaves has n - 1 nodes) per event, inputs built before the clock
    starts, through the cheapest ``hashlib`` call measured (``sha256(x).digest()`` in a
    comprehension).
    """
    sha256 = hashlib.sha256
    leaf_inputs = [_pack_leaf_head(0, seq, seq) + e for seq, e in enumerate(encoded, 1)]
    node_inputs = [b"\x01" + sha256(e).digest() * 2 for e in encoded[1:]]
    t = _clock()
    [sha256(x).digest() for x in leaf_inputs]
    [sha256(x).digest() for x in node_inputs]
    return (_clock() - t) / len(encoded) * 1e6


def tree_alone(d: str, encoded: list[bytes]) -> float:
    """us per event for what the file log's append path does for the tree, without the log."""
    tree_dir = os.path.join(d, "tree-alone")
    shutil.rmtree(tree_dir, ignore_errors=True)
    tree = MerkleTree(FileNodeStore(tree_dir))
    queue, batch, hash_queue = tree.queue, tree.batch, tree.hash_queue
    t = _clock()
    for seq, event_bytes in enumerate(encoded, 1):
        queue.append(_pack_leaf_head(0, seq, seq) + event_bytes)
        if len(queue) >= batch:
            hash_queue()
    tree.hash_queue()
    dt = _clock() - t
    tree.close()
    shutil.rmtree(tree_dir, ignore_errors=True)
    return dt / len(encoded) * 1e6


# -- 2. designs tried -------------------------------------------------------------------------------
def design_inline(d: str, encoded: list[bytes], batch: int) -> tuple[float, float]:
    """The appender feeds a tree itself (merkle=False log + a tree beside it, hashed per ``batch``)."""
    path, tree_dir = os.path.join(d, "inline"), os.path.join(d, "inline-tree")
    for p in (path, tree_dir):
        shutil.rmtree(p, ignore_errors=True)
    log = eventlog.open_log(path, durability="batch", merkle=False)
    tree = MerkleTree(FileNodeStore(tree_dir), batch=batch)
    append, add = log.append_encoded, tree.append
    t = _clock()
    for event_bytes in encoded:
        seq, ts = append(event_bytes)
        add(_pack(seq, ts) + event_bytes)
    tree.root()
    log.close()
    dt = _clock() - t
    tree.close()
    return dt / len(encoded) * 1e6, dt / len(encoded) * 1e6


def _thread_worker(tree: MerkleTree, queue: list[list[bytes]], cond: threading.Condition, done: list[bool]) -> None:
    while True:
        with cond:
            while not queue and not done[0]:
                cond.wait()
            if not queue:
                return
            chunk = queue.pop(0)
        tree.extend(chunk)
        tree.root()  # hashes the chunk now (extend only queues below its batch)


def design_thread(d: str, encoded: list[bytes]) -> tuple[float, float]:
    """The appender queues preimages; a second thread hashes them (the GIL is shared)."""
    path, tree_dir = os.path.join(d, "thread"), os.path.join(d, "thread-tree")
    for p in (path, tree_dir):
        shutil.rmtree(p, ignore_errors=True)
    log = eventlog.open_log(path, durability="batch", merkle=False)
    tree = MerkleTree(FileNodeStore(tree_dir), batch=4096)
    queue: list[list[bytes]] = []
    cond = threading.Condition()
    done = [False]
    worker = threading.Thread(target=_thread_worker, args=(tree, queue, cond, done))
    worker.start()
    append = log.append_encoded
    pending: list[bytes] = []
    t = _clock()
    for event_bytes in encoded:
        seq, ts = append(event_bytes)
        pending.append(_pack(seq, ts) + event_bytes)
        if len(pending) >= 4096:
            with cond:
                queue.append(pending)
                cond.notify()
            pending = []
    log.close()
    appender = _clock() - t
    with cond:
        queue.append(pending)
        done[0] = True
        cond.notify()
    worker.join()
    total = _clock() - t
    tree.close()
    return appender / len(encoded) * 1e6, total / len(encoded) * 1e6


def _process_worker(conn: Any, tree_dir: str) -> None:
    tree = MerkleTree(FileNodeStore(tree_dir), batch=4096)
    while True:
        blob = conn.recv_bytes()
        if not blob:
            conn.send_bytes(tree.commit().root)
            break
        (n,) = struct.unpack_from("<I", blob)
        lens = struct.unpack_from(f"<{n}I", blob, 4)
        pos = 4 + 4 * n
        chunk = []
        for length in lens:
            chunk.append(blob[pos : pos + length])
            pos += length
        tree.extend(chunk)
    tree.close()


def design_process(d: str, encoded: list[bytes]) -> tuple[float, float]:
    """The appender sends batches of preimages through a pipe; a child process keeps the tree."""
    path, tree_dir = os.path.join(d, "process"), os.path.join(d, "process-tree")
    for p in (path, tree_dir):
        shutil.rmtree(p, ignore_errors=True)
    log = eventlog.open_log(path, durability="batch", merkle=False)
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_process_worker, args=(child, tree_dir))
    proc.start()
    append = log.append_encoded
    pending: list[bytes] = []
    t = _clock()
    for event_bytes in encoded:
        seq, ts = append(event_bytes)
        pending.append(_pack(seq, ts) + event_bytes)
        if len(pending) >= 4096:
            parent.send_bytes(struct.pack(f"<I{len(pending)}I", len(pending), *map(len, pending)) + b"".join(pending))
            pending = []
    log.close()
    appender = _clock() - t
    if pending:
        parent.send_bytes(struct.pack(f"<I{len(pending)}I", len(pending), *map(len, pending)) + b"".join(pending))
    parent.send_bytes(b"")
    if not parent.poll(600):
        msg = "the tree process did not answer"
        raise RuntimeError(msg)
    parent.recv_bytes()
    total = _clock() - t
    proc.join()
    parent.close()
    child.close()
    return appender / len(encoded) * 1e6, total / len(encoded) * 1e6


# -- 3. proofs on a big log ---------------------------------------------------------------------
def _ms(xs: list[float]) -> str:
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    return f"median {statistics.median(xs) * 1e3:7.3f} ms   p99 {p99 * 1e3:7.3f} ms   worst {xs[-1] * 1e3:7.3f} ms"


def build_big(path: str, n: int) -> float:
    """A file log of ``n`` events appended one by one (the tree kept at append); seconds."""
    shutil.rmtree(path, ignore_errors=True)
    log = eventlog.open_log(path, durability="none")
    append = log.append
    ev = dict(EVENT)
    t = time.perf_counter()
    for i in range(n):
        ev["n"] = i
        append("exec", ev)
    log.close()
    return time.perf_counter() - t


def proofs_on(log: Any, n: int, samples: int, rnd: random.Random, key: Any) -> dict[str, list[float]]:
    """Time proofs of every kind on ``log`` (``n`` events, checkpoints at n and ~n/3)."""
    cp_new = make_checkpoint(log, key, origin="bench.example/log", store=False)
    old_size = n // 3 + 1
    out: dict[str, list[float]] = {k: [] for k in ("path", "proof", "consistency", "auditor")}
    for _ in range(samples):
        seq = rnd.randint(1, n)
        size = n if rnd.random() < 0.5 else rnd.randint(seq, n)
        t = _clock()
        log.merkle_inclusion(seq, size)
        out["path"].append(_clock() - t)
        t = _clock()
        proof = prove_inclusion(log, seq, cp_new.checkpoint)
        out["proof"].append(_clock() - t)
        t = _clock()
        log.merkle_consistency(rnd.randint(1, n), n)
        out["consistency"].append(_clock() - t)
        t = _clock()
        check_inclusion(proof, cp_new.note, key.verifier)
        out["auditor"].append(_clock() - t)
    from eventlog.checkpoint import Checkpoint

    old = Checkpoint("bench.example/log", old_size, log.merkle_root(old_size), 0)
    grow = prove_consistency(log, old, cp_new.checkpoint)
    assert grow.path
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000, help="appends per run (section 1 and 2)")
    ap.add_argument("--jobs", type=int, default=100_000, help="record_execution calls per run")
    ap.add_argument("--runs", type=int, default=5, help="interleaved runs per figure; medians are printed")
    ap.add_argument("--big", type=int, default=1_000_000, help="events of the log proofs are made on")
    ap.add_argument("--samples", type=int, default=300, help="proofs timed on the big log")
    ap.add_argument("--quick", action="store_true", help="small sizes: a sanity run in seconds")
    ap.add_argument("--pg", action="store_true", help="also PostgreSQL (EVENTLOG_PG_URL)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="clock of the per-event figures (cpu: process CPU time; blind to a second process)")
    args = ap.parse_args(argv)
    global _clock
    _clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.quick:
        args.events, args.jobs, args.runs, args.big, args.samples = 20_000, 10_000, 2, 50_000, 50
    rnd = random.Random(14)
    key = generate_key("bench.example")
    d = tempfile.mkdtemp(prefix="bench-merkle-")
    try:
        evs = _events(args.events)
        encoded = [encode_event("exec", ev) for ev in evs]
        avg = statistics.mean(len(b) for b in encoded)
        runs: dict[str, Any] = {
            "append, tree off": lambda: file_append(d, evs, encoded, "append", False),
            "append, tree on": lambda: file_append(d, evs, encoded, "append", True),
            "append_encoded, tree off": lambda: file_append(d, evs, encoded, "encoded", False),
            "append_encoded, tree on": lambda: file_append(d, evs, encoded, "encoded", True),
            "record_execution, tree off": lambda: job_record(d, args.jobs, False),
            "record_execution, tree on": lambda: job_record(d, args.jobs, True),
            "floor": lambda: hash_floor(encoded),
            "tree alone": lambda: tree_alone(d, encoded),
            "inline, batch 256": lambda: design_inline(d, encoded, 256),
            "inline, batch 4096": lambda: design_inline(d, encoded, 4096),
            "second thread": lambda: design_thread(d, encoded),
            "second process": lambda: design_process(d, encoded),
        }
        figures: dict[str, list[Any]] = {}
        for _ in range(args.runs):  # interleaved: every figure sees the same noise
            for name, fn in runs.items():
                figures.setdefault(name, []).append(fn())
        m = {k: statistics.median(v) for k, v in figures.items() if not isinstance(v[0], tuple)}
        load = os.getloadavg()
        print(f"Merkle tree benchmark: {args.events:,} events of ~{avg:.0f} bytes, {args.runs} interleaved runs, "
              f"medians, {args.clock} clock; load average {load[0]:.2f} (shared, noisy 2-core machine)")
        print("1. append with the tree vs without (file log 'batch', one thread; close included):")
        for what in ("append", "append_encoded", "record_execution"):
            off, on = m[f"{what}, tree off"], m[f"{what}, tree on"]
            label = f"{what} (durable JobState)" if what == "record_execution" else what
            print(f"   {label:<34} off {off:6.2f} us   on {on:6.2f} us   {on / off:.2f}x   "
                  f"(+{on - off:.2f} us; min-max on {min(figures[f'{what}, tree on']):.2f}-"
                  f"{max(figures[f'{what}, tree on']):.2f})")
        floor, alone = m["floor"], m["tree alone"]
        budget = {what: 0.15 * m[f"{what}, tree off"] for what in ("append", "append_encoded")}
        verdict = ", ".join(f"{'within' if floor <= budget[w] else 'over'} {w}'s +{budget[w]:.2f} us"
                            for w in ("append", "append_encoded"))
        print(f"   floor: 2 SHA-256 calls/event (hashlib, inputs pre-built)  {floor:6.2f} us   "
              f"(against the 1.15x budget: {verdict})")
        print(f"   the tree alone (queue + hash + file node store, no log)    {alone:6.2f} us   "
              f"({alone - floor:+.2f} us over the floor)")
        print("2. designs tried (append_encoded + a tree over the same events; appender us/event, "
              "done us/event):")
        base = m["append_encoded, tree off"]
        for name in ("inline, batch 256", "inline, batch 4096", "second thread", "second process"):
            a = statistics.median(x[0] for x in figures[name])
            t = statistics.median(x[1] for x in figures[name])
            print(f"   {name:<20} appender {a:6.2f} us ({a / base:.2f}x)   tree done {t:6.2f} us ({t / base:.2f}x)")

        big = os.path.join(d, "big")
        build_s = build_big(big, args.big)
        t = time.perf_counter()
        log = eventlog.open_log(big)
        open_s = time.perf_counter() - t
        n = log.head_seq
        store = sum(os.path.getsize(os.path.join(big, "merkle", f)) for f in os.listdir(os.path.join(big, "merkle")))
        print(f"3. a {n:,}-event file log built through append with the tree: {build_s:.1f} s "
              f"({build_s / n * 1e6:.2f} us/event, durability 'none'); node store {store / n:.1f} bytes/event; "
              f"reopen {open_s * 1e3:.1f} ms (nothing rebuilt)")
        out = proofs_on(log, n, args.samples, rnd, key)
        print(f"   {args.samples} random samples each, {args.clock} clock (every proof checked before it is returned):")
        print(f"   inclusion path (merkle_inclusion)   {_ms(out['path'])}")
        print(f"   inclusion proof (prove_inclusion)   {_ms(out['proof'])}")
        print(f"   consistency path m -> n             {_ms(out['consistency'])}")
        print(f"   auditor's check (signature + path)  {_ms(out['auditor'])}")
        print("4. proof sizes (hashes of 32 bytes; a proof file with a ~125-byte event):")
        for size in (1_000, 10_000, 100_000, n):
            if size > n:
                continue
            incl = max(len(log.merkle_inclusion(s, size)) for s in (1, size // 2, size))
            cons = max(len(log.merkle_consistency(m1, size)) for m1 in (1, size // 3 + 1, size - 1))
            cp = make_checkpoint(log, key, origin="bench.example/log", store=False)
            file_bytes = len(prove_inclusion(log, size // 2 or 1, cp.checkpoint).to_json().encode()) if size == n \
                else 0
            extra = f", inclusion proof file {file_bytes} bytes" if file_bytes else ""
            print(f"   n = {size:>9,}: log2 n = {size.bit_length() - 1:2d}; inclusion <= {incl:2d} hashes "
                  f"({32 * incl} bytes); consistency <= {cons:2d} hashes ({32 * cons} bytes){extra}")
        log.close()
        if args.pg:
            pg_section(args, rnd, key)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


def pg_section(args: Any, rnd: random.Random, key: Any) -> None:
    """PostgreSQL: appends (node rows written with each event) and proofs."""
    import uuid

    from eventlog.postgres import open_pg_log

    url = os.environ.get("EVENTLOG_PG_URL")
    if not url:
        print("5. PostgreSQL: skipped (set EVENTLOG_PG_URL)")
        return
    n = 2000 if args.quick else 20_000
    log = open_pg_log(url, f"bench-merkle-{uuid.uuid4().hex[:8]}")
    ev = dict(EVENT)
    t = time.perf_counter()
    for i in range(n):
        ev["n"] = i
        log.append("exec", ev)
    per = (time.perf_counter() - t) / n * 1e6
    out = proofs_on(log, n, min(args.samples, 100), rnd, key)
    print(f"5. PostgreSQL: {n:,} appends, {per:.0f} us each (one commit each, tree rows included)")
    print(f"   inclusion proof (prove_inclusion)   {_ms(out['proof'])}")
    print(f"   consistency path m -> n             {_ms(out['consistency'])}")
    log.close()


if __name__ == "__main__":
    raise SystemExit(main())
