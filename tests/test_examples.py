"""The examples run: the README's as documented, and every file in examples/ to completion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_quickstart_prints_what_the_readme_says(tmp_path):
    """examples/quickstart.py: completed with count 3, then a durable run with a head hash."""
    done = _run("examples/quickstart.py", str(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "completed 3"
    version, head = lines[1].split()
    assert int(version) > 3 and len(head) == 32
    assert lines[2] == "running 3"  # the state as it was at version 3
    assert (tmp_path / "run-1").is_dir()


def test_flow_durable_example_crashes_then_resumes(tmp_path):
    """examples/flow_durable.py: `run` dies half-way, `resume` in a new process finishes it."""
    job = str(tmp_path / "job")
    crashed = _run("examples/flow_durable.py", "run", job)
    assert crashed.returncode != 0  # it exits abruptly on purpose, like a killed process
    resumed = _run("examples/flow_durable.py", "resume", job)
    assert resumed.returncode == 0, resumed.stderr
    shown = _run("examples/flow_durable.py", "show", job)
    assert shown.returncode == 0, shown.stderr
    assert "resumed_after_interruption" in shown.stdout
    assert "completed" in shown.stdout


def test_readme_demo_command_runs(tmp_path):
    """The README's main job (`routilux-replay demo`) runs and explores its log."""
    done = _run("-m", "replay_tools", "demo", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stderr
    assert "routilux-replay verify" in done.stdout


# -- every example runs ------------------------------------------------------------------------
# Arguments for the examples that need some ("{tmp}" is a fresh directory); the others run bare.
# flow_durable.py's run/resume cycle (which exits non-zero on purpose) is tested above.
EXAMPLE_ARGS = {
    "quickstart.py": ["{tmp}"],
    "flow_durable.py": ["show", "{tmp}/job"],
}
EXAMPLES = sorted(path.name for path in (ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_runs(name, tmp_path):
    """Each file in examples/ runs to completion (exit code 0) and prints something."""
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in EXAMPLE_ARGS.get(name, [])]
    done = _run(f"examples/{name}", *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_every_builtin_routine_has_an_example():
    """examples/builtin_<module>.py exists for each of the eight builtin routines."""
    import routilux.builtin_routines as builtins_package

    modules = {getattr(builtins_package, name).__module__.rsplit(".", 1)[1] for name in builtins_package.__all__}
    assert len(modules) == 8
    assert {f"builtin_{module}.py" for module in modules} <= set(EXAMPLES)
