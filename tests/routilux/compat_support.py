"""Shared helpers of the ``test_compat_*`` tests: the routilux 0.10 fixtures and the real 0.10."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from routilux import JobState

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "routilux010"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

#: The interpreter with the real routilux 0.10.0 (and serilux) installed, for the tests that
#: check what 0.10 makes of our output. ROUTILUX010_PYTHON overrides the default location.
REF_PYTHON = os.environ.get("ROUTILUX010_PYTHON", "/work/ref/rx010-venv/bin/python")

needs_reference = pytest.mark.skipif(
    not Path(REF_PYTHON).exists(),
    reason=f"routilux 0.10.0 is not installed at {REF_PYTHON} (set ROUTILUX010_PYTHON to its interpreter)",
)


def manifest() -> dict[str, Any]:
    """The fixtures' MANIFEST.json."""
    return json.loads((FIXTURES / "MANIFEST.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def fixture(relative: str) -> Any:
    """A fixture file, parsed (a fresh copy every call)."""
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


def assert_replays(job: JobState) -> None:
    """The state rebuilt from the job's events equals the live state."""
    assert job.serialize() == JobState.from_events(job.events()).serialize()


def run_reference(script: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (Python source) with routilux 0.10.0; the fixtures' routines are importable."""
    # cwd is never our checkout: "import routilux" must find 0.10, not this package.
    env = dict(os.environ, PYTHONPATH=str(FIXTURES))
    return subprocess.run([REF_PYTHON, "-c", script, *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=cwd or FIXTURES)
