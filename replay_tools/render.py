"""The first output helpers of the command line, kept for command modules written
against them.

New commands use :mod:`replay_tools.cli_common` (the :class:`~replay_tools.cli_common.Printer`
and its streaming listings), which follows every convention: ``--color`` and
``NO_COLOR``, the pager, ``COLUMNS``, ``--utc/--local``, ``--format``. These helpers
follow the ones they can: colour only on a terminal without ``NO_COLOR``, times in
UTC with ``Z``. Their tables are built whole by ``rich`` before printing: fine for a
few rows, not for listings of events.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .diff import GROUP_TITLES, Difference, group_differences
from .jsonform import to_jsonable

__all__ = [
    "console",
    "dump_json",
    "format_value",
    "json_line",
    "print_diff",
    "print_kv",
    "print_table",
    "progress",
]


def console(file: IO[str] | None = None) -> Console:
    """Return a console on ``file`` (stdout); styles only on a terminal without ``NO_COLOR``."""
    import os

    stream = file if file is not None else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty() and not os.environ.get("NO_COLOR")
    # Off a terminal rich would wrap at 80 columns; a wide virtual width keeps one row
    # per line so output piped to grep stays greppable.
    return Console(file=stream, force_terminal=tty, no_color=not tty, highlight=False,
                   width=None if tty else 200, soft_wrap=not tty)


def _default(obj: Any) -> Any:
    if isinstance(obj, _dt.datetime):
        return obj.isoformat()
    if isinstance(obj, (bytes, bytearray)):
        return to_jsonable(bytes(obj))
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "serialize"):
        return obj.serialize()
    return str(obj)


def json_line(obj: Any) -> str:
    """One compact JSON line (for streams of events)."""
    return json.dumps(obj, ensure_ascii=False, default=_default, separators=(",", ":"))


def dump_json(obj: Any, out: IO[str] | None = None) -> None:
    """Write ``obj`` as indented JSON with sorted keys and a final newline."""
    stream = out if out is not None else sys.stdout
    stream.write(json.dumps(obj, ensure_ascii=False, default=_default, indent=2, sort_keys=True))
    stream.write("\n")


def format_value(value: Any, limit: int = 120) -> str:
    """A short one-line rendering of a value for tables."""
    if value is None:
        return "null"
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=_default, sort_keys=False)
        except (TypeError, ValueError):
            text = repr(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def print_table(con: Console, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
                title: str | None = None, right: Iterable[str] = ()) -> None:
    """Print an aligned table without borders."""
    table = Table(box=None, title=title, title_justify="left", header_style="bold", pad_edge=False,
                  show_edge=False)
    right_cols = set(right)
    for col in columns:
        table.add_column(col, justify="right" if col in right_cols else "left", overflow="fold")
    for row in rows:
        table.add_row(*[Text(c) if isinstance(c, str) else Text(format_value(c)) for c in row])
    con.print(table)


def print_kv(con: Console, items: Iterable[tuple[str, Any]]) -> None:
    """Print ``key: value`` lines with the keys aligned."""
    pairs = [(k, v if isinstance(v, str) else format_value(v, 400)) for k, v in items]
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        con.print(Text(f"{key + ':':<{width + 1}} ", style="bold") + Text(value))


def time_label(ts: int) -> str:
    """An event's ``ts`` as shown in text: ISO, UTC with ``Z`` (see :mod:`replay_tools.timefmt`)."""
    from .timefmt import format_time

    return format_time(ts)


def print_diff(con: Console, diffs: list[Difference], label_a: str, label_b: str) -> None:
    """Print differences grouped under section titles."""
    if not diffs:
        con.print(f"no differences between {label_a} and {label_b}")
        return
    con.print(Text(f"--- {label_a}\n+++ {label_b}", style="bold"))
    marks = {"added": ("+", "green"), "removed": ("-", "red"), "changed": ("~", "yellow")}
    for group, items in group_differences(diffs).items():
        title = GROUP_TITLES.get(group, group)
        con.print(Text(f"\n{title} ({len(items)})", style="bold underline"))
        for d in items:
            mark, style = marks[d.change]
            if d.change == "changed":
                body = f"{d.path}: {format_value(d.old)} -> {format_value(d.new)}"
            elif d.change == "added":
                body = f"{d.path}: {format_value(d.new)}"
            else:
                body = f"{d.path}: {format_value(d.old)}"
            con.print(Text(f"  {mark} ", style=style) + Text(body))


@contextmanager
def progress(total: int | None, description: str) -> Iterator[Any]:
    """A progress bar on stderr when it is a terminal; yields ``update(done)``.

    Off a terminal it yields a no-op, so scripts and tests see no escape codes.
    """
    if not (sys.stderr.isatty() and total and total > 50_000):
        yield lambda done: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.update(task, completed=done)
