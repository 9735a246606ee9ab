"""The README's audit-proof walk-through runs as written, and shows what it says it shows.

The section is read from ``README.md``. Its bash blocks run line by line and its python
blocks through ``python -``, in order, in one shell with this checkout's environment first on ``PATH``; only
the ``pip install`` line is left out (the test environment has the ``audit`` extra already;
``tests/replay_tools/test_readme.py`` runs the whole README, that line included, on a clone).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from readme_blocks import readme_script  # tests/readme_blocks.py

ROOT = Path(__file__).resolve().parents[2]
HEADING = "### Audit proofs an outsider can check"


def section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.find(HEADING + "\n")
    if start < 0:
        raise AssertionError(f"no {HEADING!r} section in README.md")
    rest = text[start + len(HEADING) :]
    end = re.search(r"^#{2,3} ", rest, flags=re.MULTILINE)
    return rest[: end.start()] if end else rest


def script(text: str) -> str:
    """The section's blocks as one bash script, without the ``pip install`` line."""
    return readme_script(text, skip=lambda command: command.startswith("pip install"))


def test_the_audit_walkthrough_runs_as_written(tmp_path: Path) -> None:
    text = section()
    assert text.count("```bash") >= 4 and "erase" in text and "verify-proof" in text
    env = {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
    env.pop("COLUMNS", None)
    done = subprocess.run(["bash", "-c", script(text)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=env)
    out = done.stdout
    assert done.returncode == 0, f"the walk-through failed:\n{out[-3000:]}\n{done.stderr[-3000:]}"
    assert "Personal(<sealed " in out and "ada@example.org" in out
    assert out.count("OK: event 2 is in log 'audit.example.org/jobs/order-7'") == 2  # before and after the erasure
    assert "OK: log 'audit.example.org/jobs/order-7' at 254 events extends its checkpoint of 253 events" in out
    assert "erased: seq 255 erased data['value']['email'] of seq 2: 'GDPR request 4411'" in out
    assert "check audit:       ok" in out and "erasure: seq 255" in out
    assert '"$erased": {' in out
    # The auditor's machine held only the three files, and the job holds the value nowhere any more.
    assert sorted(p.name for p in (tmp_path / "auditor").iterdir()) == [
        "audit.example.org.pub", "cp-1.txt", "cp-2.txt", "event-2.proof", "grow.proof"]
    assert not [p for p in (tmp_path / "audit-demo").rglob("*") if p.is_file() and b"ada@example.org" in p.read_bytes()]
