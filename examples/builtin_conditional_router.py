"""ConditionalRouter: send each ticket to a queue chosen by conditions.

    python examples/builtin_conditional_router.py

Conditions may be strings (evaluated with ``eval`` over ``data`` and ``config``: write them
yourself, never take them from users), dicts of expected field values, or functions.
"""

from __future__ import annotations

from typing import Any

from routilux import Flow, JobState, Routine
from routilux.builtin_routines import ConditionalRouter

TICKETS = [{"id": 1, "severity": 9}, {"id": 2, "team": "billing"}, {"id": 3, "severity": 2}]


class Tickets(Routine):
    """Entry routine: emits the tickets."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.send)
        self.define_event("ticket", ["data"])

    def send(self, **_: object) -> None:
        for ticket in TICKETS:
            self.emit("ticket", data=ticket)


class Queue(Routine):
    """Prints the tickets routed to it."""

    def __init__(self, name: str = "") -> None:
        super().__init__()
        self.name = name
        self.define_slot("input", self.take)

    def take(self, data: Any = None, route: str = "") -> None:
        print(f"{self.name:>8} <- ticket {data['id']} (route {route!r})")


def main() -> None:
    router = ConditionalRouter()
    router.set_config(
        routes=[("urgent", "data.get('severity', 0) >= config['page_at']"), ("billing", {"team": "billing"})],
        default_route="backlog",
        page_at=7,
    )
    flow = Flow(flow_id="route-demo")
    flow.add_routine(Tickets(), "tickets")
    flow.add_routine(router, "router")
    flow.connect("tickets", "ticket", "router", "input")
    for route in ("urgent", "billing", "backlog"):
        router.define_event(route, ["data", "route"])  # route events must exist before connecting
        flow.add_routine(Queue(route), route)
        flow.connect("router", route, route, "input")

    job = flow.execute("tickets")
    JobState.wait_for_completion(flow, job, timeout=10)
    flow.shutdown()
    print("routed:", [record.event_name for record in job.get_execution_history("router")])


if __name__ == "__main__":
    main()
