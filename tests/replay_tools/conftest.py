"""Fixtures for replay_tools tests: real job logs from a flow run and from driving JobState."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from replay_tools.cli import cli
from replay_tools.demo import run_flow
from routilux.job_state import JobState


class Run:
    """Invoke the CLI in-process and keep stdout, stderr and the exit code apart."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Any:  # noqa: A002 - click's name
        return self.runner.invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exact-output tests see what a script sees: no width, colour or pager settings inherited."""
    for name in ("COLUMNS", "NO_COLOR", "PAGER", "LESS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def run() -> Run:
    """Run ``routilux-replay ARGS`` through the click entry point."""
    return Run()


@pytest.fixture(scope="session")
def _flow_job_master(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("flowjob") / "job")
    run_flow(path)
    return path


@pytest.fixture
def flow_job(_flow_job_master: str, tmp_path: Path) -> str:
    """A durable job directory written by a real flow run (the demo flow: retry, pause, resume).

    A private copy, so a test may damage it.
    """
    dest = str(tmp_path / "job")
    shutil.copytree(_flow_job_master, dest)
    return dest


@pytest.fixture
def saved_job(flow_job: str, tmp_path: Path) -> str:
    """The flow job saved as one portable file (JobState.save)."""
    path = str(tmp_path / "saved.rjob")
    state = JobState.open(flow_job, readonly=True)
    try:
        state.save(path)
    finally:
        state.close()
    return path


def drive(job: JobState, rounds: int = 12) -> None:
    """Mutate a job through its public API (and engine hooks): every kind of event."""
    job.status = "running"
    job.current_routine_id = "fetch"
    for i in range(rounds):
        job.update_shared_data("limit", rounds - 1 - i)
        job.update_routine_state("fetch", {"status": "running" if i % 3 else "failed", "round": i})
        job.record_execution("fetch", "tick", {"i": i})
        if i % 4 == 0:
            job.send_output("fetch", "progress", {"i": i})
            job.append_to_shared_log({"round": i})
            job.add_deferred_event("fetch", "later", {"i": i})
        if i == rounds // 2:
            job._set_paused(reason="check", checkpoint={"i": i})
            job._set_running()
            job.deferred_events = []
    job.status = "completed"


@pytest.fixture
def snap_job(tmp_path: Path) -> Iterator[str]:
    """A durable job driven directly with snapshots every 7 events."""
    path = str(tmp_path / "snapjob")
    job = JobState.open(path, flow_id="driven")
    job.snapshot_every = 7
    try:
        drive(job)
    finally:
        job.close()
    assert any(name.endswith(".snap") for name in os.listdir(os.path.join(path, "snapshots")))
    yield path


@pytest.fixture
def drive_job() -> Any:
    """The :func:`drive` helper, for tests that build their own jobs."""
    return drive
