"""``assert_replay_deterministic``: a flow replays exactly, and re-runs the same way.

Two properties, checked together:

* **replay**: the job a run writes rebuilds to the same state in every way the
  project offers, at every version (:func:`~.checks.assert_rebuilds_agree`);
* **re-run**: running the flow again from the same inputs records the same events,
  apart from what differs by nature (timestamps, ids, the engine's measured times; see
  :class:`replay_tools.divergence.CompareRules`). A routine that reads the clock, draws
  a random number, depends on set order, or on state outside the job (a counter kept
  between runs) makes the runs differ: the failure names the first differing version of
  the first run, the two events side by side, the fields that differ and the routine
  and task that produced the event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from routilux import Flow, JobState

from ..divergence.compare import compare_events
from ..divergence.report import divergence_text, produced_by, state_diff_text
from ..divergence.rerun import explain, producing_task
from ..divergence.rules import CompareRules
from ..divergence.script import (
    DEFAULT_TIMEOUT,
    Action,
    Cancel,
    Execute,
    Pause,
    Resume,
    Wait,
    build_flow,
    load_factory,
    perform,
)
from .checks import assert_rebuilds_agree
from .child import action_to_json
from .errors import KitUsageError, ReplayDivergence
from .seed import current_seed
from .strategies import entry_routines

__all__ = ["as_actions", "assert_replay_deterministic", "compare_runs", "run_recorded"]

_ACTIONS = (Execute, Pause, Resume, Cancel, Wait)


def as_actions(factory: Callable[[], Flow], inputs: Any) -> list[Action]:
    """Normalise ``inputs`` to a list of actions ending with a :class:`Wait`.

    ``inputs`` is an action (``Execute(entry, params)``...), a sequence of actions, or a
    dict of entry params for a flow with exactly one entry routine.

    Raises:
        KitUsageError: a dict for a flow without exactly one entry routine, or
            something that is not an input.
    """
    if isinstance(inputs, _ACTIONS):
        actions: list[Action] = [inputs]
    elif isinstance(inputs, Mapping):
        entries = entry_routines(factory())
        if len(entries) != 1:
            msg = (f"the flow has entry routines {entries}: give Execute(entry, params) instead of a dict "
                   "of entry params")
            raise KitUsageError(msg)
        actions = [Execute(entries[0], dict(inputs))]
    elif isinstance(inputs, Sequence) and all(isinstance(a, _ACTIONS) for a in inputs) and inputs:
        actions = list(inputs)
    else:
        msg = ("inputs must be Execute(entry, params), a list of Execute/Pause/Resume/Cancel/Wait, or a dict "
               f"of entry params; got {type(inputs).__name__}")
        raise KitUsageError(msg)
    if not isinstance(actions[-1], Wait):
        actions.append(Wait())
    return actions


def _spec_of(factory: Callable[[], Flow]) -> str:
    module = getattr(factory, "__module__", None)
    name = getattr(factory, "__qualname__", "")
    spec = f"{module}:{name}"
    if not module or "<" in name:
        msg = (f"hash_seeds runs the flow in another interpreter, which must import the factory: "
               f"{spec} is not a module-level function (define it at the top of a module)")
        raise KitUsageError(msg)
    try:
        found = load_factory(spec)
    except ValueError as exc:
        raise KitUsageError(f"hash_seeds: {exc}") from None
    if found is not factory:
        msg = f"hash_seeds: {spec} imports as another object than the factory given"
        raise KitUsageError(msg)
    return spec


def run_recorded(factory: Callable[[], Flow], actions: Sequence[Action], path: str, *, snapshot_every: int = 5,
                 timeout: float = DEFAULT_TIMEOUT, sequential: bool = True, hash_seed: int | None = None) -> None:
    """Run the flow on ``actions`` into a durable job at ``path`` (here, or in a child
    interpreter with ``PYTHONHASHSEED=hash_seed``)."""
    if hash_seed is None:
        flow = build_flow(factory, sequential=sequential)
        job = JobState.open(path, flow_id=flow.flow_id, durability="none")
        job.snapshot_every = snapshot_every
        try:
            perform(flow, job, actions, timeout=timeout)
        finally:
            flow.shutdown(wait=True, timeout=5)
            job.close()
        return
    request = {"factory": _spec_of(factory), "path": path, "actions": [action_to_json(a) for a in actions],
               "snapshot_every": snapshot_every, "timeout": timeout, "sequential": sequential,
               "sys_path": [p for p in sys.path if p and os.path.isdir(p)]}
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
    done = subprocess.run([sys.executable, "-m", "replay_tools.testing.child"], input=json.dumps(request),
                          capture_output=True, text=True, env=env, timeout=timeout * 4 + 30, check=False)
    if done.returncode != 0:
        msg = f"the run with PYTHONHASHSEED={hash_seed} failed:\n{done.stderr.strip()}"
        raise KitUsageError(msg)


def assert_replay_deterministic(flow_factory: Callable[[], Flow], inputs: Any, *, rules: CompareRules | None = None,
                                runs: int = 2, hash_seeds: Sequence[int] | None = None, snapshot_every: int = 5,
                                timeout: float = DEFAULT_TIMEOUT, sequential: bool = True) -> JobState:
    """Run the flow, check every rebuild of its job, run it again and compare the runs.

    Args:
        flow_factory: builds the flow (a new one per run).
        inputs: ``Execute(entry, params)``, a list of actions (``Execute``, ``Pause``,
            ``Resume``, ``Cancel``, ``Wait``), or a dict of params for the only entry.
            The kit waits for the flow to settle after each, and for completion at the end.
        rules: what may differ between runs (default ``CompareRules()``).
        runs: how many runs (the first is checked in every storage; the others are
            compared with it). At least 2 to catch anything but replay bugs.
        hash_seeds: run each run in a fresh interpreter with ``PYTHONHASHSEED`` set to
            these values (one run per seed, overriding ``runs``), to catch dependence on
            set order. The factory must be importable (``module:name``).
        snapshot_every: the first run's snapshot interval (small: snapshots are checked).
        timeout: seconds to wait for the flow to settle after each input.
        sequential: run one task at a time (the default; concurrent workers interleave
            the events of one routine's tasks by timing).

    Returns:
        The first run's job, loaded in memory (its final state can be checked further).

    Raises:
        ReplayDivergence: the rebuilds or the runs differ (see the module docstring).
        KitUsageError: bad inputs, or ``hash_seeds`` with a factory a child cannot import.
    """
    actions = as_actions(flow_factory, inputs)
    seeds: list[int | None] = list(hash_seeds) if hash_seeds is not None else [None] * runs
    if len(seeds) < 1:
        msg = "runs (or hash_seeds) must allow at least one run"
        raise KitUsageError(msg)
    with tempfile.TemporaryDirectory(prefix="routilux-kit-") as tmp:
        first = os.path.join(tmp, "run-1")
        run_recorded(flow_factory, actions, first, snapshot_every=snapshot_every, timeout=timeout,
                     sequential=sequential, hash_seed=seeds[0])
        reopened = assert_rebuilds_agree(JobState.open(first, durability="none"), tmp)
        try:
            recorded = reopened.events()
            result = JobState.load(os.path.join(tmp, "saved.rjob"))
        finally:
            reopened.close()
        for number, seed in enumerate(seeds[1:], start=2):
            path = os.path.join(tmp, f"run-{number}")
            run_recorded(flow_factory, actions, path, snapshot_every=snapshot_every, timeout=timeout,
                         sequential=sequential, hash_seed=seed)
            with JobState.open(path, readonly=True) as other:
                actual = other.events()
            compare_runs(recorded, actual, rules, number, seeds)
    return result


def compare_runs(recorded: list[Any], actual: list[Any], rules: CompareRules | None, number: int,
             seeds: Sequence[int | None]) -> None:
    comparison = compare_events(recorded, actual, rules)
    div = comparison.divergence
    if div is None:
        return
    what = f"run {number} differs from run 1"
    if seeds[0] is not None:
        what += f" (PYTHONHASHSEED {seeds[number - 1]} vs {seeds[0]})"
    details = divergence_text(div)
    task = producing_task(recorded, div.version if div.change != "extra" else div.version + 1, div.routine_id)
    details.append("")
    details.append(produced_by(div, task))
    diffs, note = explain(recorded, div)
    details.append("state after it (run 1 -> with run " + str(number) + "'s event):" if diffs is not None
                   else f"state after it: {note}")
    if diffs is not None:
        details.extend(state_diff_text(diffs))
    raise ReplayDivergence(what, div.version, ["", *details], divergence=div, seed=current_seed(), recorded=recorded)
