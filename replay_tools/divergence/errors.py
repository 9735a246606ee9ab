"""Errors of :mod:`replay_tools.divergence` (re-running, forking and comparing jobs).

The tree (all under :class:`replay_tools.errors.ReplayError`, so the command line maps
them to its exit codes)::

    ReplayError
    ├── RuleSyntaxError (+ValueError)        exit 2: an ignore rule that does not parse
    ├── FlowFactoryError (+ValueError)       exit 2: ``module:factory`` cannot be imported,
    │                                                called, or does not return a Flow
    │                                                of the job's flow id
    ├── ForkSpecError (+ValueError)          exit 2: a bad ``--at``, ``--skip`` or ``--edit``,
    │                                                or edits that leave an unreadable job
    └── RerunTimeoutError (+TimeoutError)    exit 1: the re-run flow did not settle in time
"""

from __future__ import annotations

from ..errors import EXIT_CHECK_FAILED, EXIT_USAGE, ReplayError

__all__ = ["FlowFactoryError", "ForkSpecError", "RerunTimeoutError", "RuleSyntaxError"]


class RuleSyntaxError(ReplayError, ValueError):
    """A comparison rule (``KIND[FIELD=VALUE].path``) that does not parse."""

    exit_code = EXIT_USAGE

    def __init__(self, rule: str, reason: str) -> None:
        self.rule = rule
        self.reason = reason
        super().__init__(f"bad comparison rule {rule!r}: {reason}")


class FlowFactoryError(ReplayError, ValueError):
    """The flow factory cannot be found, fails, or builds the wrong flow."""

    exit_code = EXIT_USAGE

    def __init__(self, spec: str, reason: str) -> None:
        self.spec = spec
        self.reason = reason
        super().__init__(f"flow factory {spec!r}: {reason}")


class ForkSpecError(ReplayError, ValueError):
    """A fork point, skip or edit that cannot be applied to the job."""

    exit_code = EXIT_USAGE

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class RerunTimeoutError(ReplayError, TimeoutError):
    """The re-run flow did not become idle within the timeout."""

    exit_code = EXIT_CHECK_FAILED

    def __init__(self, what: str, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"the re-run flow did not settle within {timeout:g} s ({what}); "
                         "raise --timeout, or look for a handler that blocks")
