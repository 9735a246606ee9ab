"""Where and how ``routilux-replay`` commands print: the conventions every command shares.

* **Colour**: ``--color=auto`` (the default) styles output only when stdout is a
  terminal and ``NO_COLOR`` is not set (https://no-color.org); ``always`` and ``never``
  override both. With colour off not a single escape code is written.
* **Pager**: like git, text on a terminal goes through ``$PAGER`` (default ``less``
  with ``LESS=FRX`` unless ``LESS`` is set: quit if one screen, keep colours, no screen
  clearing); ``--no-pager``, an empty ``PAGER`` or ``PAGER=cat`` turn it off. Piped
  output never pages.
* **Width**: ``COLUMNS`` when set (also when piped), else the terminal's width, else no
  limit (piped output keeps whole rows, so ``grep`` sees everything).
* **Broken pipe**: a reader that goes away (``| head``, quitting the pager) ends the
  command quietly with exit code 0 (see :func:`replay_tools.cli.main`).

Other command modules use :class:`Output` (through :func:`replay_tools.options.output_options`)
rather than printing to ``sys.stdout`` themselves, so they follow the same rules.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import shutil
import subprocess
import sys
from typing import IO, Any

__all__ = ["ColorMode", "Output", "Style", "terminal_width"]


class ColorMode:
    """The ``--color`` choices."""

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"
    CHOICES = (AUTO, ALWAYS, NEVER)


class Style:
    """ANSI styles (applied only when colour is on)."""

    BOLD = "1"
    DIM = "2"
    UNDERLINE = "4"
    RED = "31"
    GREEN = "32"
    YELLOW = "33"
    CYAN = "36"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def terminal_width(stream: Any = None) -> int | None:
    """Columns to fit output into: ``COLUMNS``, else the terminal's width, else ``None``."""
    cols = os.environ.get("COLUMNS", "").strip()
    if cols.isdigit() and int(cols) > 0:
        return int(cols)
    stream = sys.stdout if stream is None else stream
    if _isatty(stream):
        try:
            return os.get_terminal_size(stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return shutil.get_terminal_size().columns
    return None


def _pager_command() -> list[str] | None:
    value = os.environ.get("PAGER")
    if value is None:
        return ["less"] if shutil.which("less") else None
    value = value.strip()
    if not value or value == "cat":
        return None
    try:
        argv = shlex.split(value)
    except ValueError:
        return None
    return argv if argv and shutil.which(argv[0]) else None


class Output:
    """A command's standard output: maybe through a pager, colour decided once.

    Args:
        color: a :class:`ColorMode` value.
        pager: page text on a terminal (``--no-pager`` passes ``False``).
        stream: where to write (default ``sys.stdout``).

    Attributes:
        color: whether styles are written.
        width: the columns to fit into, or ``None`` for no limit.
        paging: whether a pager process reads the output.
    """

    def __init__(self, *, color: str = ColorMode.AUTO, pager: bool = True, stream: IO[str] | None = None) -> None:
        base = sys.stdout if stream is None else stream
        tty = _isatty(base)
        if color == ColorMode.ALWAYS:
            self.color = True
        elif color == ColorMode.NEVER:
            self.color = False
        else:
            self.color = tty and not os.environ.get("NO_COLOR")
        self.width = terminal_width(base)
        self._base = base
        self._proc: subprocess.Popen[bytes] | None = None
        self.stream: IO[str] = base
        self.paging = False
        self._want_pager = pager and tty

    def start_pager(self) -> None:
        """Start the pager now if this output should have one (idempotent)."""
        if not self._want_pager or self._proc is not None:
            return
        self._want_pager = False
        argv = _pager_command()
        if argv is None:
            return
        env = dict(os.environ)
        env.setdefault("LESS", "FRX")  # as git: quit on one screen, pass colours, keep the screen
        env.setdefault("LV", "-c")
        try:
            self._base.flush()
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, env=env)
        except OSError:
            return
        assert proc.stdin is not None
        self._proc = proc
        self.stream = io.TextIOWrapper(proc.stdin, encoding=getattr(self._base, "encoding", None) or "utf-8",
                                       errors="replace", line_buffering=False, write_through=False)
        self.paging = True

    def disable_pager(self) -> None:
        """Never page this output (a stream the user watches as it grows, like ``tail -f``)."""
        self._want_pager = False

    def write(self, text: str) -> None:
        """Write ``text`` as is (start the pager first if due)."""
        if self._want_pager:
            self.start_pager()
        self.stream.write(text)

    def line(self, text: str = "") -> None:
        """Write one line (trailing spaces stripped: no padding at the ends of lines)."""
        self.write(text.rstrip(" ") + "\n")

    def style(self, text: str, *codes: str) -> str:
        """``text`` wrapped in ANSI ``codes`` when colour is on, else unchanged."""
        if not self.color or not codes or not text:
            return text
        return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"

    def flush(self) -> None:
        """Flush what was written so far (for streams a user watches, like ``tail -f``)."""
        self.stream.flush()

    def close(self) -> None:
        """Flush, and wait for the pager to exit (the user reads until they quit it)."""
        proc = self._proc
        if proc is None:
            with contextlib.suppress(BrokenPipeError, ValueError):
                self.stream.flush()
            return
        self._proc = None
        try:
            self.stream.close()
        except (BrokenPipeError, OSError):
            pass  # the user quit the pager before reading everything: not an error
        while True:
            try:
                proc.wait()
                break
            except KeyboardInterrupt:
                continue  # Ctrl-C belongs to the pager (less handles it), not to us
        self.stream = self._base
        self.paging = False
