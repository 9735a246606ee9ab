"""A test kit for replay determinism of your own flows (issue 16).

::

    from replay_tools.testing import Execute, assert_replay_deterministic, flow_inputs, seeded
    from hypothesis import given

    def test_orders_replay():
        assert_replay_deterministic(build_flow, Execute("fetch", {"customer": "acme"}))

    @seeded
    @given(flow_inputs(build_flow))
    def test_orders_replay_any_input(inputs):
        assert_replay_deterministic(build_flow, inputs)

* :func:`assert_replay_deterministic`: one run rebuilds identically in every storage at
  every version, and a second run records the same events (failures name the first
  differing version, the fields, the routine and task, and the Hypothesis seed);
* strategies: :func:`flow_inputs`, :func:`entry_params`, :func:`job_operations`,
  :func:`storable_values`;
* :class:`FlowMachine`: a Hypothesis ``RuleBasedStateMachine`` to subclass, whose rules
  drive your flow and whose every example is checked the same way;
* golden logs: :func:`record_golden` writes one, :func:`register_golden_flow` tells
  ``pytest --routilux-golden DIR`` which factory re-runs a flow id.
"""

from __future__ import annotations

from ..divergence.rules import CompareRules
from ..divergence.script import Action, Cancel, Execute, Pause, Resume, Wait
from .checks import assert_rebuilds_agree
from .determinism import as_actions, assert_replay_deterministic
from .errors import KitUsageError, ReplayDivergence
from .golden import check_golden, golden_flows, record_golden, register_golden_flow
from .machine import FlowMachine
from .seed import SEED_VARIABLE, kit_seed, seeded
from .strategies import (
    JobOperation,
    entry_params,
    entry_routines,
    flow_inputs,
    job_operations,
    storable_dicts,
    storable_values,
)

__all__ = [
    "SEED_VARIABLE",
    "Action",
    "Cancel",
    "CompareRules",
    "Execute",
    "FlowMachine",
    "JobOperation",
    "KitUsageError",
    "Pause",
    "ReplayDivergence",
    "Resume",
    "Wait",
    "as_actions",
    "assert_rebuilds_agree",
    "assert_replay_deterministic",
    "check_golden",
    "entry_params",
    "entry_routines",
    "flow_inputs",
    "golden_flows",
    "job_operations",
    "kit_seed",
    "record_golden",
    "register_golden_flow",
    "seeded",
    "storable_dicts",
    "storable_values",
]
