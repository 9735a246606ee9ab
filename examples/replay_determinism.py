"""Testing a flow for replay determinism, runnable: ``python examples/replay_determinism.py [DIR]``.

1. ``assert_replay_deterministic`` passes on a well-behaved flow;
2. it catches a routine that reads the clock, and names the first differing version;
3. a job recorded with version 1 of a routine is re-run with version 2 (``rerun``);
4. the job is forked at its review pause with an edited event and resumed (``whatif``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

from replay_tools.divergence import rerun, whatif
from replay_tools.testing import (
    Execute,
    Pause,
    ReplayDivergence,
    Resume,
    assert_replay_deterministic,
    record_golden,
)
from routilux import Flow, JobState, Routine


class Load(Routine):
    """Entry routine: keeps the rate in shared data; the items go on after a review (resume)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.run)
        self.define_event("loaded", ["items"])

    def run(self, items: list[int], rate: int = 2) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.update_shared_data("rate", rate)
        self.emit_deferred_event("loaded", items=items)  # emitted when the job is resumed


class Invoice(Routine):
    """Sends the invoice: the items' sum times the rate, minus ``discount``."""

    discount = 0

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("items", self.run)

    def run(self, items: list[int]) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        total = sum(items) * ctx.job_state.get_shared_data("rate", 1) - self.discount
        self.send_output("invoice", lines=len(items), total=total)


class DiscountedInvoice(Invoice):
    """Version 2 of the routine: a discount of 5."""

    discount = 5


class StampedInvoice(Invoice):
    """A mistake: the invoice carries the time it was made (differs on every run)."""

    def run(self, items: list[int]) -> None:
        super().run(items)
        self.send_output("stamp", at=time.time())


def build(invoice: type[Invoice] = Invoice, version: str = "1") -> Flow:
    """The billing flow: load -> invoice."""
    flow = Flow("billing", version=version)
    flow.add_routine(Load(), "load")
    flow.add_routine(invoice(), "invoice")
    flow.connect("load", "loaded", "invoice", "items")
    return flow


def build_v2() -> Flow:
    """The billing flow at version 2."""
    return build(DiscountedInvoice, "2")


def build_stamped() -> Flow:
    """The billing flow with the clock-reading mistake."""
    return build(StampedInvoice)


def main(directory: str) -> int:
    """Run the four steps of the module docstring, printing what each finds."""
    # Run the flow, pause it for a review, resume it (the invoice is sent then).
    inputs = [Execute("load", {"items": [3, 4, 5], "rate": 2}), Pause("review"), Resume()]

    job = assert_replay_deterministic(build, inputs)
    print("1. deterministic:", job.status, [o["data"]["total"] for o in job.output_log])

    try:
        assert_replay_deterministic(build_stamped, inputs)
    except ReplayDivergence as err:
        print(f"2. caught: {err.what} at version {err.version}:",
              ", ".join(f"{f.path} {f.expected} -> {f.actual}" for f in err.divergence.fields))
    else:
        print("2. NOT caught")
        return 1

    golden = os.path.join(directory, "billing.rjob")
    record_golden(build, inputs, golden, job_id="billing-1", overwrite=True)
    report = rerun(golden, build_v2)
    div = report.divergence
    assert div is not None and div.expected is not None
    print(f"3. {report.version_line()}; first divergence at version {div.version} ({div.expected.kind}):",
          ", ".join(f"{f.path} {f.expected} -> {f.actual}" for f in div.fields))

    recorded = JobState.load(golden)
    review = next(e.seq for e in recorded.events("paused"))
    rate_at = next(e.seq for e in recorded.events("shared_data_set"))
    result = whatif(golden, build, at=review, edit={rate_at: {"value": 10}})
    changes: list[Any] = [f"{d.path}: {d.old} -> {d.new}" for d in result.differences]
    print(f"4. what if the rate had been 10: {result.status};", "; ".join(changes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()))
