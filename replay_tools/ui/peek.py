"""Read a few fields of an event from its stored bytes, without decoding it.

An event is stored as the msgpack of ``[kind, data]``, and the writer (``JobState``)
packs each kind's payload with its keys in a fixed order: ``task_started`` is
``{"task_id": ...}``, ``execution_recorded`` is ``{"routine_id": ..., "event_name":
..., "data": ...}`` and so on. The index's first pass needs only such leading strings
(a task id, a routine, an event name, a status) from most events, so it reads them where
the writer put them: a byte-prefix comparison and a slice. An event whose bytes do not
have the writer's shape (another writer, an unusual value) is decoded instead with the
one decoder (:func:`replay_tools.replay.decode_raw`), so what is read is always what a
decode would say. ``tests/ui/test_index.py`` pins the peeks to the decoded payloads.
"""

from __future__ import annotations

import msgpack

__all__ = ["kind_bytes", "map_key", "string_at"]


def kind_bytes(body: bytes) -> bytes | None:
    """The raw bytes of the kind of an encoded ``[kind, data]`` event (``None``: not a fixstr kind)."""
    head = body[1] if len(body) > 1 else 0
    if body[:1] == b"\x92" and 0xA0 <= head <= 0xBF:
        return body[2 : 2 + (head & 0x1F)]
    return None


def map_key(name: str) -> bytes:
    """The encoded bytes of a payload key ``name``."""
    packed: bytes = msgpack.packb(name)
    return packed


def string_at(body: bytes, pos: int) -> tuple[str, int] | None:
    """The string encoded at ``pos`` and the position after it (``None``: not a string there)."""
    if pos >= len(body):
        return None
    head = body[pos]
    if 0xA0 <= head <= 0xBF:
        start, size = pos + 1, head & 0x1F
    elif head == 0xD9 and pos + 1 < len(body):
        start, size = pos + 2, body[pos + 1]
    elif head == 0xDA and pos + 2 < len(body):
        start, size = pos + 3, int.from_bytes(body[pos + 1 : pos + 3], "big")
    else:
        return None
    end = start + size
    if end > len(body):
        return None
    try:
        return body[start:end].decode("utf-8"), end
    except UnicodeDecodeError:
        return None
