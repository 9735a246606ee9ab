"""A durable flow run that survives its process: run, "crash", resume in a new process.

    python examples/flow_durable.py run    /tmp/job-dir   # starts and stops half-way
    python examples/flow_durable.py resume /tmp/job-dir   # finishes the remaining tasks
    python examples/flow_durable.py show   /tmp/job-dir   # history of the job

``run`` executes the flow against ``JobState.open(path)`` and exits abruptly (``os._exit``)
after a few items, like a killed process. ``resume`` reopens the log in a fresh process and
calls ``flow.resume(job)``: every task that was queued and not finished runs again
(at-least-once: a task that was running when the process died runs a second time), and the
history records ``resumed_after_interruption`` with the re-run tasks.
"""

from __future__ import annotations

import os
import sys

from routilux import Flow, JobState, Routine


class Numbers(Routine):
    """Entry routine: emits the numbers 0..count-1."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.start)
        self.define_event("number", ["n"])

    def start(self, count: int = 10) -> None:
        for n in range(count):
            self.emit("number", n=n)


class Square(Routine):
    """Squares a number, records it in the job's shared data, and may "crash"."""

    crash_after: int | None = None

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", self.square)

    def square(self, n: int) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.update_shared_data(f"square_{n}", n * n)
        self.send_output("square", n=n, square=n * n)
        if self.crash_after is not None and n >= self.crash_after:
            os._exit(1)  # simulate kill -9: no cleanup, no close


def build() -> Flow:
    """The same flow structure in every process (same flow id and routine ids)."""
    flow = Flow("squares")
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(Square(), "square")
    flow.connect("numbers", "number", "square", "input")
    return flow


def main(argv: list[str]) -> int:
    """Run one of the commands in the module docstring."""
    if len(argv) != 3 or argv[1] not in ("run", "resume", "show"):
        print(__doc__)
        return 2
    command, path = argv[1], argv[2]
    flow = build()
    job = JobState.open(path, flow_id=flow.flow_id)
    try:
        if command == "run":
            Square.crash_after = 4
            flow.execute("numbers", {"count": 10}, job_state=job)
            JobState.wait_for_completion(flow, job, timeout=30)
        elif command == "resume":
            flow.resume(job)
            JobState.wait_for_completion(flow, job, timeout=30)
        for record in job.get_execution_history():
            if record.event_name != "number":
                print(f"{record.timestamp:%H:%M:%S.%f} {record.routine_id:>8} {record.event_name} {dict(record.data)}")
        print("status:", job.status, "| squares:", sorted(v for k, v in job.shared_data.items()))
    finally:
        job.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
