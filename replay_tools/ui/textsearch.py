"""The event list's text filter: what it matches, and how a big log is searched quickly.

**What matches.** An event matches a text when the text, ignoring the case of the
letters A–Z, occurs in

* the event's kind, or
* one *atom* of its payload: a key or a string value (as stored), or a number (its
  decimal text as the list shows it: ``42``, ``12.5``, ``1e-05``).

Atoms are found in dicts (keys and values), lists and tuples, at any depth; other values
(booleans, ``None``, bytes, datetimes, sets, stored objects) hold no atoms. A text is
matched inside one atom: it never spans two (``limit 3`` does not match ``{"limit": 3}``;
``limit`` and ``3`` each do). The routine is not part of the text: the routine filter
selects it. :func:`event_matches` is this definition, word for word.

**How it is fast.** Looking at every payload decoded costs seconds on a 1M-event log.
But a string atom is stored in the log as its UTF-8 bytes, contiguous, and lowering the
letters A–Z of UTF-8 bytes lowers exactly the same letters of the text. So an event whose
stored bytes (A–Z lowered) do not contain the text's bytes has no string atom holding the
text. Numbers are stored in binary, so this shortcut holds only for a text that cannot
occur in a number's decimal text, i.e. one with a character outside ``0-9 . + - e``
(:func:`needs_numbers`). For such a text, :func:`scan_text` reads the raw bytes of a
range of events a chunk at a time, finds the candidates with one ``bytes.find`` per chunk,
and decodes only those to apply :func:`event_matches`; a candidate that only looked like
a match (bytes of a header, an object's fields) is dropped there. A number-like text
(``4711``) decodes every event. ``tests/ui/test_textsearch.py`` checks the fast path
against :func:`event_matches` on payloads built to trip it.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate
from typing import Any

from eventlog import CorruptionError

from ..replay import decode_raw
from ..source import Job, damaged

__all__ = ["NUMBER_CHARS", "atoms", "event_matches", "fold", "holds", "needs_numbers", "scan_text"]

#: The characters a number's decimal text is made of (after folding: ``E`` -> ``e``).
NUMBER_CHARS = frozenset("0123456789.+-e")

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

#: Events whose raw bytes are searched together (one ``bytes.find`` loop per chunk).
SCAN_CHUNK = 8192


def fold(text: str) -> str:
    """``text`` with the letters A–Z lowered (and nothing else: the filter's case rule)."""
    return text.translate(_ASCII_LOWER)


def needs_numbers(needle: str) -> bool:
    """True when the folded ``needle`` could occur in a number's decimal text."""
    return all(ch in NUMBER_CHARS for ch in needle)


def atoms(data: Any, numbers: bool = True) -> Iterator[str]:
    """The atoms of a payload as text, in document order (see the module doc); numbers if asked.

    Strings are yielded as stored (not folded): compare a folded needle with
    ``fold(atom)``, or :func:`holds` does it.
    """
    stack = [data]
    pop, extend = stack.pop, stack.extend
    while stack:
        value = pop()
        kind = type(value)
        if kind is str:
            yield value
        elif kind is dict or (kind is not list and kind is not tuple and isinstance(value, dict)):
            pairs = [x for pair in value.items() for x in pair]
            pairs.reverse()
            extend(pairs)
        elif kind is list or kind is tuple or (isinstance(value, (list, tuple))):
            extend(reversed(value))
        elif numbers and kind is not bool and isinstance(value, (int, float)):
            if kind is int or not isinstance(value, float):
                yield str(int(value))
            elif math.isfinite(value):
                yield repr(float(value))


def holds(needle: str, data: Any, numbers: bool) -> bool:
    """Whether one atom of ``data`` holds the folded ``needle`` (numbers only if asked)."""
    for atom in atoms(data, numbers):
        # A folded needle has no A-Z: if the atom holds it as is, its folded form does too.
        if needle in atom or needle in fold(atom):
            return True
    return False


def event_matches(needle: str, kind: str, data: Any) -> bool:
    """Whether event ``(kind, data)`` matches the folded ``needle`` (the definition)."""
    if needle in fold(kind):
        return True
    return holds(needle, data, needs_numbers(needle))


def scan_text(job: Job, needle: str, lo: int, hi: int, kind_of: Callable[[int], str],
              wanted: Iterable[int] | None = None,
              progress: Callable[[int], None] | None = None) -> list[int]:
    """The versions in ``lo..hi`` (among ``wanted``, if given) whose event matches ``needle``.

    ``needle`` is folded already (:func:`fold`); ``kind_of(seq)`` names an event's kind
    (the index knows it without decoding). ``progress`` is called with the version
    reached after each chunk.

    Raises:
        DamagedLogError: the log cannot be read in this range.
    """
    keep = None if wanted is None else set(wanted)
    if lo > hi or keep is not None and not keep:
        return []
    if not needle:  # the empty text is in every kind
        return [s for s in range(lo, hi + 1) if keep is None or s in keep]
    if needs_numbers(needle):
        return _scan_decoded(job, needle, lo, hi, keep, progress)
    probe = needle.encode("utf-8")
    kind_hit: dict[str, bool] = {}
    out: list[int] = []
    seqs: list[int] = []
    bodies: list[bytes] = []
    try:
        for seq, _ts, body in job.log.read_raw(lo, hi):
            if keep is not None and seq not in keep:
                continue
            seqs.append(seq)
            bodies.append(body)
            if len(bodies) >= SCAN_CHUNK:
                out.extend(_chunk_matches(job, needle, probe, seqs, bodies, kind_of, kind_hit))
                if progress is not None:
                    progress(seq)
                seqs, bodies = [], []
        if bodies:
            out.extend(_chunk_matches(job, needle, probe, seqs, bodies, kind_of, kind_hit))
    except CorruptionError as exc:
        raise damaged(job.path, exc) from None
    return out


def _chunk_matches(job: Job, needle: str, probe: bytes, seqs: list[int], bodies: list[bytes],
                   kind_of: Callable[[int], str], kind_hit: dict[str, bool]) -> list[int]:
    """The matching seqs of one chunk: a kind that holds the needle, else a byte hit that decodes to one."""
    # One buffer per chunk, A-Z lowered in one call; a hit is mapped back to its event
    # by the bodies' start offsets. A separator byte keeps bodies apart (a hit spanning
    # two bodies is only a candidate of the first, checked and dropped below).
    starts = list(accumulate((len(b) + 1 for b in bodies), initial=0))
    buffer = b"\0".join(bodies).lower()
    candidates: set[int] = set()
    find = buffer.find
    at = find(probe)
    while at >= 0:
        i = bisect_right(starts, at) - 1
        candidates.add(i)
        at = find(probe, starts[i + 1] if i + 1 < len(starts) else len(buffer))
    out = []
    for i, seq in enumerate(seqs):
        kind = kind_of(seq)
        hit = kind_hit.get(kind)
        if hit is None:
            hit = kind_hit[kind] = needle in fold(kind)
        if hit:
            out.append(seq)
        elif i in candidates:
            kind_, data = decode_raw(job, seq, bodies[i])
            if holds(needle, data, numbers=False):
                out.append(seq)
    return out


_JSON = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


def _scan_decoded(job: Job, needle: str, lo: int, hi: int, keep: set[int] | None,
                  progress: Callable[[int], None] | None) -> list[int]:
    """A number-like needle: decode every event of the range and apply :func:`event_matches`.

    A payload's JSON text (written in C) holds the text of each of its atoms: numbers as
    the list shows them, strings with only control characters, quotes and backslashes
    escaped, none of which a number-like needle contains. So an event whose JSON text
    (lowered) does not hold the needle cannot match, and only the others are walked.
    """
    out = []
    try:
        for seq, _ts, body in job.log.read_raw(lo, hi):
            if keep is not None and seq not in keep:
                continue
            kind, data = decode_raw(job, seq, body)
            try:
                maybe = needle in _JSON(data).lower() or needle in fold(kind)
            except (TypeError, ValueError):  # bytes, datetimes, sets...: walk it
                maybe = True
            if maybe and event_matches(needle, kind, data):
                out.append(seq)
            if progress is not None and not seq % SCAN_CHUNK:
                progress(seq)
    except CorruptionError as exc:
        raise damaged(job.path, exc) from None
    return out
