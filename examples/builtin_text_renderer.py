"""TextRenderer: render nested data as tagged text (for a prompt) or as markdown.

    python examples/builtin_text_renderer.py

One order goes to two renderers, one per format; each rendering is read back from the job.
"""

from __future__ import annotations

from routilux import Flow, JobState, Routine
from routilux.builtin_routines import TextRenderer

ORDER = {"customer": {"name": "Ann", "tier": "gold"}, "items": ["tea", "scones"], "total": 12.5}


class Orders(Routine):
    """Entry routine: emits one order."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.send)
        self.define_event("order", ["data"])

    def send(self, **_: object) -> None:
        self.emit("order", data=ORDER)


def main() -> None:
    flow = Flow(flow_id="render-demo")
    flow.add_routine(Orders(), "orders")
    for name, tag_format in [("xml", "xml"), ("markdown", "markdown")]:
        renderer = TextRenderer()
        renderer.set_config(tag_format=tag_format)
        flow.add_routine(renderer, name)
        flow.connect("orders", "order", name, "input")

    job = flow.execute("orders")
    JobState.wait_for_completion(flow, job, timeout=10)
    flow.shutdown()

    for name in ("xml", "markdown"):
        (record,) = job.get_execution_history(name)
        print(f"--- {name} ({record.data['original_type']}) ---")
        print(record.data["rendered_text"])


if __name__ == "__main__":
    main()
