"""``FlowMachine``: a Hypothesis state machine to subclass; it drives your flow.

Write rules that call :meth:`FlowMachine.execute`, :meth:`~FlowMachine.pause`,
:meth:`~FlowMachine.resume`, :meth:`~FlowMachine.cancel` (and read ``self.job``)::

    class OrdersMachine(FlowMachine):
        flow_factory = build_orders_flow

        @rule(params=entry_params(build_orders_flow(), "fetch"))
        def run_batch(self, params):
            self.execute("fetch", params)

        @rule()
        def pause_and_resume(self):
            self.pause("operator check")
            self.resume()

    TestOrders = OrdersMachine.TestCase

Every example runs on a durable job. After every step the live job must equal a full
replay of its log; at the end of the example the job must rebuild identically in every
storage at every version, and a second run of the same inputs with a new flow must
record the same events (see :func:`~.determinism.assert_replay_deterministic`).
Subclasses are seeded with :func:`~.seed.kit_seed` (``ROUTILUX_REPLAY_SEED``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import hypothesis
from hypothesis.stateful import RuleBasedStateMachine, invariant

from routilux import Flow, JobState

from ..divergence.compare import field_changes
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
    perform,
)
from .checks import assert_rebuilds_agree
from .determinism import compare_runs, run_recorded
from .errors import KitUsageError, ReplayDivergence
from .seed import current_seed, kit_seed

__all__ = ["FlowMachine"]


class FlowMachine(RuleBasedStateMachine):
    """Base class: set ``flow_factory`` and write rules that drive the flow (see the module docstring).

    Attributes:
        flow_factory: builds the flow (class attribute; a plain function is fine).
        compare_rules: what may differ between the two runs.
        snapshot_every: the job's snapshot interval (small, so snapshots are exercised).
        timeout: seconds to wait for the flow to settle after each input.
        flow: this example's flow; job: its durable job; actions: the inputs so far.
    """

    flow_factory: ClassVar[Callable[[], Flow]]
    compare_rules: ClassVar[CompareRules] = CompareRules()
    snapshot_every: ClassVar[int] = 5
    timeout: ClassVar[float] = DEFAULT_TIMEOUT

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The kit's seed, so a failure can be run again (ROUTILUX_REPLAY_SEED); a
        # @seed(...) written on the subclass is applied after this and wins.
        hypothesis.seed(kit_seed())(cls)

    def __init__(self) -> None:
        super().__init__()
        factory = type(self).__dict__.get("flow_factory") or getattr(type(self), "flow_factory", None)
        if factory is None:
            msg = f"{type(self).__name__} must set flow_factory = <function that builds the Flow>"
            raise KitUsageError(msg)
        self._factory: Callable[[], Flow] = factory.__func__ if isinstance(factory, staticmethod) else factory
        self._tmp = tempfile.mkdtemp(prefix="routilux-machine-")
        self.flow: Flow = build_flow(self._factory)
        self.job: JobState = JobState.open(os.path.join(self._tmp, "job"), flow_id=self.flow.flow_id,
                                           durability="none")
        self.job.snapshot_every = type(self).snapshot_every
        self.actions: list[Action] = []

    # -- inputs ------------------------------------------------------------------------
    def _do(self, action: Action) -> None:
        self.actions.append(action)
        perform(self.flow, self.job, [action], timeout=type(self).timeout)

    def execute(self, entry: str, params: Mapping[str, Any] | None = None) -> None:
        """``flow.execute(entry, params)`` on this example's job, then wait until it settles."""
        self._do(Execute(entry, dict(params) if params is not None else None))

    def pause(self, reason: str = "", checkpoint: Mapping[str, Any] | None = None) -> None:
        """Pause the job (once it is idle)."""
        self._do(Pause(reason, dict(checkpoint) if checkpoint is not None else None))

    def resume(self) -> None:
        """Resume the job if it is paused, then wait until it settles."""
        self._do(Resume())

    def cancel(self, reason: str = "") -> None:
        """Cancel the job."""
        self._do(Cancel(reason))

    def wait(self) -> None:
        """``JobState.wait_for_completion``: an idle running job becomes completed or failed."""
        self._do(Wait())

    # -- checks ------------------------------------------------------------------------
    @invariant()
    def live_job_equals_its_replay(self) -> None:
        """After every step: the live job equals a full replay of its log."""
        live = self.job.serialize()
        replayed = JobState.from_events(self.job.events()).serialize()
        changes = field_changes(replayed, live)
        if changes:
            lines = [f"  {c.path}: {c.expected!r} -> {c.actual!r}" for c in changes[:20]]
            raise ReplayDivergence("the live job differs from a full replay of its log", self.job.version,
                                   ["fields (replay -> live):", *lines], seed=current_seed())

    def teardown(self) -> None:
        """At the end of an example: every rebuild agrees, and a second run matches."""
        try:
            if not self.actions:
                return
            if not isinstance(self.actions[-1], Wait):
                self.wait()
            self.flow.shutdown(wait=True, timeout=5)
            reopened = assert_rebuilds_agree(self.job, self._tmp)
            try:
                recorded = reopened.events()
            finally:
                reopened.close()
            again = os.path.join(self._tmp, "run-2")
            run_recorded(self._factory, self.actions, again, snapshot_every=type(self).snapshot_every,
                         timeout=type(self).timeout)
            with JobState.open(again, readonly=True) as other:
                actual = other.events()
            compare_runs(recorded, actual, type(self).compare_rules, 2, [None, None])
        finally:
            self.flow.shutdown(wait=False)
            if not self.job.closed:
                self.job.close()
            shutil.rmtree(self._tmp, ignore_errors=True)
