"""Benchmark the file event log against raw baselines measured in the same run.

Prints, for N small (~120-byte) events: append rate per durability mode (and with 8
threads for "always"), read/replay rate, open time, seq and time lookups, each with
its ratio to a raw baseline (an ``os.write`` loop, a write+fsync loop, a msgpack
unpack loop). Every figure is the median of ``--runs`` runs.

It also replays a durable job log from disk (``routilux.rebuild.rebuild``: every event
read, checked and folded into the job's state, no snapshot) and compares that with
SQLite holding the same event bytes: ``SELECT`` of every row plus ``msgpack.unpackb`` of
each body, which is the least a SQLite-backed store would do to replay (issue 11:
replay >= 400k events/s and >= 1.5x SQLite).

    python benchmarks/bench_eventlog.py --events 100000 --runs 3

The machine is shared and noisy: compare the ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time

import msgpack

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import eventlog  # noqa: E402

EVENT = {
    "routine": "routine_0042",
    "kind": "execution_recorded",
    "n": 0,
    "data": {"value": 3.25, "status": "completed", "message": "processed item in 12 ms"},
}


def _event(i: int) -> dict:
    ev = dict(EVENT)
    ev["n"] = i
    return ev


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def raw_write_rate(d: str, n: int) -> float:
    """os.write of one 176-byte record per call, no fsync."""
    path = os.path.join(d, "raw.bin")
    rec = b"x" * 176
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    t = time.perf_counter()
    w = os.write
    for _ in range(n):
        w(fd, rec)
    dt = time.perf_counter() - t
    os.close(fd)
    os.unlink(path)
    return n / dt


def settle(seconds: float = 1.0) -> None:
    """Flush the whole system's dirty data, then wait, so fsync timings start from quiet."""
    os.sync()
    time.sleep(seconds)


def raw_fsync_rate(d: str, n: int) -> float:
    """os.write + fdatasync per record."""
    path = os.path.join(d, "rawsync.bin")
    rec = b"x" * 176
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    t = time.perf_counter()
    for _ in range(n):
        os.write(fd, rec)
        os.fdatasync(fd)
    dt = time.perf_counter() - t
    os.close(fd)
    os.unlink(path)
    return n / dt


def raw_unpack_rate(n: int) -> float:
    """msgpack.unpackb of one packed event per call."""
    packed = [msgpack.packb(["exec", _event(i)]) for i in range(n)]
    t = time.perf_counter()
    u = msgpack.unpackb
    for p in packed:
        u(p)
    return n / (time.perf_counter() - t)


def append_rate(d: str, n: int, mode: str, seg: int) -> tuple[float, str]:
    path = os.path.join(d, f"log-{mode}")
    shutil.rmtree(path, ignore_errors=True)
    evs = [_event(i) for i in range(n)]
    log = eventlog.open_log(path, durability=mode, segment_bytes=seg)
    append = log.append
    t = time.perf_counter()
    for ev in evs:
        append("exec", ev)
    dt = time.perf_counter() - t
    log.close()
    return n / dt, path


def append_encoded_rate(d: str, n: int, seg: int) -> float:
    """The trusted fast path (``append_encoded``) in "batch" mode, events pre-encoded."""
    from eventlog.encoding import encode_event

    path = os.path.join(d, "log-encoded")
    shutil.rmtree(path, ignore_errors=True)
    encoded = [encode_event("exec", _event(i)) for i in range(n)]
    log = eventlog.open_log(path, durability="batch", segment_bytes=seg)
    append = log.append_encoded
    t = time.perf_counter()
    for event_bytes in encoded:
        append(event_bytes)
    dt = time.perf_counter() - t
    log.close()
    shutil.rmtree(path, ignore_errors=True)
    return n / dt


def verify_rate(path: str) -> float:
    t = time.perf_counter()
    report = eventlog.verify(path)
    dt = time.perf_counter() - t
    assert report.ok, report
    return report.records / dt


def bundle_read_ms(d: str, path: str, n: int) -> float:
    """read_bundle of a bundle holding the first ``n`` events of the log at ``path``."""
    bundle = os.path.join(d, "bench.bundle")
    with eventlog.open_log(path, readonly=True) as log:
        raw = list(log.read_raw(1, n))
        mem = eventlog.InMemoryEventLog.restore([ts for _s, ts, _b in raw], [b for _s, _t, b in raw])
    eventlog.write_bundle(bundle, mem)
    t = time.perf_counter()
    eventlog.read_bundle(bundle)
    dt = time.perf_counter() - t
    os.unlink(bundle)
    return dt * 1e3


def threaded_always_rate(d: str, n: int, threads: int) -> float:
    path = os.path.join(d, "log-threads")
    shutil.rmtree(path, ignore_errors=True)
    log = eventlog.open_log(path, durability="always")
    per = max(1, n // threads)
    barrier = threading.Barrier(threads + 1)

    def work(k: int) -> None:
        barrier.wait()
        for i in range(per):
            log.append("exec", _event(i))

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    dt = time.perf_counter() - t0
    log.close()
    shutil.rmtree(path, ignore_errors=True)
    return per * threads / dt


def read_rate(path: str) -> float:
    with eventlog.open_log(path, readonly=True) as log:
        t = time.perf_counter()
        n = 0
        for _ in log.read():
            n += 1
        return n / (time.perf_counter() - t)


def job_log(d: str, n: int) -> str:
    """A durable job log of ``n`` events shaped like a flow's: mostly nested execution records,
    routine states, shared data and task lifecycle events; no snapshots (a full replay)."""
    from routilux.job_state import JobState

    path = os.path.join(d, "job")
    shutil.rmtree(path, ignore_errors=True)
    nested = {"result": "processed", "count": 0, "items": [1, 2, 3],
              "meta": {"source": "sensor-7", "tags": ["raw", "checked"], "limits": {"low": 0.5, "high": 9.5}}}
    with JobState.open(path, flow_id="bench", durability="none") as js:
        js.snapshot_every = 1 << 40
        i = 1
        while i < n:
            k = i % 10
            if k < 6:
                js.record_execution(f"r{i % 8}", "output", {**nested, "count": i})
            elif k == 6:
                js.update_routine_state(f"r{i % 8}", {"status": "completed", "count": i})
            elif k == 7:
                js.update_shared_data(f"key{i % 16}", {"count": i, "items": [i, i + 1]})
            elif k == 8:
                js._task_queued(f"t{i}", {"routine_id": f"r{i % 8}", "slot": "in", "data": {"count": i}})
            else:
                js._task_finished(f"t{i - 1}")
            i += 1
    return path


def replay_rate(path: str) -> tuple[float, int]:
    """``rebuild`` of the job at ``path`` from its first event (events/s, events)."""
    from routilux.rebuild import rebuild

    with eventlog.open_log(path, readonly=True) as log:
        t = time.perf_counter()
        p = rebuild(log)
        dt = time.perf_counter() - t
    return p.version / dt, p.version


def sqlite_rate(d: str, path: str) -> float:
    """SQLite holding the same event bytes: SELECT every row and msgpack-unpack each body."""
    import gc
    import sqlite3

    db = os.path.join(d, "events.sqlite")
    with eventlog.open_log(path, readonly=True) as log:
        rows = list(log.read_raw())
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, body BLOB NOT NULL)")
    con.executemany("INSERT INTO events VALUES (?, ?, ?)", rows)
    con.commit()
    con.close()
    con = sqlite3.connect(db)
    unpackb = msgpack.unpackb
    gc.disable()  # as the replay does
    try:
        t = time.perf_counter()
        n = 0
        for _seq, _ts, body in con.execute("SELECT seq, ts, body FROM events ORDER BY seq"):
            unpackb(body, strict_map_key=False)
            n += 1
        dt = time.perf_counter() - t
    finally:
        gc.enable()
        con.close()
        os.unlink(db)
    return n / dt


def open_time(path: str) -> float:
    t = time.perf_counter()
    log = eventlog.open_log(path)
    dt = time.perf_counter() - t
    log.close()
    return dt


def lookups(path: str, samples: int = 2000) -> tuple[float, float]:
    rng = random.Random(1)
    with eventlog.open_log(path, readonly=True) as log:
        head = log.head_seq
        first_ts = log.get(1).ts
        last_ts = log.head_ts
        log.get(head)  # warm the indexes
        t = time.perf_counter()
        for _ in range(samples):
            log.get(rng.randint(1, head))
        seq_us = (time.perf_counter() - t) / samples * 1e6
        t = time.perf_counter()
        for _ in range(samples):
            log.seq_at_time(rng.randint(first_ts, last_ts))
        ts_us = (time.perf_counter() - t) / samples * 1e6
    return seq_us, ts_us


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="events per append run (default 1M)")
    ap.add_argument("--runs", type=int, default=3, help="runs per figure; medians are printed")
    ap.add_argument("--sync-events", type=int, default=2000, help='events for the "always" and fsync runs')
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--segment-bytes", type=int, default=64 * 2**20)
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    args = ap.parse_args(argv)
    d = tempfile.mkdtemp(prefix="bench-eventlog-", dir=args.dir)
    n, ns = args.events, args.sync_events
    try:
        res: dict[str, list[float]] = {}

        def add(k: str, v: float) -> None:
            res.setdefault(k, []).append(v)

        big = ""
        for _ in range(args.runs):
            add("raw_write", raw_write_rate(d, n))
            add("raw_unpack", raw_unpack_rate(min(n, 200_000)))
            r, _p = append_rate(d, n, "none", args.segment_bytes)
            add("append_none", r)
            r, big = append_rate(d, n, "batch", args.segment_bytes)
            add("append_batch", r)
            add("append_encoded", append_encoded_rate(d, n, args.segment_bytes))
            # The fsync-bound figures and their baseline are measured back to back, after
            # the disk has settled: the runs above wrote (and deleted) hundreds of MB, and
            # the writeback and discards they leave behind slow every fsync for a while.
            settle()
            add("raw_fsync", raw_fsync_rate(d, ns))
            r, _p = append_rate(d, ns, "always", args.segment_bytes)
            add("append_always", r)
            add("append_always_threads", threaded_always_rate(d, ns * 2, args.threads))
            add("read", read_rate(big))
            add("open_ms", open_time(big) * 1e3)
            add("verify", verify_rate(big))
            add("bundle_ms", bundle_read_ms(d, big, min(n, 100_000)))
            s_us, t_us = lookups(big)
            add("seq_us", s_us)
            add("ts_us", t_us)
            job = job_log(d, min(n, 200_000))
            rate, replayed = replay_rate(job)
            add("replay", rate)
            add("sqlite", sqlite_rate(d, job))
        m = {k: _median(v) for k, v in res.items()}
        print(f"eventlog benchmark: {n} events (~143-byte msgpack each), {args.runs} run(s), medians")
        print(f"  raw os.write loop          {m['raw_write']:>12,.0f} /s")
        print(f"  raw write+fdatasync loop   {m['raw_fsync']:>12,.0f} /s")
        print(f"  raw msgpack unpackb loop   {m['raw_unpack']:>12,.0f} /s")
        print(f"  append 'none'              {m['append_none']:>12,.0f} /s   {m['append_none'] / m['raw_write']:.2f}x raw write")
        print(f"  append 'batch'             {m['append_batch']:>12,.0f} /s   {m['append_batch'] / m['raw_write']:.2f}x raw write")
        print(f"  append_encoded 'batch'     {m['append_encoded']:>12,.0f} /s   {m['append_encoded'] / m['raw_write']:.2f}x raw write")
        print(f"  append 'always' 1 thread   {m['append_always']:>12,.0f} /s   {m['append_always'] / m['raw_fsync']:.2f}x raw write+fsync")
        print(f"  append 'always' {args.threads} threads  {m['append_always_threads']:>12,.0f} /s   "
              f"{m['append_always_threads'] / m['raw_fsync']:.2f}x raw write+fsync")
        print(f"  read + decode + checksum   {m['read']:>12,.0f} /s   {m['read'] / m['raw_unpack']:.2f}x raw unpack")
        print(f"  eventlog.verify            {m['verify']:>12,.0f} /s")
        print(f"  read_bundle ({min(n, 100_000)} events) {m['bundle_ms']:>9.1f} ms")
        print(f"  open ({n} events)    {m['open_ms']:>12.2f} ms")
        print(f"  find seq (get)             {m['seq_us']:>12.1f} us")
        print(f"  find time (seq_at_time)    {m['ts_us']:>12.1f} us")
        print(f"  replay a job log ({replayed} events) {m['replay']:>9,.0f} /s   "
              f"{m['replay'] / m['sqlite']:.2f}x SQLite select + unpack ({m['sqlite']:,.0f} /s)")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
