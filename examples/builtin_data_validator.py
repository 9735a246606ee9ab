"""DataValidator: send valid records one way and invalid ones (with reasons) another.

    python examples/builtin_data_validator.py
"""

from __future__ import annotations

from typing import Any

from routilux import Flow, JobState, Routine
from routilux.builtin_routines import DataValidator


class Signups(Routine):
    """Entry routine: emits sign-up forms."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.send)
        self.define_event("form", ["data"])

    def send(self, **_: object) -> None:
        for form in [{"name": "Ann", "age": 34}, {"name": "", "age": -3}, {"age": 20, "coupon": "X1"}]:
            self.emit("form", data=form)


class Printer(Routine):
    """Prints what it receives, prefixed with its label."""

    def __init__(self, label: str = "") -> None:
        super().__init__()
        self.label = label
        self.define_slot("input", self.show)

    def show(self, **data: Any) -> None:
        print(self.label, data)


def main() -> None:
    validator = DataValidator()
    validator.set_config(rules={"name": "not_empty", "age": lambda age: isinstance(age, int) and age >= 18},
                         required_fields=["name", "age"], allow_extra_fields=False)
    flow = Flow(flow_id="validate-demo")  # sequential: the lines print in order
    flow.add_routine(Signups(), "signups")
    flow.add_routine(validator, "validator")
    flow.add_routine(Printer("accept:"), "accept")
    flow.add_routine(Printer("reject:"), "reject")
    flow.connect("signups", "form", "validator", "input")
    flow.connect("validator", "valid", "accept", "input")
    flow.connect("validator", "invalid", "reject", "input")

    job = flow.execute("signups")
    JobState.wait_for_completion(flow, job, timeout=10)
    flow.shutdown()
    print("validator history:", [record.event_name for record in job.get_execution_history("validator")])


if __name__ == "__main__":
    main()
