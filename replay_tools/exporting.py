"""Export a job's full trail as JSON Lines or one JSON document, and import it back.

The export is for other tools: one event per line with stable field names
(:mod:`replay_tools.jsonform`). Every line carries the hash-chain link after its event,
so an importer can check the trail as it reads it, and the last link is the job's
head hash. ``import`` rebuilds a job (a durable directory or a saved job file) whose
``verify`` passes and whose head hash equals the exported one: the chain covers the
events and their timestamps, not how they were batched, so re-appending each event
with its own ``ts`` reproduces it exactly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import IO, Any, NamedTuple

from eventlog import EventLog, InMemoryEventLog, Record
from eventlog.chain import GENESIS, next_link
from eventlog.encoding import decode_event

from .errors import ImportFormatError
from .jsonform import record_from_json, record_to_json

__all__ = [
    "EXPORT_FORMAT",
    "ImportResult",
    "check_empty_destination",
    "export_log",
    "import_to_memory",
    "iter_export",
    "read_export_into",
]

#: The ``format`` field of a ``--format json`` document.
EXPORT_FORMAT = "routilux-replay-export/1"

Progress = Callable[[int], None]


def _linked(log: EventLog, key: bytes | None) -> Iterator[tuple[Record, bytes | None]]:
    """Yield each record with its chain link, computed from the raw bytes as we go.

    A keyed log exported without its key gets no links (they would be wrong, and a wrong
    link in an audit export is worse than none).
    """
    keyed = bool(getattr(log, "keyed", False))
    compute = key is not None or not keyed
    link = GENESIS
    k = key or b""
    for seq, ts, event_bytes in log.read_raw():
        kind, data = decode_event(event_bytes, where=log.location, seq=seq)
        rec = Record(seq, ts, kind, data)
        if compute:
            link = next_link(link, seq, ts, event_bytes, k)
            yield rec, link
        else:
            yield rec, None


def export_log(log: EventLog, out: IO[str], *, fmt: str = "jsonl", key: bytes | None = None,
               meta: dict[str, Any] | None = None, progress: Progress | None = None) -> int:
    """Write every event of ``log`` to ``out``; return the number written.

    Args:
        fmt: ``"jsonl"`` (one event per line) or ``"json"`` (one document with a header:
            ``format``, ``head_seq``, ``head_hash``, ``keyed``, ``meta`` and ``events``).
        key: the hash-chain key of a keyed log (without it, a keyed log's links are left out).
        meta: extra header fields for ``"json"`` (job id, flow id).
        progress: called with the number of events written so far, every 4096 events.
    """
    if fmt not in ("jsonl", "json"):
        msg = f"unknown export format {fmt!r}: use jsonl or json"
        raise ValueError(msg)
    dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
    count = 0
    if fmt == "json":
        header = {
            "format": EXPORT_FORMAT,
            "head_seq": log.head_seq,
            "head_hash": log.head_hash.hex(),
            "keyed": bool(getattr(log, "keyed", False)),
            "meta": meta or {},
        }
        out.write(dumps(header)[:-1] + ',"events":[\n')
    for rec, link in _linked(log, key):
        line = dumps(record_to_json(rec, link))
        if fmt == "json" and count:
            out.write(",\n")
        out.write(line)
        if fmt == "jsonl":
            out.write("\n")
        count += 1
        if progress is not None and count % 4096 == 0:
            progress(count)
    if fmt == "json":
        out.write("\n]}\n")
    if progress is not None:
        progress(count)
    return count


def iter_export(path: str) -> Iterator[tuple[int, Record, str | None]]:
    """Yield ``(line_number, record, link_hex)`` from an export file (jsonl or json).

    Raises:
        FileNotFoundError: no such file.
        ImportFormatError: a line that is not an event, naming the line.
    """
    with open(path, encoding="utf-8") as fh:
        first = fh.read(1)
        while first and first.isspace():
            first = fh.read(1)
        fh.seek(0)
        if not first:
            raise ImportFormatError(path, None, "the file is empty")
        # A jsonl export starts with an event object on line 1; a json document starts
        # with the header object that holds "format".
        head = fh.readline()
        try:
            first_obj = json.loads(head)
        except json.JSONDecodeError:
            first_obj = None
        fh.seek(0)
        if isinstance(first_obj, dict) and "seq" in first_obj:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    rec, link = record_from_json(obj)
                except (json.JSONDecodeError, ValueError) as exc:
                    raise ImportFormatError(path, lineno, str(exc)) from None
                yield lineno, rec, link
            return
        try:
            doc = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(path, exc.lineno, f"not JSON Lines or a JSON export ({exc.msg})") from None
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT or not isinstance(doc.get("events"), list):
        raise ImportFormatError(path, 1, f"not an export (expected JSON Lines events or a {EXPORT_FORMAT} document)")
    for index, obj in enumerate(doc["events"]):
        try:
            rec, link = record_from_json(obj)
        except ValueError as exc:
            raise ImportFormatError(path, index + 2, f"event {index + 1}: {exc}") from None
        yield index + 2, rec, link


class ImportResult(NamedTuple):
    """What :func:`read_export_into` did.

    Attributes:
        events: the number of events imported.
        head_hash: the rebuilt log's head hash (hex).
        links_checked: how many exported links were compared with the rebuilt chain.
    """

    events: int
    head_hash: str
    links_checked: int


def read_export_into(path: str, log: EventLog, *, progress: Progress | None = None,
                     after_append: Callable[[Record], None] | None = None) -> ImportResult:
    """Append every event of the export at ``path`` to the empty ``log``.

    Each event keeps its ``ts``; seqs must run 1, 2, 3, ...; every exported link must
    equal the rebuilt chain's (so a tampered or truncated export is refused).
    ``after_append`` is called with each appended record (e.g. to take snapshots).

    Raises:
        ImportFormatError: a bad line, a gap in seqs, or a link that does not match.
        ValueError: ``log`` is not empty.
    """
    if log.head_seq:
        msg = f"the destination {log.location} already holds {log.head_seq} events; import needs an empty job"
        raise ValueError(msg)
    checked = 0
    count = 0
    for lineno, rec, link in iter_export(path):
        if rec.seq != count + 1:
            raise ImportFormatError(path, lineno, f"expected seq {count + 1}, found seq {rec.seq}")
        try:
            appended = log.append(rec.kind, rec.data, ts=rec.ts)
        except (TypeError, ValueError) as exc:
            raise ImportFormatError(path, lineno, str(exc)) from None
        count += 1
        if link is not None:
            if log.head_hash.hex() != link.lower():
                raise ImportFormatError(
                    path, lineno,
                    f"hash-chain link of seq {rec.seq} does not match the export ({link} expected, "
                    f"{log.head_hash.hex()} rebuilt): the export was altered, or the key differs",
                )
            checked += 1
        if after_append is not None:
            after_append(appended)
        if progress is not None and count % 4096 == 0:
            progress(count)
    if count == 0:
        raise ImportFormatError(path, None, "the export holds no events")
    return ImportResult(count, log.head_hash.hex(), checked)


def import_to_memory(path: str, *, key: bytes | None = None) -> tuple[InMemoryEventLog, ImportResult]:
    """Import an export into a new in-memory log (used to write a saved job file)."""
    log = InMemoryEventLog(key=key)
    result = read_export_into(path, log)
    return log, result


def check_empty_destination(dest: str) -> None:
    """Refuse to import over an existing job (an import never merges histories)."""
    if os.path.isdir(dest) and os.listdir(dest):
        msg = f"destination {dest!r} is a non-empty directory; import into a new path"
        raise ValueError(msg)
    if os.path.isfile(dest):
        msg = f"destination {dest!r} already exists; import into a new path"
        raise ValueError(msg)
