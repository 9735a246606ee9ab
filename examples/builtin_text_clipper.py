"""TextClipper: keep text under a length limit, cutting at whole lines.

    python examples/builtin_text_clipper.py

A report of twelve lines goes through a TextClipper limited to 80 characters; what the
clipper emitted is read back from the job's history, which the event log replays exactly.
"""

from __future__ import annotations

from routilux import Flow, JobState, Routine
from routilux.builtin_routines import TextClipper


class Report(Routine):
    """Entry routine: emits a report of ``lines`` lines."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.send)
        self.define_event("text", ["text"])

    def send(self, lines: int = 12) -> None:
        self.emit("text", text="\n".join(f"row {i:2}: all systems nominal" for i in range(lines)))


def main() -> None:
    clipper = TextClipper()
    clipper.set_config(max_length=80, truncation_message="... ({remaining} more lines)")
    flow = Flow(flow_id="clip-demo")
    flow.add_routine(Report(), "report")
    flow.add_routine(clipper, "clipper")
    flow.connect("report", "text", "clipper", "input")

    job = flow.execute("report", entry_params={"lines": 12})
    JobState.wait_for_completion(flow, job, timeout=10)
    flow.shutdown()

    (record,) = job.get_execution_history("clipper")
    print(record.data["clipped_text"])
    print(f"was_clipped={record.data['was_clipped']} original_length={record.data['original_length']}")
    replayed = JobState.from_events(job.events())
    print(f"replayed from {job.version} events:", "same state" if replayed.serialize() == job.serialize() else "DIFFERENT")


if __name__ == "__main__":
    main()
