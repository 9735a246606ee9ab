"""Golden logs: recorded jobs that CI re-runs with the current code.

Record one with :func:`record_golden` (or save any job: ``JobState.save``, or
``routilux-replay copy JOB golden/x.rjob --file``), check it into the repository, and
tell the pytest plugin which factory builds each flow id::

    # conftest.py
    from replay_tools.testing import register_golden_flow
    from myflows import build_orders_flow

    register_golden_flow("orders", build_orders_flow)

Then ``pytest --routilux-golden golden/`` re-runs every ``*.rjob`` file there (see
:mod:`replay_tools.pytest_plugin`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

from routilux import Flow, JobState

from ..divergence.rerun import RerunReport, read_events, rerun
from ..divergence.rules import CompareRules
from ..divergence.script import DEFAULT_TIMEOUT, build_flow, perform
from .determinism import as_actions
from .errors import KitUsageError

__all__ = ["GOLDEN_SUFFIX", "check_golden", "golden_flows", "record_golden", "register_golden_flow"]

#: The file suffix of golden logs (saved job files).
GOLDEN_SUFFIX = ".rjob"

_FACTORIES: dict[str, Callable[[], Flow]] = {}


def register_golden_flow(flow_id: str, factory: Callable[[], Flow]) -> None:
    """Re-run golden logs of ``flow_id`` with ``factory`` (call it from conftest.py)."""
    if not callable(factory):
        msg = f"register_golden_flow({flow_id!r}, ...) needs a callable that returns a Flow"
        raise KitUsageError(msg)
    _FACTORIES[flow_id] = factory


def golden_flows() -> dict[str, Callable[[], Flow]]:
    """The registered flow id -> factory mapping (a copy)."""
    return dict(_FACTORIES)


def record_golden(factory: Callable[[], Flow], inputs: Any, path: str | os.PathLike[str], *,
                  job_id: str | None = None, timeout: float = DEFAULT_TIMEOUT, overwrite: bool = False) -> JobState:
    """Run the flow on ``inputs`` (as :func:`assert_replay_deterministic` takes them) and save the job.

    The flow runs one task at a time, as the re-runs will. Returns the saved job.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        msg = f"golden log {path!r} already exists; pass overwrite=True to record it again"
        raise FileExistsError(msg)
    actions = as_actions(factory, inputs)
    flow = build_flow(factory)
    with tempfile.TemporaryDirectory(prefix="routilux-golden-") as tmp:
        job = JobState.open(os.path.join(tmp, "job"), flow_id=flow.flow_id, job_id=job_id)
        try:
            perform(flow, job, actions, timeout=timeout)
        finally:
            flow.shutdown(wait=True, timeout=5)
        try:
            job.save(path)
        finally:
            job.close()
    return JobState.load(path)


def check_golden(path: str | os.PathLike[str], factories: Mapping[str, Callable[[], Flow]] | None = None, *,
                 rules: CompareRules | None = None, timeout: float = DEFAULT_TIMEOUT) -> RerunReport:
    """Re-run the golden log at ``path`` with its flow's registered factory; return the report.

    Raises:
        KitUsageError: no factory is registered for the log's flow id.
    """
    events, _job_id, flow_id = read_events(os.fspath(path))
    table = factories if factories is not None else _FACTORIES
    factory = table.get(flow_id)
    if factory is None:
        known = ", ".join(sorted(table)) or "none"
        msg = (f"no flow factory is registered for flow {flow_id!r} of golden log {os.fspath(path)!r} "
               f"(registered: {known}); call register_golden_flow({flow_id!r}, build_flow) in conftest.py")
        raise KitUsageError(msg)
    return rerun(events, factory, rules=rules, timeout=timeout)
