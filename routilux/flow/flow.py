"""Flow: routines wired by connections, and the engine that runs them against a JobState.

Behaviour follows ROUTILUX_API.md §4-§7, with the deliberate differences of DESIGN.md:

* pause, resume and cancel act on ONE job (other executions of the flow keep running);
  cancel drops that job's queued tasks and never deadlocks; resuming a cancelled job does
  nothing;
* completion is known exactly (per-job task counters, see :mod:`routilux._scheduler`), so
  ``JobState.wait_for_completion`` on an idle job returns at once;
* restored tasks name their routine by its id in the flow, so they are never dropped, and
  deferred events are emitted inside their own job;
* every task's lifecycle is recorded in the job: ``_task_queued`` (target routine id in the
  flow, slot, data, source routine and event) in the same atomic batch as the emit that
  queued it, ``_task_started``, then ``_task_finished`` or ``_task_failed``. Starts and
  successful ends do not cost an append each: they ride along with the job's next batch
  (the next emit, error, pause or cancel, or at the latest just before the job goes idle,
  so the log is complete when ``wait_for_completion`` returns); a task that starts and ends
  between two batches is recorded by its end alone (see :mod:`routilux._scheduler`). The
  entry routine's trigger call is a task too. A run killed mid-way therefore resumes from its log:
  ``flow.resume(JobState.open(path))`` in a new process runs again every task that was
  queued and not finished, and records ``resumed_after_interruption`` (under the pseudo
  routine ``_flow``) with the tasks it re-runs.

Delivery is **at-least-once**: a task that was running when the process died runs a second
time, and so may a task that had finished when its end was not yet in the log, so handlers
with side effects should be idempotent (or tolerate a repeat). One
refinement: a handler that pauses or cancels its own job is recorded as finished at that
call (waiters return as soon as the job is paused, and may close or save it before the
handler returns); what it emits afterwards is still queued and recorded.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import warnings
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import events as ev
from .._scheduler import FINISHED, Scheduler
from .._task import SlotActivationTask, TaskPriority, pending_task_id
from ..connection import Connection
from ..error_handler import ErrorHandler, ErrorStrategy
from ..execution_tracker import ExecutionTracker
from ..routine import Routine, _current_job_state, _history_value
from ..serializable import Serializable
from ..slot import Slot, error_info
from .serialization import FLOW_FIELDS, deserialize_flow, serialize_flow

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..event import Event
    from ..job_state import JobState

__all__ = ["Flow", "SlotActivationTask", "TaskPriority"]

logger = logging.getLogger(__name__)

#: Pseudo routine id under which the engine records its own history entries (like the
#: original's ``_cancellation`` routine-state key).
ENGINE_ROUTINE_ID = "_flow"
#: History event recorded when a job is resumed after its process died mid-run.
RESUMED_AFTER_INTERRUPTION = "resumed_after_interruption"
#: History event recorded by ``execute`` when the flow declares a ``version`` (issue 16):
#: the code version a job ran with, so a re-run with other code can say so.
FLOW_VERSION = "flow_version"

_STRATEGIES = ("sequential", "concurrent")


class Flow(Serializable):
    """A workflow: routines, the connections between them, and their execution.

    Args:
        flow_id: the flow's id (default: a new uuid4 string).
        execution_strategy: ``"sequential"`` (one task at a time, global FIFO order) or
            ``"concurrent"`` (up to ``max_workers`` handlers in parallel).
        max_workers: worker threads for the concurrent strategy (forced to 1 otherwise).
        execution_timeout: stored for compatibility; unused, as in the original.
        version: the version of the flow's code (any string, e.g. ``"2"``); when set,
            ``execute`` records it in the job (history entry ``flow_version`` of the pseudo
            routine ``_flow``) so tools that re-run a job can tell which code recorded it.
    """

    serializable_fields = FLOW_FIELDS

    def __init__(
        self, flow_id: str | None = None, execution_strategy: str = "sequential", max_workers: int = 5,
        execution_timeout: float | None = None, *, version: str | None = None,
    ) -> None:
        self.flow_id: str = flow_id if flow_id is not None else str(uuid.uuid4())
        self.version: str | None = version
        self.routines: dict[str, Routine] = {}
        self.connections: list[Connection] = []
        self.error_handler: ErrorHandler | None = None
        self.execution_tracker: ExecutionTracker = ExecutionTracker(self.flow_id)
        self.execution_strategy = execution_strategy
        self.max_workers = max_workers if execution_strategy == "concurrent" else 1
        self.execution_timeout = execution_timeout if execution_timeout is not None else 300.0
        self._paused = False
        self._ids: dict[int, str] = {}  # id(routine) -> flow routine id
        self._conn_index: dict[tuple[int, int], Connection] = {}
        self._seen_jobs: set[str] = set()  # job ids run by this Flow object in this process
        # Tasks whose end a pause already recorded (a handler pausing its own job): their
        # end is not recorded a second time when the handler returns.
        self._ended_early: set[str] = set()
        self._sched_lock = threading.Lock()
        self._scheduler: Scheduler | None = None
        self._retired: Scheduler | None = None  # the scheduler shutdown() stopped last

    def __repr__(self) -> str:
        return f"Flow[{self.flow_id}]"

    # -- structure ------------------------------------------------------------------------------
    def add_routine(self, routine: Routine, routine_id: str | None = None) -> str:
        """Add ``routine`` under ``routine_id`` (default: its ``_id``); return the id.

        Raises:
            ValueError: the id is already used in this flow.
        """
        rid = routine_id if routine_id is not None else routine._id
        if rid in self.routines:
            msg = f"routine id {rid!r} is already used in flow {self.flow_id!r}"
            raise ValueError(msg)
        self.routines[rid] = routine
        self._ids[id(routine)] = rid
        return rid

    def _get_routine_id(self, routine: Any) -> str | None:
        """Return ``routine``'s id in this flow, or None (0.10's helper, used by user code)."""
        return self._routine_id_of(routine)

    def _routine_id_of(self, routine: Any) -> str | None:
        rid = self._ids.get(id(routine))
        if rid is not None and self.routines.get(rid) is routine:
            return rid
        for key, value in self.routines.items():  # routines dict edited directly by user code
            if value is routine:
                self._ids[id(routine)] = key
                return key
        return None

    def _known_routines(self) -> str:
        return ", ".join(repr(r) for r in self.routines) or "(none)"

    def connect(
        self, source_routine_id: str, source_event: str, target_routine_id: str, target_slot: str,
        param_mapping: dict[str, str] | None = None,
    ) -> Connection:
        """Connect an event of one routine to a slot of another (or the same) routine.

        Raises:
            ValueError: a routine, event or slot does not exist; the message lists what does.
        """
        src = self.routines.get(source_routine_id)
        if src is None:
            msg = f"source routine {source_routine_id!r} is not in flow {self.flow_id!r}; routines: {self._known_routines()}"
            raise ValueError(msg)
        dst = self.routines.get(target_routine_id)
        if dst is None:
            msg = f"target routine {target_routine_id!r} is not in flow {self.flow_id!r}; routines: {self._known_routines()}"
            raise ValueError(msg)
        event = src.get_event(source_event)
        if event is None:
            msg = (f"event {source_event!r} is not defined on routine {source_routine_id!r}; "
                   f"events: {sorted(src._events)}")
            raise ValueError(msg)
        slot = dst.get_slot(target_slot)
        if slot is None:
            msg = (f"slot {target_slot!r} is not defined on routine {target_routine_id!r}; "
                   f"slots: {sorted(dst._slots)}")
            raise ValueError(msg)
        conn = Connection(event, slot, param_mapping)
        self.connections.append(conn)
        self._conn_index[(id(event), id(slot))] = conn
        return conn

    def _connection_for(self, event: Event, slot: Slot) -> Connection | None:
        conn = self._conn_index.get((id(event), id(slot)))
        if conn is not None and conn.source_event is event and conn.target_slot is slot:
            return conn
        return None

    def set_error_handler(self, error_handler: ErrorHandler | None) -> None:
        """Set the flow-level error handler (used when a routine has none)."""
        self.error_handler = error_handler

    def set_execution_strategy(self, strategy: str, max_workers: int | None = None) -> None:
        """Choose ``"sequential"`` (1 worker) or ``"concurrent"`` (``max_workers``, default 5).

        Raises:
            ValueError: any other strategy.
        """
        if strategy not in _STRATEGIES:
            msg = f"Invalid execution strategy {strategy!r}: use 'sequential' or 'concurrent'"
            raise ValueError(msg)
        self.execution_strategy = strategy
        self.max_workers = 1 if strategy == "sequential" else (max_workers if max_workers is not None else 5)
        if self._scheduler is not None:
            self._scheduler.max_workers = max(1, self.max_workers)

    def get_routine_retry_count(self, routine_id: str) -> int | None:
        """Return the retry count of the routine-level error handler (None if no routine/handler)."""
        routine = self.routines.get(routine_id)
        if routine is None or routine._error_handler is None:
            return None
        return routine._error_handler.retry_count

    # -- scheduling -----------------------------------------------------------------------------
    @property
    def _sched(self) -> Scheduler:
        sched = self._scheduler
        if sched is None:
            retired = self._retired
            if retired is not None and retired.current_task_id() is not None:
                # A handler still running on workers that shutdown() stopped: what it emits
                # is abandoned with the rest of the queue (recorded as queued, so a resume of
                # a durable job runs it) instead of starting new workers behind shutdown's back.
                return retired
            with self._sched_lock:
                if self._scheduler is None:
                    self._scheduler = Scheduler(self._run_task, self._flush_marks, max(1, self.max_workers))
                sched = self._scheduler
        return sched

    def _job_activity(self, job_state: Any) -> tuple[int, int]:
        """``(queued, running)`` task counts of ``job_state`` in this flow (both 0: idle)."""
        sched = self._scheduler
        if sched is None:
            return 0, 0
        return sched.activity(job_state)

    def _emit_event(self, event: Event, data: dict[str, Any], job_state: Any,
                    history: tuple[str, str, dict[str, Any]] | None) -> None:
        """Queue one task per slot connected to ``event``; record them (and ``history``) atomically."""
        sched = self._sched
        tasks = [
            SlotActivationTask(slot, dict(data), self._connection_for(event, slot), job_state=job_state,
                               task_id=sched.new_task_id(), routine_id=self._routine_id_of(slot.routine))
            for slot in event.connected_slots
        ]
        if job_state is not None:
            if job_state.status == "cancelled":
                return
            # One batch: a crash never leaves an emit recorded without its tasks (or the
            # reverse), and data that cannot be encoded raises here with nothing queued.
            # The history record already holds the recordable form of the data.
            recorded = history[2] if history is not None else _recordable(data)
            source_id = self._routine_id_of(event.routine) if event.routine is not None and tasks else None
            with job_state._transaction():
                self._record_marks(job_state, sched)
                if history is not None:
                    job_state.record_execution(*history)
                for task in tasks:
                    record = task.to_record(self, source_id)
                    record["data"] = recorded
                    job_state._task_queued(task.task_id, record)
        if tasks:
            sched.submit(tasks)

    def _enqueue_task(self, task: SlotActivationTask) -> None:
        """Queue one task built by hand (0.10's ``Flow._enqueue_task``), recorded in its job.

        The task gets an id and its routine's flow id if it has none; a cancelled job's task is
        dropped, a paused job's is held.
        """
        sched = self._sched
        if not task.task_id:
            task.task_id = sched.new_task_id()
        if task.routine_id is None and task.slot is not None:
            task.routine_id = self._routine_id_of(task.slot.routine)
        job = task.job_state
        if job is not None:
            if job.status == "cancelled":
                return
            record = task.to_record(self)
            record["data"] = _recordable(task.data)
            with job._transaction():
                self._record_marks(job, sched)
                job._task_queued(task.task_id, record)
        sched.submit([task])

    def _end_unrecorded(self, task_id: str) -> bool:
        """True if the end of ``task_id`` is still to be recorded (False: a pause recorded it)."""
        if task_id in self._ended_early:
            self._ended_early.discard(task_id)
            return False
        return True

    def _record_marks(self, job: Any, sched: Scheduler | None = None) -> None:
        """Record ``job``'s pending task starts/ends; call inside ``job._transaction()``.

        Every batch the engine appends for a job starts with them (see
        :mod:`routilux._scheduler`): task lifecycle events ride along with the records that
        have to be appended anyway instead of costing an append each.
        """
        sched = sched if sched is not None else self._scheduler
        if sched is None:
            return
        for tid, mark in sched.take_marks(job):
            if mark is FINISHED:
                job._task_finished(tid)
            else:
                job._task_started(tid)

    def _flush_marks(self, sched: Scheduler, job: Any) -> None:
        """Record ``job``'s pending marks as one batch (the scheduler's flusher)."""
        with job._transaction():
            self._record_marks(job, sched)

    def _run_task(self, task: SlotActivationTask) -> str | None:
        """Run one task in a worker thread (the scheduler's runner).

        Returns the task's id when it succeeded and its end is still to be recorded (the
        scheduler adds it as a FINISHED mark); None when the end was recorded here (a
        failure) or by a pause/cancel of its own handler, or the task was skipped.
        """
        job = task.job_state
        slot = task.slot
        if job is None:
            if slot is not None:
                data = task.connection._apply_mapping(task.data) if task.connection else task.data
                slot._deliver(data, None)
            return None
        tid = task.task_id
        if job.status == "cancelled":
            return None
        if task.kind == "entry":
            self._run_entry(task)
            return None
        if slot is None:
            msg = f"task {tid} targets slot {task.routine_id!r} which does not exist in flow {self.flow_id!r}"
            with job._transaction():
                self._record_marks(job)
                job._task_failed(tid, {"error": msg, "error_type": "ValueError"})
            return None
        data = task.connection._apply_mapping(task.data) if task.connection is not None else task.data
        error = slot._deliver(data, job)
        if error is None:
            return tid if self._end_unrecorded(tid) else None
        # The handler error, its consequences and the task's end are one batch.
        with job._transaction():
            self._record_marks(job)
            slot._record_error(error, job, self)
            if self._end_unrecorded(tid):
                job._task_failed(tid, error_info(error, slot.name))
        return None

    # -- execution ------------------------------------------------------------------------------
    def _check_job(self, job_state: Any) -> None:
        if job_state.flow_id != self.flow_id:
            msg = (f"job flow_id {job_state.flow_id!r} does not match this flow's id {self.flow_id!r}: "
                   "use the flow that created the job")
            raise ValueError(msg)

    def execute(
        self, entry_routine_id: str, entry_params: dict[str, Any] | None = None,
        execution_strategy: str | None = None, timeout: float | None = None,
        job_state: JobState | None = None,
    ) -> JobState:
        """Run the entry routine's ``trigger`` handler now; downstream tasks run in the background.

        Returns the job (status ``running``, or ``completed``/``failed`` when the entry failed;
        see ROUTILUX_API.md §5-§6). ``execution_strategy`` and ``timeout`` are accepted and
        ignored, as in the original. Pass ``job_state`` (e.g. ``JobState.open(path,
        flow_id=flow.flow_id)``) to run against an existing, possibly durable, job.

        Raises:
            ValueError: ``entry_routine_id`` is not in the flow (the message lists the routines),
                or ``job_state`` belongs to another flow.
        """
        routine = self.routines.get(entry_routine_id)
        if routine is None:
            msg = f"entry routine {entry_routine_id!r} is not in flow {self.flow_id!r}; routines: {self._known_routines()}"
            raise ValueError(msg)
        if job_state is None:
            from ..job_state import JobState

            job = JobState(self.flow_id)
        else:
            job = job_state
            self._check_job(job)
        self.execution_tracker = ExecutionTracker(self.flow_id)
        for r in self.routines.values():
            r._current_flow = self
        self._seen_jobs.add(job.job_id)
        sched = self._sched
        params = entry_params if entry_params is not None else {}
        task = SlotActivationTask(routine.get_slot("trigger"), params, job_state=job, task_id=sched.new_task_id(),
                                  routine_id=entry_routine_id, kind="entry")
        # Count the entry call as running work of the job before it turns "running", so a
        # concurrent wait_for_completion never sees a running job with nothing to do.
        previous = sched.begin_external(job, task.task_id)
        try:
            with job._transaction():
                self._record_marks(job, sched)
                job.status = "running"
                job.current_routine_id = entry_routine_id
                job.record_execution(entry_routine_id, "start", entry_params)
                if self.version is not None:
                    job.record_execution(ENGINE_ROUTINE_ID, FLOW_VERSION, {"version": self.version})
                job._task_queued(task.task_id, task.to_record(self))
                job._task_started(task.task_id)
            self.execution_tracker.record_routine_start(entry_routine_id, entry_params)
            self._run_entry(task, started=True)
        finally:
            sched.end_external(job, previous, task.task_id)
        return job

    def _run_entry(self, task: SlotActivationTask, started: bool = False) -> None:
        """Call the entry trigger and apply the error strategies (ROUTILUX_API.md §6)."""
        job = task.job_state
        rid = task.routine_id or ""
        routine = self.routines[rid]
        tid = task.task_id
        params = dict(task.data or {})
        if not started:  # run by a worker (resume): its STARTED mark is pending
            with job._transaction():
                self._record_marks(job)
        token = _current_job_state.set(job)
        try:
            self._entry_attempts(job, routine, rid, tid, params)
        finally:
            _current_job_state.reset(token)

    def _entry_attempts(self, job: Any, routine: Routine, rid: str, tid: str, params: dict[str, Any]) -> None:
        started = time.monotonic()

        def call() -> None:
            slot = routine.get_slot("trigger")
            if slot is None:
                msg = (f"entry routine {rid!r} has no 'trigger' slot (slots: {sorted(routine._slots)}); "
                       "define one with define_slot('trigger', handler)")
                raise ValueError(msg)
            slot.call_handler(params, propagate_exceptions=True)

        try:
            call()
        except Exception as exc:
            error: Exception = exc
        else:
            with job._transaction():
                self._record_marks(job)
                job.update_routine_state(rid, {"status": "completed"})
                if self._end_unrecorded(tid):
                    job._task_finished(tid)
            return
        handler = routine.get_error_handler() or self.error_handler
        if handler is None:
            self._entry_failed(job, rid, tid, error)
            return
        if handler.strategy is ErrorStrategy.RETRY and routine.get_slot("trigger") is None:
            # No retry can succeed. 0.10 slept through the first back-off before raising;
            # we record the failure and raise at once.
            self._entry_failed(job, rid, tid, error)
            raise error
        if handler.strategy is ErrorStrategy.RETRY:
            # Same arithmetic as the original: total calls = 1 + max_retries; the handler's
            # retry_count persists across executions until reset().
            if handler.handle_error(error, routine, rid, self, job):
                for attempt in range(handler.max_retries):
                    try:
                        call()
                    except Exception as exc:
                        error = exc
                        # Every failure goes through the handler, the last one too (it logs
                        # "retries exceeded" as in 0.10; it no longer sleeps by then).
                        if not handler.handle_error(error, routine, rid, self, job) or attempt >= handler.max_retries - 1:
                            break
                        continue
                    elapsed = time.monotonic() - started
                    with job._transaction():
                        self._record_marks(job)
                        job.update_routine_state(rid, {"status": "completed", "execution_time": elapsed,
                                                       "retry_count": handler.retry_count})
                        job.record_execution(rid, "completed", {"execution_time": elapsed, "retried": True})
                        job.status = "completed"
                        if self._end_unrecorded(tid):
                            job._task_finished(tid)
                    self.execution_tracker.record_routine_end(rid, "completed")
                    _sync(job)
                    return
            self._entry_failed(job, rid, tid, error)
            return
        with job._transaction():
            self._record_marks(job)
            if not handler.handle_error(error, routine, rid, self, job):
                ok = False
            else:
                ok = True
                if handler.strategy is ErrorStrategy.CONTINUE:
                    job.update_routine_state(rid, {"status": "error_continued", "error": str(error)})
                job.status = "completed"
                if self._end_unrecorded(tid):
                    job._task_finished(tid)
        if not ok:
            self._entry_failed(job, rid, tid, error)
            return
        _sync(job)

    def _entry_failed(self, job: Any, rid: str, tid: str, error: Exception) -> None:
        logger.error("Error executing flow: %s", error, exc_info=error)  # 0.10's log line
        info = error_info(error)
        with job._transaction():
            self._record_marks(job)
            job.status = "failed"
            job.update_routine_state(rid, {"status": "failed", "error": str(error),
                                           "error_time": datetime.now().isoformat()})
            job.record_execution(rid, "error", info)
            if self._end_unrecorded(tid):
                job._task_failed(tid, info)
        self.execution_tracker.record_routine_end(rid, "failed", error=str(error))
        _sync(job)

    # -- pause / resume / cancel (one job) --------------------------------------------------------
    def pause(self, job_state: JobState, reason: str = "", checkpoint: dict[str, Any] | None = None) -> None:
        """Pause ``job_state``: hold its tasks, wait up to 5 s for its running ones, record the pause.

        Other jobs of this flow keep running. The held tasks are written to
        ``job_state.pending_tasks`` so a saved job resumes them after ``load()``.

        Raises:
            ValueError: the job belongs to another flow ("does not match").
        """
        self._check_job(job_state)
        sched = self._sched
        own = sched.current_task_id() if sched.current_job() is job_state else None
        held, active, queue_size = sched.pause(job_state)
        pending = [t.to_dict(self) for t in held]
        with job_state._transaction():
            self._record_marks(job_state, sched)
            job_state._add_pause_point({
                "timestamp": datetime.now().isoformat(), "reason": reason, "checkpoint": checkpoint,
                "pending_tasks_count": len(pending), "active_tasks_count": active, "queue_size": queue_size,
            })
            job_state.pending_tasks = pending
            job_state._set_paused(reason=reason, checkpoint=checkpoint)
            if own is not None and own not in self._ended_early:
                # A handler pausing its own job: its task is recorded as finished with the
                # pause, because waiters return as soon as the job is paused and may close
                # or save the job before the handler returns. Otherwise a resume would run
                # the pausing handler again. (What it emits after pause() is still held.)
                job_state._task_finished(own)
                self._ended_early.add(own)
        _sync(job_state)

    def resume(self, job_state: JobState) -> JobState:
        """Resume ``job_state`` (paused, or interrupted by a crash) and return the same object.

        Runs, in this order: the job's deferred events (then cleared), then every task that is
        recorded as queued-but-not-finished and not already queued here: the tasks held by
        :meth:`pause`, ``pending_tasks`` of a loaded job, and the open tasks of a job whose
        process died (those are recorded in the history as ``resumed_after_interruption``).
        A cancelled job is returned unchanged.

        Raises:
            ValueError: the job belongs to another flow ("does not match"), or its
                ``current_routine_id`` is not in this flow ("not found in flow").
        """
        self._check_job(job_state)
        job = job_state
        current = job.current_routine_id
        if current is not None and current not in self.routines:
            msg = (f"current routine {current!r} of job {job.job_id!r} not found in flow {self.flow_id!r}; "
                   f"routines: {self._known_routines()}")
            raise ValueError(msg)
        for r in self.routines.values():
            r._current_flow = self
        status = job.status
        if status == "cancelled":
            return job
        sched = self._sched
        # Count the resume itself as running work of the job: between turning the job
        # "running" and queueing its tasks, a waiter must not see an idle running job.
        previous = sched.begin_external(job)
        try:
            self._resume(job, status)
        finally:
            sched.end_external(job, previous)
        return job

    def _resume(self, job: Any, status: str) -> None:
        sched = self._sched
        # A job this Flow object has run in this process is "live": the scheduler holds all
        # of its tasks (queued, held by pause, running), so the log is not consulted. Reading
        # the log's open tasks while handlers of the job still run could re-queue a task that
        # is being emitted or finished at that moment.
        live = job.job_id in self._seen_jobs
        self._seen_jobs.add(job.job_id)
        known = sched.task_ids(job)
        open_tasks = job.open_tasks if not live else {}
        restored, fresh = self._pending_to_rerun(job, known, open_tasks) if not live else ([], [])
        for tid, info in open_tasks.items():
            if tid not in known:
                restored.append(self._task_from_dict(info["task"], job, tid))
                known.add(tid)
        interrupted = not live and status != "paused" and (bool(restored) or status == "running")
        with job._transaction():
            self._record_marks(job, sched)
            if status == "paused":
                job._set_running()
            for task in fresh:
                job._task_queued(task.task_id, task.to_record(self))
            if interrupted:
                job.record_execution(ENGINE_ROUTINE_ID, RESUMED_AFTER_INTERRUPTION, {
                    "previous_status": status,
                    "rerun_tasks": [
                        {"task_id": t.task_id, "routine_id": t.routine_id, "slot": t.slot.name if t.slot else None,
                         "state": open_tasks[t.task_id]["state"] if t.task_id in open_tasks else "queued"}
                        for t in restored
                    ],
                })
        deferred = list(job.deferred_events)
        # The deferred events' tasks run first (as in the original), before the tasks held
        # by the pause, which they join in the scheduler's held list.
        held_before = sched.held_count(job) if deferred else 0
        if deferred:
            for entry in deferred:
                routine = self.routines.get(entry.get("routine_id"))
                name = entry.get("event_name")
                if routine is None or routine.get_event(name) is None:
                    warnings.warn(
                        f"deferred event {name!r} of routine {entry.get('routine_id')!r} cannot be emitted: "
                        f"no such routine/event in flow {self.flow_id!r}", stacklevel=4)
                    continue
                routine.emit(name, flow=self, job_state=job, **dict(entry.get("data") or {}))
            job.deferred_events = []
        sched.unpause(job, [*restored, *fresh], first_from=held_before)

    def _pending_to_rerun(self, job: Any, known: set[str],
                          open_tasks: Any) -> tuple[list[SlotActivationTask], list[SlotActivationTask]]:
        """The tasks of ``job.pending_tasks`` to run on resume: ``(restored, fresh)``.

        ``restored``: still open in the job's log. ``fresh``: never queued in this log (they
        came with ``deserialize()``, from our JSON or 0.10's); they run under their own id so
        that a later resume from the log knows them and, once finished, does not run them
        again. A task that was queued here and is no longer open has finished: not run again.
        Ids found are added to ``known``.
        """
        restored: list[SlotActivationTask] = []
        fresh: list[SlotActivationTask] = []
        foreign: list[tuple[str, Any]] = []
        for index, entry in enumerate(job.pending_tasks):
            tid = pending_task_id(index, entry)
            if tid in known:
                continue
            if tid in open_tasks:
                restored.append(self._task_from_dict(entry, job, tid))
                known.add(tid)
            else:
                foreign.append((tid, entry))
        if foreign:
            queued = {e.data.get("task_id") for e in job.events(kind=ev.TASK_QUEUED)}
            for tid, entry in foreign:
                if tid not in queued:
                    fresh.append(self._task_from_dict(entry, job, tid))
                    known.add(tid)
        return restored, fresh

    def _routine_key(self, rid: Any) -> Any:
        """``rid`` if it is a routine id of this flow, else the id of the routine whose ``_id`` it is.

        routilux 0.10 names routines in ``pending_tasks`` by their ``_id`` (``hex(id(...))``,
        kept by the flow dict), which is how its own resume lost them (ROUTILUX_API.md §7 (a)).
        """
        if rid is None or rid in self.routines:
            return rid
        for key, routine in self.routines.items():
            if routine._id == rid:
                return key
        return rid

    def _task_from_dict(self, entry: Any, job: Any, task_id: str) -> SlotActivationTask:
        """Rebuild a task from its record (:meth:`SlotActivationTask.to_record` or ``to_dict`` shape)."""
        rid = self._routine_key(entry.get("routine_id", entry.get("slot_routine_id")))
        routine = self.routines.get(rid) if rid is not None else None
        slot_name = entry.get("slot", entry.get("slot_name"))
        slot = routine.get_slot(slot_name) if routine is not None else None
        source = entry.get("source") or [entry.get("connection_source_routine_id"),
                                         entry.get("connection_source_event_name")]
        conn = None
        source_id = self._routine_key(source[0])
        src = self.routines.get(source_id) if source_id is not None else None
        if src is not None and slot is not None:
            event = src.get_event(source[1])
            if event is not None:
                conn = self._connection_for(event, slot)
        kind = entry.get("kind", "slot")
        if kind == "entry" and routine is not None:
            slot = routine.get_slot("trigger")
        elif slot is None:
            warnings.warn(
                f"task {task_id} targets {rid!r}.{slot_name!r}, which is not in flow {self.flow_id!r} "
                f"(routines: {self._known_routines()}); it will be recorded as failed", stacklevel=3)
        created = entry.get("created_at")
        try:
            created_at = datetime.fromisoformat(created) if isinstance(created, str) else None
        except ValueError:
            created_at = None
        try:
            priority = TaskPriority(entry.get("priority", 2))
        except ValueError:
            priority = TaskPriority.NORMAL
        return SlotActivationTask(
            slot, _thaw(entry.get("data") or {}), conn, priority=priority, job_state=job,
            retry_count=entry.get("retry_count", 0), max_retries=entry.get("max_retries", 0),
            created_at=created_at, task_id=task_id, routine_id=rid,
            kind=kind if routine is not None else "slot",
        )

    def cancel(self, job_state: JobState, reason: str = "") -> None:
        """Cancel ``job_state``: status ``cancelled``, its queued tasks dropped (never deadlocks).

        A handler already running finishes; what it emits afterwards is not queued.

        Raises:
            ValueError: the job belongs to another flow ("does not match").
        """
        self._check_job(job_state)
        sched = self._scheduler
        own = sched.current_task_id() if sched is not None and sched.current_job() is job_state else None
        with job_state._transaction():
            self._record_marks(job_state, sched)
            job_state._set_cancelled(reason=reason)
            if own is not None and own not in self._ended_early:
                # As in pause(): waiters return at once, so the cancelling task ends here.
                job_state._task_finished(own)
                self._ended_early.add(own)
        if sched is not None:
            sched.cancel(job_state)
        _sync(job_state)

    # -- waiting and shutdown -----------------------------------------------------------------------
    def wait_for_completion(self, timeout: float | None = None, job_state: JobState | None = None) -> bool:
        """Deprecated: use ``JobState.wait_for_completion(flow, job_state)``.

        With ``job_state`` it delegates to that; without, it waits until no task of any job of
        this flow is queued or running.
        """
        warnings.warn("Flow.wait_for_completion is deprecated: use JobState.wait_for_completion(flow, job_state)",
                      DeprecationWarning, stacklevel=2)
        if job_state is not None:
            from ..job_state import JobState

            return JobState.wait_for_completion(self, job_state, timeout=timeout)
        if self._scheduler is None:
            return True
        return self._scheduler.wait_all_idle(timeout)

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop the workers; queued tasks are abandoned.

        Abandoned tasks stay open in their jobs' logs: a later ``resume(job)`` runs them again.
        """
        with self._sched_lock:
            sched = self._scheduler
            if sched is not None:
                self._retired = sched  # before _scheduler is cleared: see _sched
            self._scheduler = None
        if sched is not None:
            sched.shutdown(wait=wait, timeout=timeout)
        # No job is live any more: resume() consults the logs for the abandoned tasks.
        self._seen_jobs.clear()

    # -- serialization ------------------------------------------------------------------------------
    def serialize(self, max_depth: int = 100, _current_depth: int = 0) -> dict[str, Any]:
        """Return the flow's structure in routilux 0.10's shape (never a JobState).

        See :mod:`routilux.flow.serialization`. ``max_depth`` is serilux 0.5's nesting guard.

        Raises:
            TypeError: a routine's class needs constructor arguments (it could not be rebuilt).
        """
        return serialize_flow(self, max_depth, _current_depth)

    def deserialize(self, data: dict[str, Any], strict: bool = False, registry: Any = None) -> None:
        """Rebuild the structure from a flow dict made by this version or by routilux 0.10.

        Routine classes are imported by ``_class`` or found by name (serilux's registry, then
        the only ``Routine`` subclass of that name). The flow is unchanged if anything fails.

        Raises:
            ValueError: a routine class cannot be found, a connection cannot be linked, or (with
                ``strict``) a dict has unknown keys.
        """
        deserialize_flow(self, data, strict=strict, registry=registry)


def _recordable(data: dict[str, Any]) -> dict[str, Any]:
    """Event data as recorded in the log: framework objects (routines, flows, jobs...) by ``str()``.

    The same rule as the original's emit history record; the live task still delivers the
    objects themselves, only a task re-run from the log after a crash sees the strings.
    """
    return {k: _history_value(v) for k, v in data.items()}


def _thaw(value: Any) -> Any:
    """Plain (mutable) copies of the read-only dicts/lists a JobState hands out."""
    if isinstance(value, dict):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_thaw(v) for v in value]
    return value


def _sync(job: Any) -> None:
    # A terminal or parked status is a durability point: flush the job's log to disk now
    # rather than at the next periodic batch flush.
    sync = getattr(job, "sync", None)
    if sync is not None:
        sync()
