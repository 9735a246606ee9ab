"""Errors of :mod:`replay_tools.testing`.

The tree::

    AssertionError
    └── ReplayDivergence            a flow's runs or a job's replays disagree; the message
                                    names the first differing version, the fields that
                                    differ and the Hypothesis seed
    ValueError
    └── KitUsageError               the kit was called wrongly (no entry routine, a factory
                                    a child interpreter cannot import, ...)
"""

from __future__ import annotations

from typing import Any

__all__ = ["KitUsageError", "ReplayDivergence"]


class ReplayDivergence(AssertionError):
    """Two things that must be equal are not: runs of a flow, or ways to rebuild a job.

    Attributes:
        what: which comparison failed (``"run 2 vs run 1"``, ``"save/load vs full replay"``).
        version: the first differing version (of the first run's job).
        details: the report lines after the headline (side by side, field diff, ...).
        divergence: the :class:`replay_tools.divergence.Divergence` for runs that
            diverged, else None.
        seed: the Hypothesis seed in effect, or None outside a Hypothesis test.
        recorded: the first run's events (``JobEvent`` s), where the version points.
    """

    def __init__(self, what: str, version: int, details: list[str], *, divergence: Any = None,
                 seed: int | None = None, recorded: list[Any] | None = None) -> None:
        self.what = what
        self.recorded = recorded if recorded is not None else []
        self.version = version
        self.details = details
        self.divergence = divergence
        self.seed = seed
        lines = [f"replay determinism failed: {what}", f"first differing version: {version}", *details]
        if seed is not None:
            lines.append(f"Hypothesis seed: {seed} (ROUTILUX_REPLAY_SEED={seed} runs the same examples again; "
                         "it seeds FlowMachine subclasses and tests decorated with @seeded)")
        super().__init__("\n".join(lines))


class KitUsageError(ValueError):
    """The kit was called in a way it cannot work with; the message says what to do."""
