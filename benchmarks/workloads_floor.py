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
"""

from __future__ import annotations

import gc
import time
from typing import Any

import msgpack
from workloads import POOL, make_data

__all__ = ["event_floor"]


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

    def shared_data(i: int, value: Any) -> None:
        key = keys[i & 15]
        b = packb(["shared_data_set", {"key": key, "value": value}])
        events.append(b)
        tss.append(time_ns())
        state[key] = b

    def routine_state(i: int, value: Any) -> None:
        rid = keys[i & 15]
        b = packb(["routine_state_set", {"routine_id": rid, "state": value}])
        events.append(b)
        tss.append(time_ns())
        state[rid] = b

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
        call = {"shared_data": shared_data, "routine_state": routine_state}[op]
        for i in range(n):
            call(i, pool[i % POOL])
    seconds = time.perf_counter() - t0
    if len(events) != n:
        msg = f"the floor loop recorded {len(events)} events, not {n}"
        raise AssertionError(msg)
    return {"us_per_call": seconds / n * 1e6, "ms": seconds * 1e3}
