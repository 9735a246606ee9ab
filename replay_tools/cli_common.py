"""What every ``routilux-replay`` command shares: errors, exit codes, options, output.

A command module (ours or another branch's) follows the conventions by using these:

* :func:`handle_errors`: library and storage errors become one line on stderr
  (``routilux-replay: error: ...``) and the documented exit code
  (:mod:`replay_tools.errors`); anything else is a bug and keeps its traceback;
* :func:`output_options`: adds ``--json``, ``--color=auto|always|never``,
  ``--no-pager`` and ``--utc/--local`` (and, with ``listing=True``, ``--format
  table|json|jsonl|csv|tsv`` and ``--fields``) and passes the command one
  :class:`Printer` as ``printer``: its ``out`` is the (maybe paged) stdout, its
  ``time()``/``time_ns()`` format times in the chosen zone, ``rows()`` starts a
  streaming listing (:mod:`replay_tools.rows`), ``json()`` prints one JSON document;
* :data:`path_argument`, :data:`key_option`, :func:`open_for_reading`: the ``PATH``
  argument, ``--key-file``, and opening a job with the key;
* :func:`progress`: a progress bar on stderr for long work, only on a terminal and
  never while a pager shows the output.

Example::

    @cli.command()
    @path_argument
    @key_option
    @output_options()
    @handle_errors
    def mycommand(path: str, key_file: str | None, printer: Printer) -> None:
        with open_for_reading(path, key_file) as job:
            if printer.as_json:
                printer.json({"head": job.head})
                return
            printer.kv([("head", str(job.head))])
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import click

from .errors import EXIT_DAMAGED, EXIT_NOT_A_JOB, EXIT_NOT_FOUND, EXIT_UNAVAILABLE, EXIT_USAGE, ReplayError
from .output import ColorMode, Output, Style
from .rows import FORMATS, Column, RowWriter, format_value, json_default, row_writer, select_columns
from .timefmt import TimeZoneMode, format_time, format_time_ns

__all__ = [
    "Failure",
    "Printer",
    "handle_errors",
    "reader_gone",
    "key_option",
    "open_for_reading",
    "output_options",
    "path_argument",
    "progress",
]

F = TypeVar("F", bound=Callable[..., Any])


class Failure(click.ClickException):
    """A one-line error with its own exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # click declares it a ClassVar; per instance here

    def show(self, file: Any = None) -> None:
        """Print ``routilux-replay: error: <message>`` on stderr."""
        click.echo(f"routilux-replay: error: {self.format_message()}", err=True)


def translate(exc: BaseException) -> Failure | None:
    """Map a library or storage error to a :class:`Failure` (``None``: not ours: a bug)."""
    from eventlog import CorruptionError, EventLogError
    from routilux.errors import ReplayError as FoldError

    from .source import damaged

    if isinstance(exc, ReplayError):
        from .errors import DamagedLogError

        if isinstance(exc, DamagedLogError) and os.path.isdir(exc.path):
            return Failure(f"{exc} (`routilux-replay salvage {exc.path}` exports the intact part)", exc.exit_code)
        return Failure(str(exc), exc.exit_code)
    if type(exc).__name__ == "PostgresError":  # the server went away mid-command
        return Failure(str(exc), EXIT_UNAVAILABLE)
    if isinstance(exc, CorruptionError):
        return Failure(str(damaged(exc.segment, exc)), EXIT_DAMAGED)
    if isinstance(exc, FoldError):
        return Failure(f"the job log cannot be replayed: {exc}", EXIT_DAMAGED)
    if isinstance(exc, EventLogError):
        return Failure(str(exc), EXIT_DAMAGED)
    if isinstance(exc, FileNotFoundError):
        return Failure(str(exc), EXIT_NOT_FOUND)
    if isinstance(exc, (IsADirectoryError, NotADirectoryError, PermissionError)):
        return Failure(str(exc), EXIT_NOT_A_JOB)
    if isinstance(exc, ValueError):
        return Failure(str(exc), EXIT_USAGE)
    return None


def reader_gone() -> click.exceptions.Exit:
    """The exit for a broken pipe: the reader (``| head``, a pager) went away; exit code 0.

    Click would turn a broken pipe into exit code 1 ("a check failed" here), so commands
    end with this instead. stdout is pointed at /dev/null first, so that the final flush
    at exit cannot fail again.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return click.exceptions.Exit(0)


def handle_errors(func: F) -> F:
    """Run a command, turning known errors into one-line messages and exit codes."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except BrokenPipeError:
            raise reader_gone() from None
        except Exception as exc:
            failure = translate(exc)
            if failure is None:
                raise  # a bug, not a user error: keep the traceback
            raise failure from None

    return wrapper  # type: ignore[return-value]


path_argument = click.argument("path", metavar="PATH", type=click.Path())
key_option = click.option("--key-file", type=click.Path(), default=None,
                          help="File holding the secret key of a keyed hash chain.")


@contextlib.contextmanager
def open_for_reading(path: str, key_file: str | None) -> Iterator[Any]:
    """Open the job at ``path`` read-only (with the key in ``key_file``), closed on exit."""
    from .source import open_job, read_key_file

    job = open_job(path, key=read_key_file(key_file))
    try:
        yield job
    finally:
        job.close()


class Printer:
    """A command's output conventions, built from the common options.

    Attributes:
        out: the :class:`~replay_tools.output.Output` (stdout, maybe through a pager).
        fmt: ``table`` (text) or a machine format (``json``, ``jsonl``, ``csv``, ``tsv``).
        fields: the ``--fields`` value, or ``None``.
        tz: ``utc`` or ``local`` (see :mod:`replay_tools.timefmt`).
    """

    def __init__(self, *, color: str, pager: bool, tz: str, fmt: str, fields: str | None) -> None:
        self.fmt = fmt
        self.fields = fields
        self.tz = tz
        self.out = Output(color=color, pager=pager and fmt == "table")

    @property
    def as_json(self) -> bool:
        """A JSON format was asked for (``--json`` or ``--format json/jsonl``)."""
        return self.fmt in ("json", "jsonl")

    def time(self, ts: int | None) -> str:
        """A timestamp (ns) for text output: ISO, microseconds, with its zone."""
        return format_time(ts, self.tz)

    def time_ns(self, ts: int | None) -> str | None:
        """A timestamp (ns) for JSON output: ISO, nanoseconds, with its zone (``None`` stays)."""
        return None if ts is None else format_time_ns(ts, self.tz)

    def json(self, obj: Any) -> None:
        """Print ``obj`` as indented JSON with sorted keys."""
        self.out.write(json.dumps(obj, ensure_ascii=False, default=json_default, indent=2, sort_keys=True) + "\n")

    def rows(self, columns: Sequence[Column], *, json_envelope: tuple[str, str] | None = None) -> RowWriter:
        """A streaming writer of the listing ``columns`` in the chosen format and fields."""
        chosen = select_columns(columns, self.fields, self.fmt)
        return row_writer(self.out, chosen, self.fmt, json_envelope=json_envelope)

    def line(self, text: str = "") -> None:
        """Print one line of text."""
        self.out.line(text)

    def bold(self, text: str) -> str:
        """``text`` in bold when colour is on."""
        return self.out.style(text, Style.BOLD)

    def kv(self, items: Iterable[tuple[str, Any]]) -> None:
        """Print ``key: value`` lines with the keys aligned (values cut to the width)."""
        pairs = [(k, v if isinstance(v, str) else format_value(v)) for k, v in items]
        width = max((len(k) for k, _ in pairs), default=0)
        for key, value in pairs:
            label = f"{key + ':':<{width + 1}} "
            room = None if self.out.width is None else max(10, self.out.width - len(label))
            from .rows import cut

            self.out.line(self.bold(label) + cut(value, room if "\n" not in value else None))

    def close(self) -> None:
        """End the output (waits for the pager, if one runs)."""
        self.out.close()


def _format_choice(fmt: str | None, as_json: bool, listing: bool, json_form: str) -> str:
    if as_json and fmt not in (None, "json", "jsonl"):
        msg = f"--json and --format {fmt} contradict each other; give one of them"
        raise Failure(msg, EXIT_USAGE)
    if as_json:
        return json_form
    return fmt or "table"


def output_options(*, listing: bool = False, json_form: str = "json", json_help: str | None = None) -> Callable[[F], F]:
    """Add the common output options to a command; it receives a :class:`Printer` as ``printer``.

    Args:
        listing: also add ``--format`` and ``--fields`` (the command prints rows).
        json_form: what ``--json`` means for this command: ``json`` (one document) or
            ``jsonl`` (one object per line, for streams of events).
        json_help: the ``--json`` help text.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, color: str, no_pager: bool, tz: str, as_json: bool, fmt: str | None = None,
                    fields: str | None = None, **kwargs: Any) -> Any:
            printer = Printer(color=color, pager=not no_pager, tz=tz,
                              fmt=_format_choice(fmt, as_json, listing, json_form), fields=fields)
            try:
                try:
                    return func(*args, printer=printer, **kwargs)
                finally:
                    printer.close()
            except BrokenPipeError:
                raise reader_gone() from None

        options = [
            click.option("--json", "as_json", is_flag=True,
                         help=json_help or ("Print JSON Lines for scripts (one object per line)." if json_form == "jsonl"
                                            else "Print stable JSON for scripts.")),
            click.option("--color", type=click.Choice(ColorMode.CHOICES), default=ColorMode.AUTO, show_default=True,
                         help="Colour and bold text: auto = on a terminal unless NO_COLOR is set."),
            click.option("--no-pager", is_flag=True, help="Do not page text on a terminal (default: $PAGER or less)."),
            click.option("--utc/--local", "tz", default=True,
                         callback=lambda _ctx, _param, value: TimeZoneMode.UTC if value else TimeZoneMode.LOCAL,
                         help="Show times in UTC with Z (default) or in local time with its offset."),
        ]
        if listing:
            options += [
                click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                             help="Output format (default: table)."),
                click.option("--fields", metavar="A,B,...",
                             help="Only these fields, in this order (names as in --json)."),
            ]
        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


@contextlib.contextmanager
def progress(printer: Printer | None, total: int | None, description: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal; yields ``update(done)``.

    Off a terminal, while a pager shows the output, or for short work it yields a
    no-op, so scripts and tests see no escape codes.
    """
    if not (sys.stderr.isatty() and total and total > 50_000) or (printer is not None and printer.out.paging):
        yield lambda done: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=Console(file=sys.stderr, no_color=bool(os.environ.get("NO_COLOR"))),
                  transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.update(task, completed=done)
