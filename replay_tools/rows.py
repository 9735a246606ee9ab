"""Listing output that streams: tables, JSON, JSON Lines, CSV and TSV, one row at a time.

A listing command (``events``, ``blame``, ``jobs``, ...) describes its columns once
(:class:`Column`) and hands rows to :func:`row_writer`, which prints each as soon as it
is known and keeps only a bounded look-ahead in memory, so a 300k-event job prints its
first row at once and never holds the whole table.

Table layout:

* *key* columns (a version, a time, a kind, a routine id) are never cut; *data*
  columns (payloads, values) take the width left and are cut with ``…`` first;
* widths come from the column's known width or from a look-ahead of at most
  :data:`LOOKAHEAD_ROWS` rows or :data:`LOOKAHEAD_SECONDS` (whichever comes first);
  a later, longer key value pushes its row's later columns right rather than being cut;
* when even the key columns do not fit the width, data columns and then the key
  columns of lowest priority are left out, and stderr says which (``--fields`` picks
  others);
* no trailing spaces; without a width (piped, no ``COLUMNS``) nothing is cut.

``--fields`` selects and orders columns by their JSON names in every format; JSON
formats include every field by default, tables the columns marked ``table``.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import click

from .errors import UsageError
from .output import Output, Style

__all__ = [
    "FORMATS",
    "LOOKAHEAD_ROWS",
    "LOOKAHEAD_SECONDS",
    "Column",
    "RowWriter",
    "cut",
    "format_value",
    "json_default",
    "row_writer",
    "select_columns",
]

#: The ``--format`` choices of listing commands.
FORMATS = ("table", "json", "jsonl", "csv", "tsv")
#: A table decides its column widths after at most this many rows ...
LOOKAHEAD_ROWS = 200
#: ... or this many seconds after its first row, whichever comes first.
LOOKAHEAD_SECONDS = 0.15
#: Narrowest a data column is cut to before it is left out instead.
MIN_DATA_WIDTH = 12
GAP = "  "


def json_default(obj: Any) -> Any:
    """``json.dumps`` fallback for read-only containers, bytes, datetimes, records."""
    from collections.abc import Mapping

    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        from .jsonform import to_jsonable

        return to_jsonable(bytes(obj))
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if hasattr(obj, "serialize"):
        return obj.serialize()
    return str(obj)


_compact = json.JSONEncoder(ensure_ascii=False, default=json_default, separators=(", ", ": ")).encode


def format_value(value: Any) -> str:
    """A one-line rendering of a value: text as is, ``null``, compact JSON otherwise."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value.replace("\n", "\\n").replace("\r", "\\r")
    if value is True:
        return "true"
    if value is False:
        return "false"
    try:
        return _compact(value)
    except (TypeError, ValueError):
        return repr(value)


def cut(text: str, width: int | None) -> str:
    """``text`` cut to ``width`` characters with a final ``…`` (``None``: not cut)."""
    if width is None or len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    return text[: width - 1] + "…"


class Column(NamedTuple):
    """One column of a listing.

    Attributes:
        name: the field name in JSON and for ``--fields``.
        get: the raw value from a source item.
        text: the value as table/CSV text (default :func:`format_value`).
        json: the value in JSON (default: as is).
        header: the table header (default: ``name`` upper-cased).
        kind: ``"key"`` (never cut), ``"num"`` (a key, right-aligned) or ``"data"`` (cut first).
        width: the width when known beforehand (else from the look-ahead).
        table: shown in the table by default.
        priority: kept longer when the terminal is too narrow (higher = kept longer).
        aliases: other names ``--fields`` accepts.
    """

    name: str
    get: Callable[[Any], Any]
    text: Callable[[Any], str] = format_value
    json: Callable[[Any], Any] | None = None
    header: str | None = None
    kind: str = "key"
    width: int | None = None
    table: bool = True
    priority: int = 50
    aliases: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        """The header shown in tables."""
        return self.header if self.header is not None else self.name.upper()


def select_columns(columns: Sequence[Column], fields: str | None, fmt: str) -> list[Column]:
    """The columns ``--fields`` names, in its order; the format's defaults without it.

    Raises:
        UsageError: an unknown field (names the ones that exist).
    """
    if not fields:
        return [c for c in columns if fmt in ("json", "jsonl") or c.table]
    chosen: list[Column] = []
    names = {c.name: c for c in columns}
    for c in columns:
        for alias in c.aliases:
            names.setdefault(alias, c)
    for raw in fields.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        col = names.get(name)
        if col is None:
            from difflib import get_close_matches

            near = get_close_matches(name, list(names), n=3)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            msg = f"unknown field {raw.strip()!r} for --fields{hint}; fields: {', '.join(c.name for c in columns)}"
            raise UsageError(msg)
        if col not in chosen:
            chosen.append(col)
    if not chosen:
        msg = f"--fields names no field; fields: {', '.join(c.name for c in columns)}"
        raise UsageError(msg)
    return chosen


class RowWriter:
    """Writes rows in one format; :meth:`close` ends the output (and says if there was none)."""

    def __init__(self, out: Output, columns: Sequence[Column]) -> None:
        self.out = out
        self.columns = list(columns)
        self.count = 0

    def write(self, item: Any) -> None:
        """Write the row for ``item`` (each column's ``get`` reads it)."""
        raise NotImplementedError

    def write_all(self, items: Iterable[Any]) -> int:
        """Write a row per item; return how many."""
        for item in items:
            self.write(item)
        return self.count

    def close(self) -> None:
        """Finish the output (a JSON array's closing bracket, a table's buffered rows)."""


class _JsonLines(RowWriter):
    def __init__(self, out: Output, columns: Sequence[Column]) -> None:
        super().__init__(out, columns)
        self._dumps = json.JSONEncoder(ensure_ascii=False, default=json_default, separators=(",", ":")).encode

    def obj(self, item: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in self.columns:
            value = c.get(item)
            out[c.name] = c.json(value) if c.json is not None else value
        return out

    def write(self, item: Any) -> None:
        self.out.write(self._dumps(self.obj(item)) + "\n")
        self.count += 1


class _JsonArray(_JsonLines):
    def __init__(self, out: Output, columns: Sequence[Column], envelope: tuple[str, str] | None) -> None:
        super().__init__(out, columns)
        self._before, self._after = envelope if envelope is not None else ("", "")

    def write(self, item: Any) -> None:
        self.out.write((self._before + "[\n  " if not self.count else ",\n  ") + self._dumps(self.obj(item)))
        self.count += 1

    def close(self) -> None:
        self.out.write((self._before + "[]" if not self.count else "\n]") + self._after + "\n")


class _Delimited(RowWriter):
    def __init__(self, out: Output, columns: Sequence[Column], dialect: str) -> None:
        super().__init__(out, columns)
        self._dialect = dialect
        self._started = False

    def _emit(self, values: list[str]) -> None:
        import io

        buf = io.StringIO()
        if self._dialect == "tsv":
            # TSV has no quoting: tabs and newlines inside values are escaped.
            buf.write("\t".join(v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                                for v in values) + "\n")
        else:
            csv.writer(buf, lineterminator="\n").writerow(values)
        self.out.write(buf.getvalue())

    def write(self, item: Any) -> None:
        if not self._started:
            self._emit([c.name for c in self.columns])
            self._started = True
        self._emit([c.text(c.get(item)) for c in self.columns])
        self.count += 1

    def close(self) -> None:
        if not self._started:
            self._emit([c.name for c in self.columns])


class _Table(RowWriter):
    def __init__(self, out: Output, columns: Sequence[Column]) -> None:
        super().__init__(out, columns)
        self._pending: list[list[str]] = []
        self._started_at: float | None = None
        self._layout: list[tuple[int, Column, int | None, int | None]] | None = None

    def write(self, item: Any) -> None:
        self.count += 1
        layout = self._layout
        if layout is not None:
            # Only the columns shown are formatted (a hidden data column costs nothing).
            cells = [""] * len(self.columns)
            for i, c, _pad, _cut in layout:
                cells[i] = c.text(c.get(item))
            self._print(cells)
            return
        cells = [c.text(c.get(item)) for c in self.columns]
        self._pending.append(cells)
        now = time.monotonic()
        if self._started_at is None:
            self._started_at = now
        if len(self._pending) >= LOOKAHEAD_ROWS or now - self._started_at >= LOOKAHEAD_SECONDS:
            self._flush_pending()

    def close(self) -> None:
        if self._layout is None and self._pending:
            self._flush_pending()

    def _flush_pending(self) -> None:
        self._layout = self._plan()
        self._print_header()
        for cells in self._pending:
            self._print(cells)
        self._pending = []

    def _plan(self) -> list[tuple[int, Column, int | None, int | None]]:
        """Decide ``(index, column, pad, cut)`` per shown column from the look-ahead."""
        natural = []
        for i, c in enumerate(self.columns):
            seen = max((len(row[i]) for row in self._pending), default=0)
            natural.append(max(seen, len(c.title)) if c.kind == "data" else max(c.width or 0, seen, len(c.title)))
        keep = list(range(len(self.columns)))
        width = self.out.width
        hidden: list[str] = []
        if width is not None:
            def need(idx: list[int]) -> int:
                keys = sum(natural[i] for i in idx if self.columns[i].kind != "data")
                datas = sum(min(natural[i], MIN_DATA_WIDTH) for i in idx if self.columns[i].kind == "data")
                return keys + datas + len(GAP) * (len(idx) - 1)

            # Leave out data columns, then the keys of lowest priority, until the rest fits.
            order = sorted(keep, key=lambda i: (self.columns[i].kind != "data", self.columns[i].priority, -i))
            while len(keep) > 1 and need(keep) > width:
                drop = next(i for i in order if i in keep)
                keep.remove(drop)
                hidden.append(self.columns[drop].title)
        cuts: dict[int, int | None] = {i: None for i in keep}
        pads = {i: natural[i] for i in keep}
        datas = [i for i in keep if self.columns[i].kind == "data"]
        if width is not None and datas:
            keys = sum(natural[i] for i in keep if self.columns[i].kind != "data")
            room = width - keys - len(GAP) * (len(keep) - 1)
            share = {i: max(MIN_DATA_WIDTH, room // len(datas)) for i in datas}
            # A data column that needs less than its share gives the rest to the others.
            spare = sum(share[i] - natural[i] for i in datas if natural[i] < share[i])
            for i in datas:
                share[i] = min(share[i], natural[i])
            for i in datas:
                if spare and natural[i] > share[i]:
                    extra = min(spare, natural[i] - share[i])
                    share[i] += extra
                    spare -= extra
            for i in datas:
                cuts[i] = pads[i] = share[i]
        if hidden:
            click.echo(f"routilux-replay: note: {', '.join(reversed(hidden))} left out to fit {width} columns "
                       "(widen the terminal, or choose with --fields)", err=True)
        return [(i, self.columns[i], pads[i], cuts[i]) for i in keep]

    def _join(self, cells: list[str]) -> str:
        assert self._layout is not None
        last = len(self._layout) - 1
        parts = [text.rjust(pad or 0) if c.kind == "num" else (text.ljust(pad or 0) if n < last else text)
                 for n, ((_i, c, pad, _cut), text) in enumerate(zip(self._layout, cells, strict=True))]
        return GAP.join(parts)  # no padding after the last column

    def _print_header(self) -> None:
        assert self._layout is not None
        self.out.line(self.out.style(self._join([c.title for _i, c, _p, _c in self._layout]).rstrip(), Style.BOLD))

    def _print(self, cells: list[str]) -> None:
        layout = self._layout
        assert layout is not None
        shown = [cut(cells[i], width) if c.kind == "data" else cells[i] for i, c, _pad, width in layout]
        self.out.line(self._join(shown))


def row_writer(out: Output, columns: Sequence[Column], fmt: str, *,
               json_envelope: tuple[str, str] | None = None) -> RowWriter:
    """A writer of ``columns`` in ``fmt`` (one of :data:`FORMATS`) to ``out``.

    ``json_envelope`` is text written before and after the array in ``json`` format
    (e.g. ``('{"field": "x", "changes": ', '}')``), so a document can stream its rows.
    """
    if fmt == "table":
        return _Table(out, columns)
    if fmt == "jsonl":
        return _JsonLines(out, columns)
    if fmt == "json":
        return _JsonArray(out, columns, json_envelope)
    if fmt in ("csv", "tsv"):
        return _Delimited(out, columns, fmt)
    msg = f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}"
    raise click.BadParameter(msg)
