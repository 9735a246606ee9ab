"""TimeProvider: the current time in several formats, recorded in the job's log.

    python examples/builtin_time_provider.py

Each request may name its own format. The times are event data in the job's log, so a
replay of the job shows the times of the run, not of the replay.
"""

from __future__ import annotations

from routilux import Flow, JobState, Routine
from routilux.builtin_routines import TimeProvider


class Ticker(Routine):
    """Entry routine: asks for the time once per format."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.tick)
        self.define_event("tick", ["format"])

    def tick(self, **_: object) -> None:
        for name in ("iso", "formatted", "timestamp", "custom"):
            self.emit("tick", format=name)


def main() -> None:
    clock = TimeProvider()
    clock.set_config(locale="en_US", custom_format="%H:%M on %d %b %Y")
    flow = Flow(flow_id="time-demo")
    flow.add_routine(Ticker(), "ticker")
    flow.add_routine(clock, "clock")
    flow.connect("ticker", "tick", "clock", "request")

    job = flow.execute("ticker")
    JobState.wait_for_completion(flow, job, timeout=10)
    flow.shutdown()

    for record in JobState.from_events(job.events()).get_execution_history("clock"):
        print(f"{record.data['time_string']!r:>40}   (formatted: {record.data['formatted']!r})")


if __name__ == "__main__":
    main()
