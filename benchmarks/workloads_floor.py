"""The least that recording one event can cost in this CPython (``bench_floor.py``).

Each workload here times a loop that does, per call, only what ANY implementation that
records every mutation as an event must do, with the cheapest C calls available and no
checks at all:

1. encode the event: one ``pack`` of ``[kind, payload]`` by a reused ``msgpack.Packer`` (no
   canonical form, no type or shape checks, no depth or size limits);
2. store it: one ``list.append`` of the bytes and one of a ``time.time_ns()`` timestamp
   (no lock, no hash chain, no Merkle tree, no file);
3. apply it: one dict or list store. The state must hold the value the event holds, not the
   caller's object (which the caller may change later), or the state rebuilt from the log
   could differ from the live one; the cheapest way is to keep the event's bytes and decode
   them when the value is first read, so the floor stores the bytes (an int, immutable, is
   stored as it is) and does not decode.

The loop body is inlined in the timed closure, so not even the mutator's own method call is
counted. Real code (ours) pays all of that and more; this is a floor, not an implementation.
The same pools and loop shape as ``workloads.timed_calls`` are used, so the figures compare
with the original's rows of ``workloads.py`` run in the same benchmark.

``record_floor`` does the same for ``record_execution``, in memory and durable. The durable
floor adds what this project's durable log must do per event beyond that (DESIGN.md,
RELIABILITY.md, issue 14): one step of the BLAKE2b-128 hash chain, the frame's header and
its two CRC32s (the body's, and the header's own, which tells a torn write from a flipped
length), the RFC 6962 Merkle tree's two SHA-256 calls (the leaf, and one interior node: a
tree of n leaves has n - 1), and the copy of the frame into a shared map of a file (page
cache: the "batch" promise that an acknowledged event survives ``kill -9``). It leaves out
the checks, the index, the lock and every call. (``bench_append_floor.py`` times the same
per-frame work under the log's own ``append_encoded``, without the encoding.)

``replay_floor`` times the least reading a log of this format back can cost: one ``read`` of
each segment file, then per frame one header unpack, one slice of the event's bytes, one
CRC32 of them (the check a reader needs before it believes the bytes), and one list append
of ``(ts, bytes)``. It leaves out the header CRC, the seq/ts order, the pad, the kind and
shape checks, and building anything from the event.
"""

from __future__ import annotations

import gc
import hashlib
import mmap
import os
import struct
import time
import zlib
from typing import Any

import msgpack
from workloads import POOL, make_data

__all__ = ["event_floor", "record_floor", "replay_floor"]


def event_floor(params: dict[str, Any]) -> dict[str, Any]:
    """Per-call floor for ``params["op"]``: µs per call and ms for ``n`` calls.

    ``op`` is one of ``shared_data`` (``update_shared_data(key, value)``),
    ``routine_state`` (``update_routine_state(rid, value)``), ``list_append`` (an in-place
    ``append`` of an int to a shared list, recorded as an edit event) and ``state_edit``
    (``state["count"] += 1`` recorded as an edit event). ``shape`` picks the values of the
    first two (``workloads.make_data``).
    """
    op, n = params["op"], params["n"]
    pool = [make_data(params.get("shape", "flat"), i) for i in range(POOL)]
    # One reused Packer (msgpack.packb builds a new one per call, which costs more).
    packb, time_ns = msgpack.Packer().pack, time.time_ns
    events: list[bytes] = []
    tss: list[int] = []
    state: dict[str, Any] = {}
    keys = [f"key_{k}" for k in range(16)]
    items: list[Any] = []
    counter = {"count": 0}

    # The event of each mutator: its kind and the names of its id and value fields.
    kind, id_field, value_field = {"shared_data": ("shared_data_set", "key", "value"),
                                   "routine_state": ("routine_state_set", "routine_id", "state")}.get(op, ("", "", ""))

    def mutate(i: int, value: Any) -> None:
        key = keys[i & 15]
        b = packb([kind, {id_field: key, value_field: value}])
        events.append(b)
        tss.append(time_ns())
        state[key] = b

    gc.collect()
    t0 = time.perf_counter()
    # The in-place rows of workloads.py run a plain loop (no closure call): so do these.
    if op == "list_append":
        for i in range(n):
            b = packb(["shared_data_edited", {"key": "items", "path": [], "op": "append", "args": [i]}])
            events.append(b)
            tss.append(time_ns())
            items.append(i)
    elif op == "state_edit":
        for _ in range(n):
            b = packb(["routine_state_edited", {"routine_id": "counter", "path": [], "op": "setitem",
                                                "args": ["count", counter["count"] + 1]}])
            events.append(b)
            tss.append(time_ns())
            counter["count"] += 1
    else:
        if not kind:
            msg = f"unknown floor op {op!r}"
            raise ValueError(msg)
        for i in range(n):
            mutate(i, pool[i % POOL])
    seconds = time.perf_counter() - t0
    if len(events) != n:
        msg = f"the floor loop recorded {len(events)} events, not {n}"
        raise AssertionError(msg)
    return {"us_per_call": seconds / n * 1e6, "ms": seconds * 1e3}


def record_floor(params: dict[str, Any]) -> dict[str, Any]:
    """Per-call floor of ``record_execution("processor", "output", value)``: µs per call.

    ``params["durable"]`` false: pack, the two appends of ``event_floor`` and the history's
    store of the event's bytes. True: also the chain step, the tree's two hashes and the
    copy into a shared map of a file under ``params["dir"]`` (see the module docstring).
    """
    n, durable = params["n"], params.get("durable", False)
    pool = [make_data(params.get("shape", "nested"), i) for i in range(POOL)]
    packb, time_ns = msgpack.Packer().pack, time.time_ns
    events: list[bytes] = []
    tss: list[int] = []
    history: list[bytes] = []
    path = os.path.join(params.get("dir", "."), f"floor-{os.getpid()}.bin")
    fd = -1
    mm: Any = None
    if durable:
        # Room for every event, allocated and mapped before the timing (as a log's
        # reserved window is); pages are first touched inside the loop, as they are there.
        size = 1024 * n  # room for frames of up to ~1 KiB
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.posix_fallocate(fd, 0, size)
        mm = mmap.mmap(fd, size)
    primed = hashlib.blake2b(digest_size=16)
    sha256 = hashlib.sha256
    link_head = struct.Struct("<16sQq").pack
    frame_head = struct.Struct("<IIQq16sI").pack  # eventlog/FORMAT.md; then the header's CRC
    crc32 = zlib.crc32
    leaf_head = struct.Struct("<BQq").pack
    node = b"\x01"
    pack_crc = struct.Struct("<I").pack
    try:
        gc.collect()
        t0 = time.perf_counter()
        if not durable:
            for i in range(n):
                b = packb(["execution_recorded", {"routine_id": "processor", "event_name": "output",
                                                  "data": pool[i % POOL]}])
                events.append(b)
                tss.append(time_ns())
                history.append(b)
        else:
            link = bytes(16)
            leaf = bytes(32)
            off = 0
            for i in range(n):
                b = packb(["execution_recorded", {"routine_id": "processor", "event_name": "output",
                                                  "data": pool[i % POOL]}])
                ts = time_ns()
                h = primed.copy()
                h.update(link_head(link, i + 1, ts))
                h.update(b)
                link = h.digest()
                size = len(b)
                head = frame_head(size, 1, i + 1, ts, link, crc32(b))
                body = off + 48
                mm[off:body] = head + pack_crc(crc32(head))
                mm[body : body + size] = b
                off = (body + size + 7) & ~7
                prev, leaf = leaf, sha256(leaf_head(0, i + 1, ts) + b).digest()
                sha256(node + prev + leaf).digest()
                history.append(b)
        seconds = time.perf_counter() - t0
    finally:
        if mm is not None:
            mm.close()
        if fd >= 0:
            os.close(fd)
            os.unlink(path)
    if len(history) != n:
        msg = f"the floor loop recorded {len(history)} events, not {n}"
        raise AssertionError(msg)
    return {"us_per_call": seconds / n * 1e6}


_FRAME_FIELDS = struct.Struct("<IIQq16sI")  # len, count, seq, ts, link, body CRC (eventlog/FORMAT.md)


def replay_floor(params: dict[str, Any]) -> dict[str, Any]:
    """Events per second of the least a reader of ``params["job_dir"]``'s log must do (module docstring).

    The prepared job of ``workloads_ours.prepare_replay`` (one event per frame).
    """
    log_dir = params["job_dir"]
    segments = sorted(f for f in os.listdir(log_dir) if f.endswith(".seg"))
    unpack_from, crc32 = _FRAME_FIELDS.unpack_from, zlib.crc32
    header, seg_header = 48, 56  # bytes of a frame header and of a segment header
    gc.collect()
    t0 = time.perf_counter()
    kept: list[tuple[int, bytes]] = []
    append = kept.append
    for name in segments:
        with open(os.path.join(log_dir, name), "rb") as f:
            buf = f.read()
        pos, end = seg_header, len(buf)
        while pos + header <= end:
            length, _count, _seq, ts, _link, body_crc = unpack_from(buf, pos)
            if length == 0:
                break  # reserved zeros past the last frame
            body = pos + header
            payload = buf[body : body + length]
            if crc32(payload) != body_crc:
                msg = f"{name}: bad frame CRC at offset {pos}"
                raise AssertionError(msg)
            append((ts, payload))
            pos = (body + length + 7) & ~7
    seconds = time.perf_counter() - t0
    return {"events_per_s": len(kept) / seconds, "events": len(kept)}
