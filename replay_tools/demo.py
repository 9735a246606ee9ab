"""``routilux-replay demo``: run an example durable flow, then explore its log.

The flow processes a small batch of orders:

* ``fetch`` (entry): loads the orders; its first attempt fails with a timeout and the
  routine's RETRY error handler runs it again. It hands the orders on as a *deferred*
  event, which the engine emits when the job is resumed;
* ``validate``: checks each order against a credit ``limit`` kept in shared data and
  counts the limit down to 0; an order over the limit is rejected;
* ``price``: computes the invoice total and sends it as output;
* ``report``: sends a summary and marks the batch done.

Between ``fetch`` and the rest, the job is paused for an "operator check" and resumed,
so every run records the same story in the same order.
Everything is written to a durable job log (``JobState.open``); the demo then runs
the tool's commands on it, printing each command line so it can be re-run by hand.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import sys
import tempfile
from typing import Any

from routilux import ErrorHandler, ErrorStrategy, Flow, JobState, Routine

__all__ = ["build_flow", "run_demo", "run_flow", "run_flow_into"]

ORDERS = [
    {"id": "A-100", "sku": "widget", "qty": 2, "unit_price": 4.5},
    {"id": "A-101", "sku": "gadget", "qty": 1, "unit_price": 19.0},
    {"id": "A-102", "sku": "widget", "qty": 5, "unit_price": 4.5},
    {"id": "A-103", "sku": "gizmo", "qty": 40, "unit_price": 2.25},
]


class Fetch(Routine):
    """Entry routine: loads the orders; the first attempt times out."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0
        self.define_slot("trigger", self.run)
        self.define_event("fetched", ["orders"])

    def run(self, customer: str = "acme", **_: Any) -> None:
        """Fail once (a simulated upstream timeout), then hand the orders on after the check."""
        self.attempts += 1
        if self.attempts == 1:
            msg = "upstream order service timed out after 2.0 s"
            raise TimeoutError(msg)
        ctx = self.get_execution_context()
        assert ctx is not None
        job = ctx.job_state
        job.update_shared_data("customer", customer)
        job.update_shared_data("limit", 3)
        job.append_to_shared_log({"event": "orders fetched", "count": len(ORDERS), "attempt": self.attempts})
        # Deferred: emitted by flow.resume() once the operator check is done.
        self.emit_deferred_event("fetched", orders=ORDERS)


class Validate(Routine):
    """Accepts orders while the credit limit lasts, counting it down."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("orders", self.run)
        self.define_event("validated", ["accepted", "rejected"])

    def run(self, orders: list[dict[str, Any]], **_: Any) -> None:
        """Accept up to ``limit`` orders; reject the rest."""
        ctx = self.get_execution_context()
        assert ctx is not None
        job = ctx.job_state
        accepted, rejected = [], []
        for order in orders:
            limit = job.get_shared_data("limit", 0)
            if limit > 0 and order["qty"] <= 10:
                accepted.append(order)
                job.update_shared_data("limit", limit - 1)
            else:
                rejected.append(order["id"])
        job.update_routine_state("validate", {"status": "completed", "accepted": len(accepted),
                                              "rejected": rejected})
        self.emit("validated", accepted=accepted, rejected=rejected)


class Price(Routine):
    """Prices the accepted orders and sends the invoice as output."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("accepted", self.run)
        self.define_event("priced", ["total"])

    def run(self, accepted: list[dict[str, Any]], rejected: list[str] | None = None, **_: Any) -> None:
        """Sum qty * unit_price."""
        total = round(sum(o["qty"] * o["unit_price"] for o in accepted), 2)
        self.send_output("invoice", lines=len(accepted), total=total, currency="EUR")
        self.emit("priced", total=total, rejected=rejected or [])


class Report(Routine):
    """Sends a summary and marks the batch done."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("summary", self.run)

    def run(self, total: float, rejected: list[str] | None = None, **_: Any) -> None:
        """Publish the summary."""
        ctx = self.get_execution_context()
        assert ctx is not None
        self.send_output("summary", total=total, rejected=rejected or [])
        ctx.job_state.update_shared_data("done", True)


def build_flow() -> Flow:
    """The demo flow: fetch -> validate -> price -> report, fetch retried on failure."""
    flow = Flow("order-batch")
    fetch = Fetch()
    fetch.set_error_handler(ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=2, retry_delay=0.01,
                                         retry_backoff=1.0))
    flow.add_routine(fetch, "fetch")
    flow.add_routine(Validate(), "validate")
    flow.add_routine(Price(), "price")
    flow.add_routine(Report(), "report")
    flow.connect("fetch", "fetched", "validate", "orders")
    flow.connect("validate", "validated", "price", "accepted")
    flow.connect("price", "priced", "report", "summary")
    return flow


class _Collect(logging.Handler):
    """Keeps the engine's log messages (the demo shows them in its own words)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _engine_log() -> Any:
    """Collect what the ``routilux`` loggers say while the demo flow runs, instead of printing it."""
    logger = logging.getLogger("routilux")
    handler, propagate = _Collect(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


#: What the engine logged during the last :func:`run_flow` (the planned retry, for one).
ENGINE_MESSAGES: list[str] = []


def run_flow(path: str, *, timeout: float = 30.0) -> str:
    """Run the demo flow into a durable job at ``path``; return the job id.

    The job is paused right after the entry routine (an operator check) and resumed;
    the resume emits the entry's deferred event, which runs the rest of the flow. What
    the engine logs meanwhile (the planned retry) is kept in :data:`ENGINE_MESSAGES`.
    """
    with _engine_log() as messages:
        try:
            return _run_flow(path, timeout)
        finally:
            ENGINE_MESSAGES[:] = messages


def _run_flow(path: str, timeout: float) -> str:
    flow = build_flow()
    job = JobState.open(path, flow_id=flow.flow_id)
    try:
        flow.execute("fetch", {"customer": "acme"}, job_state=job)
        flow.pause(job, reason="operator check", checkpoint={"after": "fetch"})
        flow.resume(job)
        if not JobState.wait_for_completion(flow, job, timeout=timeout):
            msg = f"the demo flow did not finish within {timeout} s"
            raise RuntimeError(msg)
        job_id = job.job_id
    finally:
        flow.shutdown(wait=True, timeout=5)
        job.close()
    return job_id


def _show(printer: Any, title: str, argv: list[str]) -> None:
    from .cli import cli

    printer.line()
    printer.line(printer.bold(f"── {title} " + "─" * max(4, 72 - len(title))))
    printer.line(printer.bold("$ routilux-replay " + " ".join(shlex.quote(a) for a in argv)))
    printer.out.flush()
    # The step prints straight to stdout, after what the demo printed so far; it follows
    # the demo's colour choice and never starts a pager of its own.
    extra = ["--no-pager", "--color", "always" if printer.out.color else "never"]
    try:
        cli.main(args=argv + extra, prog_name="routilux-replay", standalone_mode=False)
    except SystemExit:
        pass  # e.g. bisect exits 1 when a condition never holds; the demo goes on
    sys.stdout.flush()


def run_flow_into(directory: str | None) -> str:
    """Run the demo flow into ``directory`` (default: a new temp dir); return its path.

    Raises:
        DestinationError: ``directory`` already holds files (a demo never overwrites a job).
    """
    from .errors import DestinationError

    if directory is None:
        directory = os.path.join(tempfile.mkdtemp(prefix="routilux-demo-"), "job")
    if os.path.exists(directory) and os.listdir(directory):
        raise DestinationError(directory, "it already holds files; give a new or empty directory for the demo")
    run_flow(directory)
    return directory


def run_demo(directory: str | None, *, printer: Any, quiet: bool = False) -> str:
    """Run the flow into ``directory`` (default: a new temp dir), then show the commands.

    ``printer`` is the command's :class:`~replay_tools.cli_common.Printer`.
    """
    printer.out.disable_pager()  # the steps print to stdout themselves
    directory = run_flow_into(directory)
    if quiet:
        printer.line(directory)
        return directory
    from .source import open_job

    with open_job(directory) as job:
        job_id = job.job_id
    paused = _paused_version(directory)
    printer.line(f"Ran the example flow 'order-batch' as job {job_id}.")
    printer.line(f"Its durable log is in {directory}")
    for message in ENGINE_MESSAGES:  # the fetch routine fails once on purpose and is retried
        printer.line(f"The engine logged: {message}")
    _show(printer, "What is this job?", ["info", directory])
    _show(printer, "The whole story, event by event", ["events", directory])
    _show(printer, "Only the status changes and the pause", ["events", directory, "--kind", "status_set",
                                                             "--kind", "paused"])
    _show(printer, "Which event first set shared_data.limit to 0?", ["bisect", directory, "--where",
                                                                      "shared_data.limit == 0"])
    _show(printer, "When was the job paused, and when did that end?", ["bisect", directory, "--where",
                                                                       "status == paused", "--all"])
    _show(printer, "Who changed the limit, and when?", ["blame", directory, "shared_data.limit"])
    _show(printer, "What did the validate routine do?", ["events", directory, "--routine", "validate"])
    _show(printer, "The state while the job was paused", ["state", directory, "--at", paused])
    _show(printer, "What changed between the pause and the end?", ["diff", directory, paused, "head"])
    _show(printer, "Is the trail intact, and does it replay to the same state?", ["verify", directory])
    printer.line()
    printer.line("Next: export the trail with "
                 f"`routilux-replay export {shlex.quote(directory)} > trail.jsonl`, "
                 "or follow a running job with `routilux-replay tail DIR --follow`.")
    return directory


def _paused_version(directory: str) -> str:
    from .source import open_job

    with open_job(directory) as job:
        for rec in job.read():
            if rec.kind == "paused":
                return str(rec.seq)
        return "head"
