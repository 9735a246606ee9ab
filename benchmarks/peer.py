"""The original routilux 0.10.0 as a benchmark peer, and the interleaved runner.

* ``ensure_peer_venv``: a venv with ``routilux==0.10.0`` and ``serilux==0.3.1`` from PyPI,
  created once and reused (default ``~/.cache/routilux-es-bench/``; ``--peer-venv PATH``
  to use or create another one).
* ``run_workload``: one workload in a fresh process under one interpreter; the result comes
  back as JSON (times in µs or ms, memory in bytes).
* ``run_interleaved``: every case under ours, then under the peer, case after case, and the
  whole round ``runs`` times, so a noisy moment on the shared machine hits both sides.

Both sides run the same workload code (``workloads.py``, ``flow_workloads.py``), which uses
only the 0.10 public API. The child reports which ``routilux`` it imported, and a run
whose side imported the wrong one is an error, never a figure.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from run_workload import RESULT_MARKER

__all__ = [
    "OURS",
    "PEER",
    "PEER_REQUIREMENTS",
    "Case",
    "Interpreter",
    "PeerUnavailableError",
    "Results",
    "WorkloadError",
    "default_peer_venv",
    "ensure_peer_venv",
    "interpreters",
    "run_interleaved",
    "run_workload",
]

OURS = "ours"
PEER = "peer"
PEER_REQUIREMENTS = ("routilux==0.10.0", "serilux==0.3.1")
BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RUNNER = BENCH_DIR / "run_workload.py"
_CREATING = ".routilux-es-bench-creating"  # present while ensure_peer_venv builds the venv


class PeerUnavailableError(RuntimeError):
    """The peer venv could not be found or created (no cache and PyPI unreachable, ...)."""


class WorkloadError(RuntimeError):
    """A workload failed in its child process, or ran against the wrong ``routilux``."""


@dataclass(frozen=True)
class Interpreter:
    """One side of the comparison: a Python to run, and what it must import as ``routilux``.

    Attributes:
        side: ``OURS`` or ``PEER``.
        python: the interpreter's path.
        root: a routilux-es checkout to put first on ``sys.path`` (ours), or None.
        expect_under: the directory the imported ``routilux`` must live in.
    """

    side: str
    python: str
    root: str | None
    expect_under: str


# -- the peer's venv ---------------------------------------------------------------------------
def default_peer_venv() -> Path:
    """``$XDG_CACHE_HOME`` (or ``~/.cache``) ``/routilux-es-bench/routilux-0.10.0-pyX.Y``."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Path(cache) / "routilux-es-bench" / f"routilux-0.10.0-py{version}"


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _peer_versions(python: Path) -> tuple[str, str] | None:
    """(routilux, serilux) versions installed for ``python``, or None if either is missing."""
    probe = ("import importlib.metadata as m; "
             "print(m.version('routilux'), m.version('serilux'))")
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
    parts = done.stdout.split()
    return (parts[0], parts[1]) if done.returncode == 0 and len(parts) == 2 else None


def _check_peer(python: Path, venv: Path) -> None:
    versions = _peer_versions(python)
    wanted = tuple(req.split("==")[1] for req in PEER_REQUIREMENTS)
    if versions != wanted:
        msg = (f"the venv at {venv} has routilux/serilux {versions or 'missing'}, not {wanted}; "
               f"remove it or pass --peer-venv with a venv of {' '.join(PEER_REQUIREMENTS)}")
        raise PeerUnavailableError(msg)


def ensure_peer_venv(venv: Path | None = None, *, say: Callable[[str], None] = print) -> Path:
    """Return the peer's Python, creating its venv first if needed.

    An existing venv is checked (routilux 0.10.0 and serilux 0.3.1 installed) and reused;
    a wrong one is an error and is left alone. A missing one is created with
    ``python -m venv`` and ``pip install`` from PyPI; if that fails, the half-made venv is
    removed (a later run starts clean) and ``PeerUnavailableError`` says what to do.
    """
    venv = (venv or default_peer_venv()).expanduser().absolute()
    python = _venv_python(venv)
    if (venv / _CREATING).exists():
        shutil.rmtree(venv)  # an earlier creation was killed half-way
    elif python.exists():
        _check_peer(python, venv)
        return python
    elif venv.exists() and any(venv.iterdir()):
        msg = f"{venv} exists but is not a venv; remove it or pass another --peer-venv"
        raise PeerUnavailableError(msg)
    say(f"creating the peer venv {venv} ({' '.join(PEER_REQUIREMENTS)} from PyPI) ...")
    venv.mkdir(parents=True, exist_ok=True)
    # The marker goes first and is removed last: a venv that still has it is unfinished,
    # and only such a venv (made here) is ever deleted.
    (venv / _CREATING).write_text("being created by benchmarks/peer.py\n")
    try:
        _run_quietly([sys.executable, "-m", "venv", str(venv)], "python -m venv")
        # Few retries and a short timeout: without network, fail in seconds, not minutes.
        _run_quietly([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
                      "--retries", "1", "--timeout", "15", *PEER_REQUIREMENTS], "pip install")
        _check_peer(python, venv)
    except BaseException:
        shutil.rmtree(venv, ignore_errors=True)
        raise
    (venv / _CREATING).unlink()
    return python


def _run_quietly(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        last = lines[-1].strip() if lines else f"exit status {done.returncode}"
        msg = (f"cannot create the routilux 0.10.0 peer venv ({what} failed: {last}); "
               f"check that PyPI is reachable, or pass --peer-venv PATH to a venv with "
               f"{' '.join(PEER_REQUIREMENTS)}")
        raise PeerUnavailableError(msg)


def interpreters(peer_python: Path | None) -> dict[str, Interpreter]:
    """Ours (this Python, this checkout first on ``sys.path``) and, if given, the peer."""
    sides = {OURS: Interpreter(OURS, sys.executable, str(REPO_ROOT), str(REPO_ROOT))}
    if peer_python is not None:
        venv = peer_python.parent.parent
        sides[PEER] = Interpreter(PEER, str(peer_python), None, str(venv.resolve()))
    return sides


# -- one workload in a fresh process -------------------------------------------------------------
def run_workload(interp: Interpreter, module: str, function: str, params: dict[str, Any],
                 timeout: float = 900.0) -> dict[str, Any]:
    """Run ``module.function(params)`` in a fresh process of ``interp``; return its result dict.

    Raises:
        WorkloadError: the child failed or timed out (the message ends with its last error
            line), or it imported a ``routilux`` other than the side's.
    """
    cmd = [interp.python, str(RUNNER)]
    if interp.root:
        cmd += ["--root", interp.root]
    cmd += [module, function, json.dumps(params)]
    # Neither side may pick up the other's packages from the environment.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    where = f"{interp.side} {module}.{function}({json.dumps(params)})"
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=str(BENCH_DIR), check=False)
    except subprocess.TimeoutExpired:
        msg = f"{where}: no result after {timeout:.0f} s"
        raise WorkloadError(msg) from None
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_MARKER)]
    if done.returncode != 0 or not lines:
        errors = [ln for ln in done.stderr.splitlines() if ln.strip()]
        last = errors[-1].strip() if errors else f"exit status {done.returncode}, no result line"
        msg = f"{where}: {last}"
        raise WorkloadError(msg)
    reply = json.loads(lines[-1][len(RESULT_MARKER):])
    imported = os.path.realpath(reply["routilux_file"])
    if not imported.startswith(os.path.realpath(interp.expect_under) + os.sep):
        msg = f"{where}: imported routilux from {imported}, expected it under {interp.expect_under}"
        raise WorkloadError(msg)
    result: dict[str, Any] = reply["result"]
    result["_python"] = reply["python"]
    return result


# -- interleaved runs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One workload with its parameters, and the sides that run it (ours first)."""

    key: str
    module: str
    function: str
    params: dict[str, Any]
    sides: tuple[str, ...] = (OURS, PEER)


@dataclass
class Results:
    """Every run's result per (case key, side), and the first error of each that failed."""

    runs: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[tuple[str, str], str] = field(default_factory=dict)
    pythons: dict[str, str] = field(default_factory=dict)

    def values(self, key: str, side: str, metric: str) -> list[float]:
        """The metric's value in every run (empty if it never ran or is missing)."""
        return [r[metric] for r in self.runs.get((key, side), []) if metric in r]

    def note(self, key: str, side: str) -> str | None:
        """An ``unsupported`` reason or an error for this case and side, if any."""
        if (key, side) in self.errors:
            return f"error: {self.errors[(key, side)]}"
        for r in self.runs.get((key, side), []):
            if "unsupported" in r:
                return f"unsupported ({r['unsupported']})"
        return None

    def median(self, key: str, side: str, metric: str) -> float | None:
        """The median over the runs, or None."""
        vals = self.values(key, side, metric)
        return statistics.median(vals) if vals else None


def run_interleaved(cases: Sequence[Case], sides: dict[str, Interpreter], runs: int,
                    say: Callable[[str], None] = print) -> Results:
    """Run every case on each of its sides, round after round, ``runs`` rounds.

    A case that fails on a side is reported and not retried on that side; the others go
    on. Sides missing from ``sides`` (no peer) are skipped.
    """
    results = Results()
    for run in range(runs):
        t0 = time.perf_counter()
        for case in cases:
            for side in case.sides:
                if side not in sides or (case.key, side) in results.errors:
                    continue
                try:
                    result = run_workload(sides[side], case.module, case.function, case.params)
                except WorkloadError as error:
                    results.errors[(case.key, side)] = str(error)
                    say(f"  FAILED {error}")
                    continue
                results.pythons[side] = result.pop("_python")
                results.runs.setdefault((case.key, side), []).append(result)
        say(f"  run {run + 1}/{runs} done in {time.perf_counter() - t0:.0f} s")
    return results
