"""How far is the file log's durable append from its floor?

    python benchmarks/bench_append_floor.py --runs 5 [--windows]

The floor is the work every durable append must do, written as a bare loop with nothing
else: the BLAKE2b chain step, the two CRC32s and the header packing of a frame, the three
stores of the frame into a shared map of a reserved file (first-store page faults
included), and the Merkle tree's two SHA-256 calls per event (leaf and node; RFC 6962).
Beside it: ``FileEventLog.append_encoded`` with the same events, ``"none"`` and ``"batch"``,
with and without the tree. ``--windows`` adds the append with the mapped window of the
active segment at its old 64 KiB (see ``filelog.MAP_WINDOW``).

Events are the nested ``record_execution`` events of ``workloads.make_data("nested", i)``
(~175 bytes), encoded once. Every case runs in a fresh process, the cases interleaved,
``--runs`` times; the table shows medians of wall and process-CPU time per event (the CPU
clock also counts the "batch" flusher thread; it is steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mmap
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

from workloads import make_data  # noqa: E402

from eventlog import filelog  # noqa: E402
from eventlog.encoding import encode_event  # noqa: E402

EVENTS = 100_000
#: label -> (durability, merkle, map window or 0 for the default); "floor*" are bare loops.
CASES: dict[str, tuple[str, bool, int]] = {
    "floor, no tree": ("", False, 0),
    "floor": ("", True, 0),
    "append 'none'": ("none", True, 0),
    "append 'batch', no tree": ("batch", False, 0),
    "append 'batch'": ("batch", True, 0),
}
OLD_WINDOW = ("append 'batch', 64 KiB window", ("batch", True, 64 * 1024))


def _events() -> list[bytes]:
    return [encode_event("execution_recorded", {"routine_id": "processor", "event_name": "output",
                                                "data": make_data("nested", i)}) for i in range(1000)]


def _floor(events: list[bytes], tree: bool, scratch: str) -> float:
    """The bare loop; returns seconds for EVENTS events."""
    fd = os.open(os.path.join(scratch, "floor"), os.O_RDWR | os.O_CREAT)
    size = EVENTS * (max(map(len, events)) + 56)
    os.posix_fallocate(fd, 0, size)
    mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    primed = hashlib.blake2b(digest_size=16)
    link_input = struct.Struct("<16sQq").pack
    prefix_pack = struct.Struct("<IIQq16sI").pack
    tail_into = struct.Struct("<Qq16sII").pack_into
    leaf_head = struct.Struct("<BQq").pack
    crc, sha256 = zlib.crc32, hashlib.sha256
    link, off, ts, left = bytes(16), 0, time.time_ns(), bytes(32)
    t0 = time.perf_counter()
    for seq in range(1, EVENTS + 1):
        e = events[seq % 1000]
        h = primed.copy()
        h.update(link_input(link, seq, ts))
        h.update(e)
        link = h.digest()
        n = len(e)
        body_crc = crc(e)
        prefix = prefix_pack(n, 1, seq, ts, link, body_crc)
        mm[off + 48 : off + 48 + n] = e
        tail_into(mm, off + 8, seq, ts, link, body_crc, crc(prefix))
        mm[off : off + 8] = prefix[:8]
        off += (55 + n) & ~7
        if tree:
            leaf = sha256(leaf_head(0, seq, ts) + e).digest()
            left = sha256(b"".join((b"\x01", left, leaf))).digest()  # one interior node per leaf
    took = time.perf_counter() - t0
    mm.close()
    os.close(fd)
    return took


def _append(events: list[bytes], durability: str, merkle: bool, window: int, scratch: str) -> float:
    if window:
        filelog.MAP_WINDOW = window
    log = filelog.open_log(os.path.join(scratch, "log"), durability=durability, merkle=merkle)
    append = log.append_encoded
    t0 = time.perf_counter()
    for i in range(EVENTS):
        append(events[i % 1000])
    took = time.perf_counter() - t0
    log.close()
    return took


def run_one(label: str) -> dict[str, float]:
    """Run one case in this process: µs/event of wall and process-CPU time."""
    durability, tree, window = dict([*CASES.items(), OLD_WINDOW])[label]
    events = _events()
    with tempfile.TemporaryDirectory() as scratch:
        cpu0 = time.process_time()
        if durability:
            wall = _append(events, durability, tree, window, scratch)
        else:
            wall = _floor(events, tree, scratch)
        cpu = time.process_time() - cpu0
    return {"wall": wall / EVENTS * 1e6, "cpu": cpu / EVENTS * 1e6}


def main() -> int:
    """Run the cases interleaved and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--windows", action="store_true", help="also time the old 64 KiB window")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return 0
    labels = list(CASES) + ([OLD_WINDOW[0]] if args.windows else [])
    results: dict[str, list[dict[str, float]]] = {label: [] for label in labels}
    for run in range(args.runs):
        for label in labels:
            print(f"run {run + 1}/{args.runs}: {label}", file=sys.stderr)
            out = subprocess.run([sys.executable, __file__, "--one", label], check=True,
                                 capture_output=True, text=True).stdout
            results[label].append(json.loads(out))

    def med(label: str, key: str) -> float:
        return statistics.median(r[key] for r in results[label])

    floor = med("floor", "wall")
    print(f"durable append vs its floor: {EVENTS:,} nested events (~{len(_events()[0])} bytes), "
          f"{args.runs} interleaved runs, medians; load average {os.getloadavg()[0]:.2f} (shared machine)")
    for label in labels:
        print(f"  {label:32s} wall {med(label, 'wall'):6.2f} us   cpu {med(label, 'cpu'):6.2f} us   "
              f"{med(label, 'wall') / floor:5.2f}x the floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
