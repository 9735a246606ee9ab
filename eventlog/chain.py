"""The BLAKE2b hash chain that fingerprints a log's whole history.

``link(n) = BLAKE2b-128(key; link(n-1) || seq_n || ts_n || event_bytes_n)`` with
``link(0)`` = 16 zero bytes, where ``seq`` and ``ts`` are little-endian 64-bit and
``event_bytes`` is the canonical msgpack of ``[kind, data]``. The chain runs over
events, not frames, so the same events with the same timestamps give the same head
hash however they were batched (an export re-imported one event at a time matches).

Without a key the chain is a fingerprint: a head written down elsewhere makes any
later change to the history detectable. With a secret key it is also tamper
evidence against someone who can rewrite the files but does not hold the key.
"""

from __future__ import annotations

import hashlib
import struct

__all__ = ["GENESIS", "LINK_SIZE", "next_link"]

LINK_SIZE = 16
GENESIS = bytes(LINK_SIZE)
_SEQ_TS = struct.Struct("<Qq")
_pack_seq_ts = _SEQ_TS.pack
_blake2b = hashlib.blake2b


def next_link(prev: bytes, seq: int, ts: int, event_bytes: bytes, key: bytes = b"") -> bytes:
    """Return the chain link after appending one event to a chain ending in ``prev``."""
    return _blake2b(prev + _pack_seq_ts(seq, ts) + event_bytes, digest_size=LINK_SIZE, key=key).digest()
