"""pytest plugin: ``pytest --routilux-golden DIR`` re-runs recorded jobs with the current code.

Installed with routilux-es (entry point ``pytest11``); it does nothing unless the option
is given. Each golden log (a saved job file, ``*.rjob``) under DIR becomes one test: its
recorded inputs are performed again on a flow built by the factory registered for its
flow id, and the new event stream must match the recorded one (timestamps, ids and
the engine's measured times ignored; see :class:`replay_tools.divergence.CompareRules`).
A failure prints the first divergent event side by side, the fields that differ, the
state difference after it and the routine and task that produced it.

Factories are registered in ``conftest.py`` with
:func:`replay_tools.testing.register_golden_flow`, or in the ini file::

    [pytest]
    routilux_golden_flows =
        orders = myflows:build_orders_flow
    routilux_golden_ignore =
        shared_data_set[key=started_at].value

A golden log recorded with another flow version (``Flow(version=...)``) than the
current one is listed at the end of the run; with ``--routilux-golden-strict-version``
it fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["GoldenFile", "GoldenItem", "pytest_addoption", "pytest_configure"]

_SUFFIX = ".rjob"
_MISMATCHES = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--routilux-golden`` and its companions."""
    group = parser.getgroup("routilux", "routilux golden logs (replay determinism)")
    group.addoption("--routilux-golden", action="append", default=[], metavar="DIR",
                    help="Re-run every golden log (*.rjob) under DIR with the current code (repeatable).")
    group.addoption("--routilux-golden-ignore", action="append", default=[], metavar="RULE",
                    help="Also ignore this field when comparing, e.g. 'shared_data_set[key=at].value'.")
    group.addoption("--routilux-golden-strict-version", action="store_true", default=False,
                    help="Fail a golden log recorded with another flow version than the current one.")
    group.addoption("--routilux-golden-timeout", type=float, default=60.0, metavar="SECONDS",
                    help="Seconds to wait for a re-run flow to settle after each input (default 60).")
    parser.addini("routilux_golden_flows", type="linelist", default=[],
                  help="Golden-log factories, one 'FLOW_ID = module:factory' per line.")
    parser.addini("routilux_golden_ignore", type="linelist", default=[],
                  help="Extra comparison rules to ignore, one per line.")


def pytest_configure(config: pytest.Config) -> None:
    """Register the golden-log collector when ``--routilux-golden`` is given."""
    dirs = config.getoption("routilux_golden")
    if not dirs:
        return
    try:
        from .testing import golden  # noqa: F401 - needs the test extras (hypothesis)
    except ImportError as exc:
        msg = f"--routilux-golden needs the test kit's dependencies: pip install 'routilux-es[test]' ({exc})"
        raise pytest.UsageError(msg) from None
    roots = []
    for d in dirs:
        path = Path(d).resolve()
        if not path.is_dir():
            msg = f"--routilux-golden {d}: no such directory"
            raise pytest.UsageError(msg)
        roots.append(path)
        # Make sure the directory is collected even when it is outside the paths given.
        if not any(path == Path(a).resolve() or Path(a).resolve() in path.parents for a in config.args):
            config.args.append(str(path))
    config.stash[_MISMATCHES] = []
    config.pluginmanager.register(_Golden(roots), "routilux-golden")


class _Golden:
    """The collector hook, active only with ``--routilux-golden``."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = roots

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        if file_path.suffix == _SUFFIX and any(r == file_path.parent or r in file_path.parents for r in self.roots):
            return GoldenFile.from_parent(parent, path=file_path)
        return None

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        mismatches = config.stash.get(_MISMATCHES, [])
        if mismatches:
            terminalreporter.write_sep("-", "routilux golden logs recorded with another flow version")
            for line in mismatches:
                terminalreporter.write_line(line)


class GoldenFile(pytest.File):
    """One golden log: one test."""

    def collect(self) -> Iterator[pytest.Item]:
        """Yield the log's single item."""
        yield GoldenItem.from_parent(self, name=self.path.name)


class _Diverged(Exception):
    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(text)


class GoldenItem(pytest.Item):
    """Re-run one golden log and compare it with the recording."""

    def _factories(self) -> dict[str, Any]:
        from .divergence import load_factory
        from .testing.golden import golden_flows

        table = golden_flows()
        for line in self.config.getini("routilux_golden_flows"):
            flow_id, sep, spec = str(line).partition("=")
            if not sep:
                msg = f"routilux_golden_flows: {line!r} is not 'FLOW_ID = module:factory'"
                raise pytest.UsageError(msg)
            table.setdefault(flow_id.strip(), load_factory(spec.strip()))
        return table

    def runtest(self) -> None:
        """Re-run the log; raise when the runs diverge (or the versions differ, if strict)."""
        from .divergence import CompareRules
        from .testing.golden import check_golden

        rules = CompareRules().ignoring(*self.config.getini("routilux_golden_ignore"),
                                        *self.config.getoption("routilux_golden_ignore"))
        report = check_golden(self.path, self._factories(), rules=rules,
                              timeout=self.config.getoption("routilux_golden_timeout"))
        if report.version_mismatch:
            self.config.stash[_MISMATCHES].append(f"{self.path.name}: {report.version_line()}")
        if not report.ok:
            raise _Diverged(report.text())
        if report.version_mismatch and self.config.getoption("routilux_golden_strict_version"):
            raise _Diverged(report.text() + "the runs match, but --routilux-golden-strict-version is set\n")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """The divergence report (or the one-line error) instead of a traceback."""
        if isinstance(excinfo.value, _Diverged):
            return f"golden log {self.path.name} diverges from the current code:\n{excinfo.value.text}"
        from .errors import ReplayError

        if isinstance(excinfo.value, (ReplayError, ValueError, TimeoutError)):
            return f"golden log {self.path.name}: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the item comes from."""
        return self.path, None, f"golden log {self.path.name}"
