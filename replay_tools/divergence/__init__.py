"""Replay determinism for users: re-run a recorded job with current code, fork it, ask what-if.

::

    from replay_tools.divergence import rerun, fork, whatif

    report = rerun("./jobs/1234", myflows.build_flow)   # same inputs, current code
    if not report.ok:
        print(report.text())      # first divergent event, side by side, state diff, routine, task

    fork("./jobs/1234", "./jobs/1234-what-if", at=17, skip=[9], edit={8: {"value": 1}})
    result = whatif("./jobs/1234", myflows.build_flow, at=17, edit={8: {"value": 1}})

Modules: :mod:`.rules` (what may differ between runs), :mod:`.compare` (lane-by-lane
comparison of two event streams), :mod:`.script` (a job's recorded inputs, performed
again), :mod:`.rerun`, :mod:`.fork`, :mod:`.report` (text and JSON).
"""

from __future__ import annotations

from .compare import Comparison, Divergence, FieldChange, compare_events
from .errors import FlowFactoryError, ForkSpecError, RerunTimeoutError, RuleSyntaxError
from .fork import FORKED, ForkResult, WhatIfResult, fork, parse_edit, verify_fork, whatif
from .rerun import RerunReport, TaskRef, rerun
from .rules import DEFAULT_ID_FIELDS, DEFAULT_IGNORE, CompareRules, parse_rule
from .script import (
    Action,
    Cancel,
    Execute,
    FlowFactory,
    Pause,
    Resume,
    Wait,
    actions_of,
    build_flow,
    flow_version_of,
    load_factory,
    perform,
    run_actions,
)

__all__ = [
    "DEFAULT_ID_FIELDS",
    "DEFAULT_IGNORE",
    "FORKED",
    "Action",
    "Cancel",
    "CompareRules",
    "Comparison",
    "Divergence",
    "Execute",
    "FieldChange",
    "FlowFactory",
    "FlowFactoryError",
    "ForkResult",
    "ForkSpecError",
    "Pause",
    "RerunReport",
    "RerunTimeoutError",
    "Resume",
    "RuleSyntaxError",
    "TaskRef",
    "Wait",
    "WhatIfResult",
    "actions_of",
    "build_flow",
    "compare_events",
    "flow_version_of",
    "fork",
    "load_factory",
    "parse_edit",
    "parse_rule",
    "perform",
    "rerun",
    "run_actions",
    "verify_fork",
    "whatif",
]
