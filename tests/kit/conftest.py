"""Fixtures for the kit's tests: the command line, and recorded jobs of the example flows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kit_flows
import pytest
from click.testing import CliRunner

from replay_tools.cli import cli
from replay_tools.demo import run_flow
from routilux import JobState


class Run:
    """Invoke ``routilux-replay`` in-process; stdout, stderr and exit code kept apart."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Any:
        return self.runner.invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def run() -> Run:
    """Run ``routilux-replay ARGS``."""
    return Run()


@pytest.fixture
def demo_job(tmp_path: Path) -> str:
    """A durable job of the demo flow (retry, pause, resume), recorded now."""
    path = str(tmp_path / "demo-job")
    run_flow(path)
    return path


@pytest.fixture
def ledger_job(tmp_path: Path) -> str:
    """A durable job of the ledger flow at version 1, job id ``ledger-1``."""
    path = str(tmp_path / "ledger-job")
    flow = kit_flows.build_ledger_v1()
    job = JobState.open(path, flow_id="ledger", job_id="ledger-1")
    try:
        flow.execute("load", {"items": [3, 4, 5], "rate": 2}, job_state=job)
        assert JobState.wait_for_completion(flow, job, timeout=30)
    finally:
        flow.shutdown(wait=True, timeout=5)
        job.close()
    return path
