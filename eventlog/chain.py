"""The BLAKE2b hash chain that fingerprints a log's whole history.

``link(n) = BLAKE2b-128(key; link(n-1) || seq_n || ts_n || event_bytes_n)`` with
``link(0)`` = 16 zero bytes, where ``seq`` and ``ts`` are little-endian 64-bit and
``event_bytes`` is the canonical msgpack of ``[kind, data]``. The chain runs over
events, not frames, so the same events with the same timestamps give the same head
hash however they were batched (an export re-imported one event at a time matches).

Without a key the chain is a fingerprint: a head written down elsewhere makes any
later change to the history detectable. With a secret key it is also tamper
evidence against someone who can rewrite the files but does not hold the key.

:class:`Chain` is the one implementation of the step; every backend, ``verify`` and the
tools use it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from itertools import repeat

__all__ = ["GENESIS", "LINK_SIZE", "Chain", "next_link"]

LINK_SIZE = 16
GENESIS = bytes(LINK_SIZE)
_LINK_SEQ_TS = struct.Struct("<16sQq")


class Chain:
    """Computes chain links for one key.

    Keeps a BLAKE2b state primed with the key and copies it per link, which is cheaper
    than creating a keyed hasher for every event.
    """

    __slots__ = ("_primed",)

    def __init__(self, key: bytes = b"") -> None:
        self._primed = hashlib.blake2b(digest_size=LINK_SIZE, key=key)

    def run(self, prev: bytes, seq: int, tss: Iterable[int], events: Iterable[bytes]) -> bytes:
        """The link after appending ``events`` (seqs ``seq, seq+1, ...``, timestamps ``tss``) to ``prev``.

        The chain step, in one loop: a long run (a log's whole chain) costs no call per event.
        """
        primed = self._primed
        pack = _LINK_SEQ_TS.pack
        link = prev
        for ts, event_bytes in zip(tss, events, strict=True):
            h = primed.copy()
            h.update(pack(link, seq, ts))
            h.update(event_bytes)
            link = h.digest()
            seq += 1
        return link

    def next(self, prev: bytes, seq: int, ts: int, event_bytes: bytes) -> bytes:
        """The link after appending one event: :meth:`run` for a single event, written out.

        (An append computes one link under the writer's lock; the loop's setup would cost
        a twentieth of it. ``tests/eventlog/test_format.py`` pins the two together.)
        """
        h = self._primed.copy()
        h.update(_LINK_SEQ_TS.pack(prev, seq, ts))
        h.update(event_bytes)
        return h.digest()

    def extend(self, prev: bytes, seq: int, ts: int, events: list[bytes]) -> bytes:
        """The link after appending ``events`` (seqs ``seq, seq+1, ...``, all at ``ts``)."""
        return self.run(prev, seq, repeat(ts, len(events)), events)


def next_link(prev: bytes, seq: int, ts: int, event_bytes: bytes, key: bytes = b"") -> bytes:
    """Return the chain link after appending one event to a chain ending in ``prev``."""
    return Chain(key).next(prev, seq, ts, event_bytes)
