"""ResultExtractor: pull a structured result out of a model's answer or interpreter output.

    python examples/builtin_result_extractor.py

Three kinds of raw output go through one extractor; for each it reports what it found, how
(``extraction_path``) and how sure it is (``confidence``).
"""

from __future__ import annotations

from routilux import Flow, JobState, Routine
from routilux.builtin_routines import ResultExtractor

FENCE = "```"
ANSWERS = [
    f'Here is the plan:\n{FENCE}json\n{{"steps": ["fetch", "parse"], "retries": 2}}\n{FENCE}\nGood luck!',
    [{"format": "code", "content": "print(6 * 7)"}, {"format": "output", "content": "42"}],
    "no structure at all",
]


class Model(Routine):
    """Entry routine: emits each raw answer."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.answer)
        self.define_event("answer", ["data"])

    def answer(self, **_: object) -> None:
        for raw in ANSWERS:
            self.emit("answer", data=raw)


def main() -> None:
    flow = Flow(flow_id="extract-demo")
    flow.add_routine(Model(), "model")
    flow.add_routine(ResultExtractor(), "extractor")
    flow.connect("model", "answer", "extractor", "input")

    job = flow.execute("model")
    JobState.wait_for_completion(flow, job, timeout=10)
    flow.shutdown()

    for record in job.get_execution_history("extractor"):
        data = record.data
        print(f"{data['format']:>18} via {data['extraction_path'] or ['(nothing)']}, "
              f"confidence {data['confidence']:.1f}: {data['extracted_result']!r}")


if __name__ == "__main__":
    main()
