"""Fixtures for the ui tests: the demo flow's job."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from replay_tools import open_job
from replay_tools.demo import run_flow
from replay_tools.source import Job


@pytest.fixture(scope="session")
def demo_job_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo flow's durable job (retry, pause, resume, outputs); read-only use."""
    path = str(tmp_path_factory.mktemp("uidemo") / "job")
    run_flow(path)
    return path


@pytest.fixture
def demo_job(demo_job_dir: str) -> Iterator[Job]:
    """The demo job, opened."""
    job = open_job(demo_job_dir)
    try:
        yield job
    finally:
        job.close()
