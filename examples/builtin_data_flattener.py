"""DataFlattener: turn a nested record into flat columns, e.g. for a CSV row.

    python examples/builtin_data_flattener.py
"""

from __future__ import annotations

from routilux import Flow, JobState, Routine
from routilux.builtin_routines import DataFlattener

RECORD = {"id": 7, "user": {"name": "Ann", "address": {"city": "Oslo"}}, "tags": ["new", "vip"]}


class Records(Routine):
    """Entry routine: emits one nested record."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.send)
        self.define_event("record", ["data"])

    def send(self, **_: object) -> None:
        self.emit("record", data=RECORD)


def main() -> None:
    flattener = DataFlattener()
    flattener.set_config(separator="_")
    flow = Flow(flow_id="flatten-demo")
    flow.add_routine(Records(), "records")
    flow.add_routine(flattener, "flattener")
    flow.connect("records", "record", "flattener", "input")

    job = flow.execute("records")
    JobState.wait_for_completion(flow, job, timeout=10)
    flow.shutdown()

    (record,) = job.get_execution_history("flattener")
    flat = record.data["flattened_data"]
    print(",".join(flat))
    print(",".join(str(value) for value in flat.values()))
    print(f"original_type={record.data['original_type']} depth={record.data['depth']}")


if __name__ == "__main__":
    main()
