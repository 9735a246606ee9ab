"""The golden logs checked in under tests/kit/golden still re-run identically with the current code.

They were recorded by this module (``ROUTILUX_RECORD_GOLDEN=1 bash scripts/test
tests/kit/test_golden_files.py`` records them again, after a deliberate change). A
failure here means a change in the engine or in the flows alters what a recorded job's
inputs produce: exactly what users' golden logs would report.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kit_flows
import pytest

from replay_tools.testing import Execute, Pause, Resume, check_golden, record_golden

GOLDEN = Path(__file__).resolve().parent / "golden"

#: name -> (factory, inputs): what each golden log records.
RECORDINGS: dict[str, tuple[Any, Any]] = {
    "ledger.rjob": (kit_flows.build_ledger_v1, Execute("load", {"items": [3, 4, 5], "rate": 2})),
    "squares.rjob": (kit_flows.build_squares, Execute("numbers", {"count": 6})),
    "demo.rjob": (kit_flows.build_demo_flow, [Execute("fetch", {"customer": "acme"}),
                                              Pause("operator check", {"after": "fetch"}), Resume()]),
}
FACTORIES = {"ledger": kit_flows.build_ledger_v1, "squares": kit_flows.build_squares,
             "order-batch": kit_flows.build_demo_flow}


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_checked_in_golden_log_matches_the_current_code(name: str) -> None:
    """Re-run the recorded inputs: no divergence, same flow version."""
    path = GOLDEN / name
    if os.environ.get("ROUTILUX_RECORD_GOLDEN") == "1":
        factory, inputs = RECORDINGS[name]
        record_golden(factory, inputs, path, job_id=f"golden-{path.stem}", overwrite=True)
    report = check_golden(path, FACTORIES)
    assert report.ok, report.text()
    assert not report.version_mismatch, report.version_line()
