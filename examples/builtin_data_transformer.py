"""DataTransformer: clean up values with a chain of named and custom transformations.

    python examples/builtin_data_transformer.py

Errors do not stop the chain: they are reported next to the result.
"""

from __future__ import annotations

from routilux import Flow, JobState, Routine
from routilux.builtin_routines import DataTransformer


def slug(value: object) -> object:
    """A custom transformation: spaces to dashes."""
    return value.replace(" ", "-") if isinstance(value, str) else value


class Inputs(Routine):
    """Entry routine: emits raw user input."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.send)
        self.define_event("raw", ["data"])

    def send(self, **_: object) -> None:
        for raw in ["  Hello Big World  ", "  42 "]:
            self.emit("raw", data=raw)


def main() -> None:
    transformer = DataTransformer()
    transformer.register_transformation("slug", slug)
    transformer.set_config(transformations=["strip_whitespace", "lowercase", "slug", "to_int"])
    flow = Flow(flow_id="transform-demo")
    flow.add_routine(Inputs(), "inputs")
    flow.add_routine(transformer, "transformer")
    flow.connect("inputs", "raw", "transformer", "input")

    job = flow.execute("inputs")
    JobState.wait_for_completion(flow, job, timeout=10)
    flow.shutdown()

    for record in job.get_execution_history("transformer"):
        data = record.data
        print(f"{data['transformed_data']!r}  applied={list(data['transformation_applied'])}  errors={data['errors']}")


if __name__ == "__main__":
    main()
