"""The ``ui`` and ``html`` commands of ``routilux-replay`` (registered at the end of ``cli.py``).

Thin click layer: :mod:`replay_tools.ui.server` and :mod:`replay_tools.ui.export` do the
work; errors become one line on stderr with the exit codes of :mod:`replay_tools.cli`.
"""

from __future__ import annotations

import functools
import sys
import webbrowser
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..errors import EXIT_NOT_A_JOB, EXIT_NOT_FOUND, EXIT_USAGE, NotAJobLogError, ReplayError
from ..source import open_job, read_key_file
from .errors import PortInUseError

__all__ = ["DEFAULT_PORT", "html", "register_commands", "ui"]

#: The port ``routilux-replay ui`` tries first (a free one is picked if it is taken).
DEFAULT_PORT = 8765

F = TypeVar("F", bound=Callable[..., Any])


class _Failure(click.ClickException):
    """One line on stderr and an exit code (the same format as the other commands)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # per instance, as in replay_tools.cli

    def show(self, file: Any = None) -> None:
        click.echo(f"routilux-replay: error: {self.format_message()}", err=True)


def _errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except ReplayError as exc:
            raise _Failure(str(exc), exc.exit_code) from None
        except FileNotFoundError as exc:
            raise _Failure(str(exc), EXIT_NOT_FOUND) from None
        except (IsADirectoryError, NotADirectoryError, PermissionError) as exc:
            raise _Failure(str(exc), EXIT_NOT_A_JOB) from None
        except ValueError as exc:
            raise _Failure(str(exc), EXIT_USAGE) from None

    return wrapper  # type: ignore[return-value]


_path_arg = click.argument("path", metavar="PATH", type=click.Path())
_key_opt = click.option("--key-file", type=click.Path(), default=None,
                        help="File holding the secret key of a keyed hash chain.")


@click.command()
@_path_arg
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help=f"TCP port (default {DEFAULT_PORT}, or any free one if that is taken; 0: any free one).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback requires the token printed at start.")
@click.option("--token", default=None, help="The token clients must present (default: a random one "
                                            "when --host is not loopback).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser; just print the address.")
@click.option("--no-verify", is_flag=True, help="Do not run verify in the background (the badge stays grey).")
@click.option("--verbose", is_flag=True, help="Print one line per request.")
@_key_opt
@_errors
def ui(path: str, port: int | None, host: str, token: str | None, no_browser: bool, no_verify: bool,
       verbose: bool, key_file: str | None) -> None:
    """Browse a job in a time-travel debugger page served on this machine.

    A timeline of the tasks of every routine, the event list with filters, a scrubber
    over versions with the state at the cursor, diff, blame, bisect, jump to the first
    failure and a verify badge; a job that is still being written is followed live.
    The server is read-only and listens on 127.0.0.1 unless --host says otherwise.
    Stop it with Ctrl-C.

    \b
    Example:
      routilux-replay ui ./jobs/1234
      routilux-replay ui saved.rjob --port 9000 --no-browser
      routilux-replay ui 'postgresql://me@db-host/flows#1234'
    """
    from .catalog import Catalog
    from .explorer import Explorer
    from .server import UiServer

    key = read_key_file(key_file)
    target: Explorer | Catalog
    try:
        job = open_job(path, key=key)
    except NotAJobLogError as not_a_job:
        try:
            target = Catalog(path, key=key, verify=not no_verify)  # a job store: the page lists its jobs
        except ReplayError:
            raise not_a_job from None  # neither a job nor a store: the first message says why
        what = f"job store {path} ({len(target.jobs()['jobs'])} jobs)"
    else:
        target = Explorer(job, location=path)
        what = f"job {job.job_id} ({job.head} events) from {job.path}"
    log = (lambda line: click.echo(line, err=True)) if verbose else None
    try:
        try:
            server = UiServer(target, host, DEFAULT_PORT if port is None else port, token=token, log=log)
        except PortInUseError:
            if port is not None:
                raise
            server = UiServer(target, host, 0, token=token, log=log)
        if isinstance(target, Explorer):
            target.start(follow=target.job.form != "file", verify=not no_verify)
        click.echo(f"routilux-replay: {what}")
        click.echo(f"routilux-replay: open {server.url}")
        if server.token is not None:
            click.echo("routilux-replay: this address needs the token above; anyone who has it can read the job",
                       err=True)
            if host in ("0.0.0.0", "::", ""):
                click.echo("routilux-replay: from another machine, use this machine's name or address instead of "
                           "127.0.0.1", err=True)
        click.echo("routilux-replay: press Ctrl-C to stop")
        sys.stdout.flush()
        if not no_browser:
            webbrowser.open(server.url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
    finally:
        target.stop()
        if isinstance(target, Explorer):
            target.job.close()


@click.command()
@_path_arg
@click.option("-o", "--output", type=click.Path(), required=True, help="The HTML file to write.")
@click.option("--from", "start", type=click.IntRange(min=1), default=None, help="First version to include.")
@click.option("--to", "stop", type=click.IntRange(min=1), default=None, help="Last version to include (default: head).")
@click.option("--max-events", type=click.IntRange(min=1), default=None,
              help="Most versions in the file (default 20000; the last ones unless --from is given).")
@_key_opt
@_errors
def html(path: str, output: str, start: int | None, stop: int | None, max_events: int | None,
         key_file: str | None) -> None:
    """Write the debugger page and the job's data into one self-contained HTML file.

    The file needs no server and no network (it loads nothing, and its security policy
    forbids it): attach it to a bug report. It holds the events of a range of
    versions with their full payloads, the states (scrubber, diff, blame from the
    recorded changes), the timeline and the verify result. A long job is cut to its
    last 20000 versions unless --from/--to/--max-events say otherwise; the command and
    the page say what was left out. Bisect needs the job itself (use `ui`).

    \b
    Example:
      routilux-replay html ./jobs/1234 -o run.html
      routilux-replay html ./jobs/1234 -o failure.html --from 5000 --to 9000
    """
    from .export import DEFAULT_MAX_EVENTS, write_html

    job = open_job(path, key=read_key_file(key_file))
    try:
        result = write_html(job, output, lo=start, hi=stop,
                            max_events=DEFAULT_MAX_EVENTS if max_events is None else max_events)
    finally:
        job.close()
    size = result["bytes"]
    click.echo(f"routilux-replay: wrote {output} ({size / 1e6:.1f} MB): versions {result['lo']}..{result['hi']} "
               f"of {result['head']}")
    if result["left_out"]:
        click.echo(f"routilux-replay: note: {result['left_out']}", err=True)


def register_commands(group: click.Group) -> None:
    """Add ``ui`` and ``html`` to the ``routilux-replay`` group."""
    group.add_command(ui)
    group.add_command(html)
