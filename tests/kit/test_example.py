"""examples/replay_determinism.py (the README section's example) runs as documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_replay_determinism_example_runs(tmp_path: Path) -> None:
    """Its four steps print what the README says they find."""
    done = subprocess.run([sys.executable, "examples/replay_determinism.py", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "1. deterministic: completed [24]"
    assert re.fullmatch(r"2\. caught: run 2 differs from run 1 at version \d+: data\.at [\d.]+ -> [\d.]+", lines[1])
    assert re.fullmatch(r"3\. flow version MISMATCH: recorded with 1, re-run with 2; first divergence at version "
                        r"\d+ \(output_sent\): data\.total 24 -> 19", lines[2])
    assert lines[3] == ("4. what if the rate had been 10: completed; shared_data.rate: 2 -> 10; "
                        "output_log.0.data.total: 24 -> 120")
    assert (tmp_path / "billing.rjob").is_file()
