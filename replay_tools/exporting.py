"""Export a job's full trail as JSON Lines or one JSON document, and import it back.

``import`` also takes a routilux 0.10 JSON save (what the original's ``JobState.save``
wrote): the job is rebuilt as a new log whose first event names the file and the SHA-256
of its bytes (:mod:`routilux.legacy_save`), staged and checked like any import.

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

from .errors import DestinationError, ImportFormatError
from .jsonform import record_from_json, record_to_json

__all__ = [
    "EXPORT_FORMAT",
    "ImportResult",
    "MAX_LINE",
    "MAX_NESTING",
    "check_empty_destination",
    "export_log",
    "import_job",
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


#: Longest line an import reads (characters): the largest event (16 MiB of msgpack) as
#: JSON, with base64 and escapes, fits well within it; a longer line is refused before it
#: is parsed, so a hostile export cannot make the import hold gigabytes.
MAX_LINE = 128 * 1024 * 1024
#: Deepest nesting an import accepts in one exported event: the event object, its data,
#: and as deep as the log accepts (``eventlog.codec.MAX_DEPTH``) plus tagging ($bytes).
MAX_NESTING = 72


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in item)
    return False


def _parse_json(text: str, path: str, lineno: int | None) -> Any:
    """``json.loads`` with the nesting bounded: a hostile line is a one-line error."""
    try:
        obj = json.loads(text)
    except RecursionError:
        # The C parser stops at Python's recursion limit; far deeper than any event.
        raise ImportFormatError(path, lineno, f"the JSON nests deeper than {MAX_NESTING} levels") from None
    if _depth_exceeds(obj, MAX_NESTING + 2):  # a json document's header and events list add two
        raise ImportFormatError(path, lineno, f"the JSON nests deeper than {MAX_NESTING} levels")
    return obj


def _lines(fh: IO[str], path: str) -> Iterator[tuple[int, str]]:
    """Numbered lines, each at most :data:`MAX_LINE` characters (else an ImportFormatError)."""
    lineno = 0
    while True:
        line = fh.readline(MAX_LINE + 1)
        if not line:
            return
        lineno += 1
        if len(line) > MAX_LINE:
            raise ImportFormatError(path, lineno, f"the line is longer than {MAX_LINE} characters")
        yield lineno, line


def iter_export(path: str) -> Iterator[tuple[int, Record, str | None]]:
    """Yield ``(line_number, record, link_hex)`` from an export file (jsonl or json).

    Lines longer than :data:`MAX_LINE` and JSON nested deeper than :data:`MAX_NESTING`
    are refused before they can exhaust memory or the stack.

    Raises:
        FileNotFoundError: no such file.
        ImportFormatError: a line that is not an event, naming the line.
    """
    with open(path, encoding="utf-8", errors="strict") as fh:
        try:
            first = fh.read(1)
            while first and first.isspace():
                first = fh.read(1)
        except UnicodeDecodeError as exc:
            raise ImportFormatError(path, None, f"not UTF-8 text ({exc.reason})") from None
        fh.seek(0)
        if not first:
            raise ImportFormatError(path, None, "the file is empty")
        try:
            # A jsonl export starts with an event object on line 1; a json document starts
            # with the header object that holds "format".
            first_obj: Any = None
            for _n, head in _lines(fh, path):
                try:
                    first_obj = _parse_json(head, path, 1)
                except (json.JSONDecodeError, ImportFormatError) as exc:
                    if isinstance(exc, ImportFormatError) and "nests deeper" in exc.reason:
                        raise
                    first_obj = None
                break
            fh.seek(0)
            if isinstance(first_obj, dict) and "seq" in first_obj:
                for lineno, line in _lines(fh, path):
                    if not line.strip():
                        continue
                    try:
                        obj = _parse_json(line, path, lineno)
                        rec, link = record_from_json(obj)
                    except (json.JSONDecodeError, ValueError) as exc:
                        if isinstance(exc, ImportFormatError):
                            raise
                        raise ImportFormatError(path, lineno, str(exc)) from None
                    yield lineno, rec, link
                return
            text = fh.read()
        except UnicodeDecodeError as exc:
            raise ImportFormatError(path, None, f"not UTF-8 text ({exc.reason})") from None
    try:
        doc = _parse_json(text, path, None)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(path, exc.lineno, f"not JSON Lines or a JSON export ({exc.msg})") from None
    if isinstance(doc, dict) and doc.get("_type") == "JobState":
        yield from _legacy_save_records(path)
        return
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT or not isinstance(doc.get("events"), list):
        raise ImportFormatError(path, 1, f"not an export (expected JSON Lines events or a {EXPORT_FORMAT} document)")
    for index, obj in enumerate(doc["events"]):
        try:
            rec, link = record_from_json(obj)
        except ValueError as exc:
            raise ImportFormatError(path, index + 2, f"event {index + 1}: {exc}") from None
        yield index + 2, rec, link


def _legacy_save_records(path: str) -> Iterator[tuple[int, Record, str | None]]:
    """The events of a routilux 0.10 JSON save (``JobState.save`` of the original), as an import.

    :mod:`routilux.legacy_save` turns the save into events (the first names the file and
    the SHA-256 of its bytes); they are stamped with the time of the import (the records
    keep their own timestamps) and carry no links: the chain is the new log's own.
    """
    import time

    from routilux.legacy_save import read_010_save

    try:
        events = read_010_save(path)
    except ValueError as exc:
        raise ImportFormatError(path, None, str(exc)) from None
    ts = time.time_ns()
    for seq, (kind, data) in enumerate(events, start=1):
        yield 1, Record(seq, ts, kind, data), None


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
        raise DestinationError(dest, "it is a non-empty directory; import into a new path")
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise DestinationError(dest, "it already exists; import into a new path")


class _Folding:
    """Folds each imported event (a malformed one fails the import, naming its line) and
    stores a snapshot now and then, as JobState does, so time travel on the imported job
    is as fast as on the original."""

    def __init__(self, log: EventLog | None, every: int, where: str) -> None:
        from routilux.projection import JobProjection

        self.log = log
        self.every = every
        self.where = where
        self.p = JobProjection()

    def __call__(self, rec: Record) -> None:
        from routilux.errors import ReplayError as FoldError
        from routilux.events import SCHEMA_VERSION
        from routilux.projection import apply, snapshot_state

        try:
            apply(self.p, rec)
        except FoldError as exc:
            raise ImportFormatError(self.where, None, f"event {rec.seq} cannot be replayed: {exc}") from None
        if self.log is not None and rec.seq % self.every == 0:
            self.log.save_snapshot(snapshot_state(self.p), schema_version=SCHEMA_VERSION)


def _snapshot_every() -> int:
    import routilux.job_state as job_state

    return int(getattr(job_state, "DEFAULT_SNAPSHOT_EVERY", 4096))


def import_job(source: str, destination: str, *, key: bytes | None = None, as_file: bool = False,
               progress: Progress | None = None, snapshot_every: int | None = None) -> ImportResult:
    """Rebuild a job from an export; it appears at ``destination`` only once complete and checked.

    ``destination`` is a new durable job directory (or an empty one), a saved job file
    (``as_file``, or a path ending in ``.rjob``) or a PostgreSQL job without events
    (``postgresql://...#job``). Every event keeps its timestamp, so the rebuilt job has
    the export's head hash; each exported link is checked as it is read and each event
    is folded, so an altered or malformed export is refused at its first bad line.

    A directory or file is built in a hidden staging place beside the destination,
    checked (``eventlog.verify``, or re-reading the saved file), then renamed into place;
    a refused or failed import removes it (:mod:`replay_tools.staging`). A PostgreSQL
    job created by a failed import is deleted again.

    Raises:
        JobNotFoundError: no export at ``source``.
        ImportFormatError: the export is not one, altered, malformed or too deep/long.
        DestinationError: ``destination`` already holds something.
    """
    from .errors import JobNotFoundError
    from .source import is_pg_location
    from .staging import staged

    if not os.path.exists(source):
        raise JobNotFoundError(source, f"no such export file: {source!r}")
    if os.path.isdir(source):
        raise ImportFormatError(source, None, "it is a directory (an export is a .jsonl or .json file)")
    every = snapshot_every if snapshot_every is not None else _snapshot_every()
    if is_pg_location(destination):
        return _import_into_pg(source, destination, key, every, progress)
    check_empty_destination(destination)
    as_file = as_file or destination.endswith(".rjob")
    with staged(destination) as stage:
        if as_file:
            result = _import_file(source, stage.path, key, progress)
        else:
            result = _import_directory(source, stage.path, key, every, progress)
        stage.commit()
    return result


def _first_is_job(path: str) -> Callable[[Record], None]:
    def check(rec: Record) -> None:
        if rec.seq == 1 and rec.kind != "job_created":
            raise ImportFormatError(path, None, f"it is not a job's trail: its first event is {rec.kind!r}, "
                                                "not job_created")

    return check


def _import_directory(source: str, path: str, key: bytes | None, every: int,
                      progress: Progress | None) -> ImportResult:
    import eventlog

    log = eventlog.open_log(path, durability="batch", key=key)
    try:
        fold = _Folding(log, every, source)
        check = _first_is_job(source)

        def each(rec: Record) -> None:
            check(rec)
            fold(rec)

        result = read_export_into(source, log, after_append=each, progress=progress)
        log.sync()  # every event on disk before the job is renamed into place
    finally:
        log.close()
    report = eventlog.verify(path, key=key)
    if not report.ok or report.head_hash != result.head_hash:
        first = report.first_problem
        raise ImportFormatError(source, None, f"the rebuilt job does not verify ({first or 'head hash differs'})")
    return result


def _import_file(source: str, path: str, key: bytes | None, progress: Progress | None) -> ImportResult:
    import eventlog
    from routilux.events import SCHEMA_VERSION
    from routilux.projection import snapshot_state

    log = InMemoryEventLog(key=key)
    fold = _Folding(None, 0, source)
    check = _first_is_job(source)

    def each(rec: Record) -> None:
        check(rec)
        fold(rec)

    result = read_export_into(source, log, after_append=each, progress=progress)
    # A saved job file carries a snapshot at its head, like JobState.save writes.
    eventlog.write_bundle(path, log, state=snapshot_state(fold.p), schema_version=SCHEMA_VERSION)
    back, _snapshot = eventlog.read_bundle(path, key=key)  # checks every frame and link again
    try:
        if back.head_hash.hex() != result.head_hash:
            raise ImportFormatError(source, None, "the saved file does not read back with the same head hash")
    finally:
        back.close()
    return result


def _import_into_pg(source: str, destination: str, key: bytes | None, every: int,
                    progress: Progress | None) -> ImportResult:
    from .errors import DestinationError
    from .source import open_pg_job_log

    log = open_pg_job_log(destination, key=key, create=True, readonly=False)
    where = log.location
    try:
        held = log.head_seq
        if held:
            raise DestinationError(where, f"it already holds {held} events; import into a new job id")
        fold = _Folding(log, every, source)
        check = _first_is_job(source)

        def each(rec: Record) -> None:
            check(rec)
            fold(rec)

        try:
            result = read_export_into(source, log, after_append=each, progress=progress)
            log.sync()
        except BaseException:
            log.close()
            _delete_pg_job(destination)  # created by this import: leave nothing behind
            raise
    finally:
        if not log.closed:
            log.close()
    return result


def _delete_pg_job(destination: str) -> None:
    import contextlib

    from eventlog.postgres import parse_pg_location
    from routilux.job_store import JobStore

    url, job_id = parse_pg_location(destination)
    with contextlib.suppress(Exception):  # best effort: the import's own error is what matters
        JobStore(url).delete(job_id or "")
