"""The README's quick start, runnable: ``python examples/quickstart.py [DIR]``."""

from __future__ import annotations

import sys
import tempfile

from routilux import Flow, JobState, Routine


class Fetch(Routine):
    """Entry routine: emits a few orders."""

    def __init__(self) -> None:
        super().__init__()
        self.trigger = self.define_slot("trigger", handler=self.run)
        self.out = self.define_event("fetched", ["orders"])

    def run(self, customer=None, **_):  # type: ignore[no-untyped-def]
        self.emit("fetched", orders=[1, 2, 3])


class Count(Routine):
    """Counts the orders into shared data."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("orders", handler=self.count)

    def count(self, orders):  # type: ignore[no-untyped-def]
        ctx = self.get_execution_context()
        ctx.job_state.update_shared_data("count", len(orders))


def main(directory: str) -> None:
    """Run the flow in memory, then durably, and show a few new JobState features."""
    flow = Flow(flow_id="orders")
    flow.add_routine(Fetch(), "fetch")
    flow.add_routine(Count(), "count")
    flow.connect("fetch", "fetched", "count", "orders")

    job = flow.execute("fetch", entry_params={"customer": "acme"})
    JobState.wait_for_completion(flow, job, timeout=10)
    print(job.status, job.get_shared_data("count"))

    with JobState.open(f"{directory}/run-1", flow_id=flow.flow_id) as job:
        flow.execute("fetch", entry_params={"customer": "acme"}, job_state=job)
        JobState.wait_for_completion(flow, job, timeout=10)
        print(job.version, job.head_hash)
        before = job.at(version=3)
        print(before.status, before.version)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp())
