"""The README's commands, copy-pasted in order on a fresh clone, all succeed.

A temporary clone of this checkout's HEAD runs every ``bash`` block of its README line
by line and every ``python`` block as pasted into ``python -``, in one shell, stopping
at the first failure. The one command left out is ``bash scripts/test`` (this test is
part of that suite: running it here would recurse). The real set-up runs: ``bash
scripts/demo`` makes the clone's own ``.venv`` with ``pip install -e .`` (from PyPI or
pip's cache), which is why this is a slow test (about 30-60 s on the 2-core machine).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from readme_blocks import readme_script  # tests/readme_blocks.py

ROOT = Path(__file__).resolve().parents[2]
SKIPPED = {"bash scripts/test"}  # runs the suite this test belongs to


def test_the_readme_script_covers_every_block() -> None:
    """Every fenced block of the README is run (nothing is silently left out)."""
    text = (ROOT / "README.md").read_text()
    script = readme_script(text, skip=SKIPPED.__contains__)
    assert "bash scripts/demo" in script and "source .venv/bin/activate" in script
    assert "routilux-replay info jobs/run-1" in script and "JobState.open(" in script
    fences = re.findall(r"```(\w*)\n", text)
    assert set(fences) <= {"bash", "python", ""}, "a block in another language would be skipped"


@pytest.mark.slow
def test_readme_commands_succeed_on_a_fresh_clone(tmp_path: Path) -> None:
    """git clone HEAD, then the README's commands in order: every one succeeds."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", head.stdout.strip()], check=True, timeout=60)
    script = readme_script((clone / "README.md").read_text(), skip=SKIPPED.__contains__)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "COLUMNS")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(ROOT)))  # no way to reach this checkout's .venv
    env["TMPDIR"] = str(tmp_path)  # the demo's job (in a new temp directory) goes with the test's files
    done = subprocess.run(["bash", "-c", script], cwd=clone, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, f"README command failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "first version where 'shared_data.count == 3' holds" in done.stdout
    assert "result:            OK" in done.stdout
