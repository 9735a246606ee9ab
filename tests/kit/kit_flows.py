"""Flows for the kit's tests: well-behaved ones, and one per planted kind of non-determinism.

Module-level factories, so a child interpreter can import them (``hash_seeds``) and the
command line can name them (``--flow kit_flows:build_ledger_v2``).
"""

from __future__ import annotations

import itertools
import random
import time
from typing import Any

from replay_tools.demo import build_flow as build_demo_flow  # noqa: F401 - re-exported for the tests
from routilux import Flow, Routine

# -- well-behaved flows (the README's and the examples') ------------------------------------


class Numbers(Routine):
    """Entry: emits 0..count-1, one event each (so the entry races with the worker)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.start)
        self.define_event("number", ["n"])

    def start(self, count: int = 5) -> None:
        for n in range(count):
            self.emit("number", n=n)


class Square(Routine):
    """Records n*n in shared data and as an output."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", self.square)

    def square(self, n: int) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.update_shared_data(f"square_{n}", n * n)
        self.send_output("square", n=n, square=n * n)


def build_squares() -> Flow:
    """examples/flow_durable.py's flow, without its crash."""
    flow = Flow("squares")
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(Square(), "square")
    flow.connect("numbers", "number", "square", "input")
    return flow


class Fetch(Routine):
    """Entry: emits a list of orders."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.run)
        self.define_event("fetched", ["orders"])

    def run(self, customer: str = "acme", count: int = 3) -> None:
        self.emit("fetched", orders=[{"customer": customer, "n": i} for i in range(count)])


class Count(Routine):
    """Counts the orders into shared data."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("orders", self.count)

    def count(self, orders: list[dict[str, Any]]) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.update_shared_data("count", len(orders))
        ctx.job_state.update_routine_state("count", {"status": "completed", "seen": len(orders)})


def build_orders() -> Flow:
    """examples/quickstart.py's flow."""
    flow = Flow("orders")
    flow.add_routine(Fetch(), "fetch")
    flow.add_routine(Count(), "count")
    flow.connect("fetch", "fetched", "count", "orders")
    return flow


# -- planted non-determinism: each writes "planted" after some deterministic work ----------


class Planted(Routine):
    """Writes a few deterministic values, then ``planted`` = ``self.value()``."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", self.run)

    def value(self) -> Any:
        raise NotImplementedError

    def run(self, n: int) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.update_shared_data(f"seen_{n}", n)
        if n == 2:
            ctx.job_state.update_routine_state("planted", {"status": "running", "n": n})
            self.send_output("planted", n=n, value=self.value())


class ReadsTheClock(Planted):
    """Reads the wall clock."""

    def value(self) -> Any:
        return time.time()


class DrawsARandomNumber(Planted):
    """Draws a random number."""

    def value(self) -> Any:
        return random.random()


TAGS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta")


class DependsOnSetOrder(Planted):
    """Lists the tags in the iteration order of a set of str (PYTHONHASHSEED decides it)."""

    def value(self) -> Any:
        return list(set(TAGS))


_TICKETS = itertools.count(1)


class UsesAnExternalCounter(Planted):
    """Takes a ticket from a counter that outlives the run (module state)."""

    def value(self) -> Any:
        return next(_TICKETS)


def _planted(flow_id: str, routine: Planted) -> Flow:
    flow = Flow(flow_id)
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(routine, "planted")
    flow.connect("numbers", "number", "planted", "input")
    return flow


def build_clock() -> Flow:
    """Planted: the clock."""
    return _planted("planted-clock", ReadsTheClock())


def build_random() -> Flow:
    """Planted: a random number."""
    return _planted("planted-random", DrawsARandomNumber())


def build_set_order() -> Flow:
    """Planted: set iteration order."""
    return _planted("planted-set-order", DependsOnSetOrder())


def build_counter() -> Flow:
    """Planted: an external counter."""
    return _planted("planted-counter", UsesAnExternalCounter())


# -- one flow, two versions of a routine (rerun) -----------------------------------------------


class Load(Routine):
    """Entry: keeps the rate in shared data and hands the items on."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.run)
        self.define_event("loaded", ["items"])

    def run(self, items: list[int], rate: int = 2) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.update_shared_data("rate", rate)
        self.emit("loaded", items=items)


class Total(Routine):
    """Version 1: total = sum(items) * rate."""

    discount = 0

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("items", self.run)

    def run(self, items: list[int]) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        job = ctx.job_state
        total = sum(items) * job.get_shared_data("rate", 1) - self.discount
        self.send_output("invoice", lines=len(items), total=total)
        job.update_shared_data("total", total)


class DiscountedTotal(Total):
    """Version 2: the same, minus a discount of 5."""

    discount = 5


def _ledger(version: str, total: Total) -> Flow:
    flow = Flow("ledger", version=version)
    flow.add_routine(Load(), "load")
    flow.add_routine(total, "total")
    flow.connect("load", "loaded", "total", "items")
    return flow


def build_ledger_v1() -> Flow:
    """The ledger flow at version 1."""
    return _ledger("1", Total())


def build_ledger_v2() -> Flow:
    """The ledger flow at version 2 (the total routine changed)."""
    return _ledger("2", DiscountedTotal())


def build_ledger_v1_relabelled() -> Flow:
    """Version 1's code declared as version 1.1 (same behaviour, another label)."""
    return _ledger("1.1", Total())
