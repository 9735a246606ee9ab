"""pytest --routilux-golden DIR: the installed plugin re-runs golden logs with the current code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kit_flows
import pytest

from replay_tools.testing import Execute, record_golden

KIT_DIR = str(Path(__file__).resolve().parent)

CONFTEST = """
import os
import kit_flows
from replay_tools.testing import register_golden_flow

if os.environ.get("LEDGER_FACTORY"):
    register_golden_flow("ledger", getattr(kit_flows, os.environ["LEDGER_FACTORY"]))
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user project: a golden log of the ledger flow (v1) and a conftest that registers a factory."""
    golden = tmp_path / "golden"
    golden.mkdir()
    job = record_golden(kit_flows.build_ledger_v1, Execute("load", {"items": [3, 4, 5], "rate": 2}),
                        golden / "ledger.rjob", job_id="golden-ledger")
    assert job.status == "completed" and job.get_shared_data("total") == 24
    (tmp_path / "conftest.py").write_text(CONFTEST)
    return tmp_path


def _pytest(project: Path, *args: str, factory: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": KIT_DIR}
    env.pop("LEDGER_FACTORY", None)
    if factory is not None:
        env["LEDGER_FACTORY"] = factory
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args], cwd=project,
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def test_golden_log_passes_with_the_code_that_recorded_it(project: Path) -> None:
    """The same code: one test per golden log, passing."""
    done = _pytest(project, "--routilux-golden", "golden", factory="build_ledger_v1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_golden_log_fails_with_a_changed_routine_and_says_where(project: Path) -> None:
    """Changed code: the failure is the divergence report, and the version mismatch is listed."""
    done = _pytest(project, "--routilux-golden", "golden", factory="build_ledger_v2")
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "golden log ledger.rjob diverges from the current code:" in out
    assert "DIVERGED at version" in out and "output_sent of routine total differs" in out
    assert "data.total: 24 -> 19" in out
    assert "routilux golden logs recorded with another flow version" in out
    assert "ledger.rjob: flow version MISMATCH: recorded with 1, re-run with 2" in out


def test_factories_can_be_registered_in_the_ini_file(project: Path) -> None:
    """routilux_golden_flows = FLOW_ID = module:factory; extra ignore rules from the ini file too."""
    (project / "pytest.ini").write_text(
        "[pytest]\nroutilux_golden_flows =\n    ledger = kit_flows:build_ledger_v2\n"
        "routilux_golden_ignore =\n    output_sent.data.total\n    shared_data_set[key=total].value\n")
    done = _pytest(project, "--routilux-golden", "golden")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_version_mismatch_alone_passes_unless_strict(project: Path) -> None:
    """Same behaviour under another version label: listed; a failure only with --routilux-golden-strict-version."""
    done = _pytest(project, "--routilux-golden", "golden", factory="build_ledger_v1_relabelled")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ledger.rjob: flow version MISMATCH: recorded with 1, re-run with 1.1" in done.stdout
    strict = _pytest(project, "--routilux-golden", "golden", "--routilux-golden-strict-version",
                     factory="build_ledger_v1_relabelled")
    assert strict.returncode == 1
    assert "--routilux-golden-strict-version is set" in strict.stdout


def test_an_unregistered_flow_fails_with_the_fix_in_the_message(project: Path) -> None:
    """No factory for the log's flow id: the message says how to register one."""
    done = _pytest(project, "--routilux-golden", "golden")
    assert done.returncode == 1
    assert "no flow factory is registered for flow 'ledger'" in done.stdout
    assert "register_golden_flow('ledger', build_flow)" in done.stdout


def test_the_plugin_is_inert_without_the_option(project: Path) -> None:
    """Without --routilux-golden, golden logs are not collected."""
    (project / "test_nothing.py").write_text("def test_one():\n    pass\n")
    done = _pytest(project, factory="build_ledger_v2")
    assert done.returncode == 0 and "1 passed" in done.stdout
