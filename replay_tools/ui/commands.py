"""The ``ui`` and ``html`` commands of ``routilux-replay`` (registered at the end of ``cli.py``).

Thin click layer: :mod:`replay_tools.ui.server` and :mod:`replay_tools.ui.export` do the
work; errors become one line on stderr with the exit codes of :mod:`replay_tools.cli`.
"""

from __future__ import annotations

import sys
import webbrowser

import click

from ..cli_common import Printer, handle_errors, key_option, output_options, path_argument
from ..errors import NotAJobLogError, ReplayError
from ..source import open_job, read_key_file
from .errors import PortInUseError

__all__ = ["DEFAULT_PORT", "html", "register_commands", "ui"]

#: The port ``routilux-replay ui`` tries first (a free one is picked if it is taken).
DEFAULT_PORT = 8765

_path_arg = path_argument
_key_opt = key_option


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
@output_options(json_help="Print the page's address as one JSON object (then serve as usual).")
@handle_errors
def ui(path: str, port: int | None, host: str, token: str | None, no_browser: bool, no_verify: bool,
       verbose: bool, key_file: str | None, printer: Printer) -> None:
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

    printer.out.disable_pager()  # a server's lines, printed while it runs: never through a pager

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
        if printer.as_json:
            printer.json({"url": server.url, "serving": what, "token_required": server.token is not None})
        else:
            printer.line(f"routilux-replay: {what}")
            printer.line(f"routilux-replay: open {server.url}")
        if server.token is not None:
            click.echo("routilux-replay: this address needs the token above; anyone who has it can read the job",
                       err=True)
            if host in ("0.0.0.0", "::", ""):
                click.echo("routilux-replay: from another machine, use this machine's name or address instead of "
                           "127.0.0.1", err=True)
        if not printer.as_json:
            printer.line("routilux-replay: press Ctrl-C to stop")
        printer.out.flush()
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
@click.option("--bisect", "conditions", multiple=True, metavar="CONDITION",
              help="A condition whose bisect answer the file holds (repeatable; the syntax of `bisect --where`).")
@_key_opt
@output_options()
@handle_errors
def html(path: str, output: str, start: int | None, stop: int | None, max_events: int | None,
         conditions: tuple[str, ...], key_file: str | None, printer: Printer) -> None:
    """Write the debugger page and the job's data into one self-contained HTML file.

    The file needs no server and no network (it loads nothing, and its security policy
    forbids it): attach it to a bug report. It holds the events of a range of
    versions with their full payloads, the states (scrubber, diff, blame from the
    recorded changes), the timeline and the verify result. A long job is cut to its
    last 20000 versions unless --from/--to/--max-events say otherwise; the command and
    the page say what was left out.

    Bisect in the file answers only the conditions given with --bisect when it is
    written (its first version and every flip): conditions are evaluated in Python,
    and the file carries no second implementation of them. For any other condition
    the page shows the command to run.

    \b
    Example:
      routilux-replay html ./jobs/1234 -o run.html
      routilux-replay html ./jobs/1234 -o failure.html --from 5000 --to 9000
      routilux-replay html ./jobs/1234 -o run.html --bisect 'status == failed'
    """
    from .export import DEFAULT_MAX_EVENTS, write_html

    job = open_job(path, key=read_key_file(key_file))
    try:
        result = write_html(job, output, lo=start, hi=stop,
                            max_events=DEFAULT_MAX_EVENTS if max_events is None else max_events,
                            bisect=list(conditions))
    finally:
        job.close()
    size = result["bytes"]
    if printer.as_json:
        printer.json({"path": output, "bytes": size, "from": result["lo"], "to": result["hi"],
                      "head": result["head"], "left_out": result["left_out"] or None})
        return
    printer.line(f"routilux-replay: wrote {output} ({size / 1e6:.1f} MB): versions {result['lo']}..{result['hi']} "
               f"of {result['head']}")
    if result["left_out"]:
        click.echo(f"routilux-replay: note: {result['left_out']}", err=True)


def register_commands(group: click.Group) -> None:
    """Add ``ui`` and ``html`` to the ``routilux-replay`` group."""
    group.add_command(ui)
    group.add_command(html)
