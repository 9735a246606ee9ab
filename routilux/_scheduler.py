"""The task scheduler behind a Flow: one FIFO queue, a few worker threads, per-job counters.

The original runs a polling event-loop thread plus a ThreadPoolExecutor per flow. This is
leaner: worker threads take tasks straight from one ``deque`` under one lock and exit after
0.1 s without work. With one worker the order is the global FIFO order (breadth-first), as in
the original's sequential strategy.

Per job it keeps the number of queued and running tasks (``activity``), so a job's completion
is known exactly and waiters are woken the moment it goes idle, and a per-job pause: tasks of a
paused job are held aside instead of being queued, while other jobs of the flow keep running.

Waking workers. A task queued outside any handler wakes an idle worker at once. A task
queued by a running handler does not: the handler's own worker takes it when the handler
returns (so a chain runs on one thread, without a thread hand-off per step), and idle workers
take the rest when the handler returns, when 16 tasks are waiting, or at their next look at
the queue (every 5 ms), so a handler that blocks on work it queued is never starved.

Task lifecycle marks. A task's start and successful end are not appended to the job one by
one (that was two log appends per task, the main cost of a durable run). The scheduler keeps
them per job as pending *marks* (``STARTED``/``FINISHED``, in order), and the flow records
them in the job's next atomic batch: with the next emit of any handler of the job, with a
handler error, a pause or cancel, or, at the latest, just before the job goes idle (before
its waiters can see it idle, so the log is complete when ``wait_for_completion`` returns). A
task that starts and ends between two batches is recorded by its end alone. A crash loses
only unrecorded marks: those tasks are still open in the log and run again on resume, which
is the at-least-once guarantee anyway; a task's ``queued`` record is never deferred (it is in
the batch of the emit that queued it, before the task can run).
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Scheduler"]

logger = logging.getLogger("routilux")

_IDLE_EXIT = 0.1  # seconds a worker waits for work before exiting (restarted on demand)
#: An idle worker looks at the queue at least this often (seconds). Tasks queued by a running
#: handler do not wake idle workers one by one (see Scheduler.submit): this bounds how long
#: such a task can wait for a free worker while its handler is still running.
_POLL = 0.005
#: A running handler that has queued this many tasks wakes idle workers at once.
_WAKE_BATCH = 16

#: Task lifecycle marks waiting to be recorded (see the module docstring).
STARTED = "started"
FINISHED = "finished"
_FLUSH, _IDLE = 1, 2  # outcomes of Scheduler._release_or_flush


# -- finishing queued work at interpreter exit ----------------------------------------------------
# Workers are daemon threads (an idle flow must never keep a process alive), so without help
# the interpreter would kill them at exit and drop queued work. routilux 0.10 ran tasks in a
# ThreadPoolExecutor, whose threads Python joins at exit, so a script that calls execute()
# and returns without waiting still ran them. We do the same, more thoroughly: before exit,
# wait until no scheduler has queued or running work (tasks emitted during that wait run too;
# 0.10 dropped those). Tasks held by a pause stay held. A durable job killed during the wait
# keeps its unfinished tasks open in its log, and resume() runs them.
_LIVE: weakref.WeakSet[Scheduler] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()
_exit_hook_installed = False


def _finish_at_exit() -> None:
    """Wait until no live scheduler has queued or running work (called once, at exit).

    Ctrl-C stops the wait (a flow that never goes idle would otherwise keep the process alive).
    """
    try:
        while True:
            with _LIVE_LOCK:
                schedulers = list(_LIVE)
            if all(s.wait_all_idle(0) for s in schedulers):
                return
            for sched in schedulers:
                sched.wait_all_idle()
    except KeyboardInterrupt:
        left = sum(s.queue_size() + s.active_count() for s in list(_LIVE))
        logger.warning("interrupted while finishing queued work at exit: %d task(s) not run "
                       "(a durable job keeps them in its log for resume)", left)


def _watch(sched: Scheduler) -> None:
    """Finish ``sched``'s work at interpreter exit (installs the exit hook once)."""
    global _exit_hook_installed
    with _LIVE_LOCK:
        _LIVE.add(sched)
        if _exit_hook_installed:
            return
        _exit_hook_installed = True
    # threading's exit hooks run before the interpreter stops threads (and before atexit
    # handlers, e.g. those that close logs); concurrent.futures uses the same hook.
    register = getattr(threading, "_register_atexit", atexit.register)
    try:
        register(_finish_at_exit)
    except RuntimeError:  # the interpreter is already shutting down: nothing to wait for
        pass


def _unwatch(sched: Scheduler) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(sched)


class _JobEntry:
    """Bookkeeping for one job (or for tasks without a job, under key 0)."""

    __slots__ = ("job", "queued", "active", "paused", "held", "running", "marks")

    def __init__(self, job: Any) -> None:
        self.job = job
        self.queued = 0
        self.active = 0
        self.paused = False
        self.held: list[Any] = []
        self.running: set[str] = set()
        # task id -> STARTED / FINISHED, not yet recorded in the job (insertion order is
        # the order they happened in; a FINISHED replaces its task's STARTED in place).
        self.marks: dict[str, str] = {}


class Scheduler:
    """Runs tasks with at most ``max_workers`` threads; see the module docstring."""

    def __init__(self, runner: Callable[[Any], str | None], flusher: Callable[[Scheduler, Any], None],
                 max_workers: int = 1) -> None:
        # runner(task) runs a task and returns its id if it succeeded and its end is still
        # to be recorded (a FINISHED mark is then added), else None (it recorded the end
        # itself, e.g. a failure, or skipped the task). flusher(scheduler, job) records the
        # job's marks: it opens the job's transaction and calls take_marks(job) inside.
        self._runner = runner
        self._flusher = flusher
        self.max_workers = max(1, int(max_workers))
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # workers wait here for tasks
        self._changed = threading.Condition(self._lock)  # pause/shutdown wait here for progress
        self._queue: deque[Any] = deque()
        self._jobs: dict[int, _JobEntry] = {}
        self._threads = 0
        self._idle = 0
        self._signalled = 0  # idle workers notified that have not woken up yet
        self._waiters = 0
        self._generation = 0  # bumped by shutdown: older workers exit
        self._closed = False  # set by shutdown: tasks submitted later are abandoned
        self._tls = threading.local()
        # Task ids must be unique across processes that continue one durable job: a random
        # prefix per scheduler plus a counter is unique and far cheaper than uuid4 per task.
        self._prefix = os.urandom(6).hex()
        self._counter = itertools.count(1)
        _watch(self)

    # -- ids and introspection ------------------------------------------------------------------
    def new_task_id(self) -> str:
        """Return a task id unique across processes."""
        return f"{self._prefix}-{next(self._counter)}"

    def current_job(self) -> Any:
        """The job whose task the calling thread is running, or None."""
        return getattr(self._tls, "job", None)

    def current_task_id(self) -> str | None:
        """The id of the task the calling thread is running, or None."""
        return getattr(self._tls, "task_id", None)

    def activity(self, job: Any) -> tuple[int, int]:
        """Return ``(queued, running)`` task counts of ``job``."""
        entry = self._jobs.get(id(job))
        if entry is None or entry.job is not job:
            return 0, 0
        return entry.queued, entry.active

    def task_ids(self, job: Any) -> set[str]:
        """Ids of the tasks of ``job`` that are queued, held or running here."""
        with self._lock:
            ids = {t.task_id for t in self._queue if t.job_state is job}
            entry = self._jobs.get(id(job))
            if entry is not None and entry.job is job:
                ids.update(t.task_id for t in entry.held)
                ids.update(entry.running)
        return ids

    def _entry(self, job: Any) -> _JobEntry:
        key = id(job) if job is not None else 0
        entry = self._jobs.get(key)
        if entry is None or entry.job is not job:
            entry = self._jobs[key] = _JobEntry(job)
        return entry

    def _maybe_forget(self, key: int, entry: _JobEntry) -> bool:
        """Drop an idle, unpaused entry; return True if the job just became idle."""
        if entry.queued == 0 and entry.active == 0:
            if not entry.paused and not entry.held and not entry.marks:
                self._jobs.pop(key, None)
            return True
        return False

    # -- submitting and running ---------------------------------------------------------------
    def submit(self, tasks: Iterable[Any]) -> None:
        """Queue ``tasks`` (tasks of a paused job are held until it is resumed).

        After :meth:`shutdown` they are abandoned, like the tasks that were queued then.
        """
        with self._lock:
            if self._closed:
                return
            added = 0
            for task in tasks:
                entry = self._entry(task.job_state)
                if entry.paused:
                    entry.held.append(task)
                    continue
                entry.queued += 1
                self._queue.append(task)
                added += 1
            if added:
                # A task queued by a running handler (a worker's or the entry's) does not
                # wake an idle worker: waking one per task made threads hand the GIL (and
                # the job's lock) back and forth on every emit, which cost more than the
                # tasks themselves. The handler's own worker takes the task when the
                # handler returns; the others find it when the handler returns (see
                # _handler_done), when the backlog reaches _WAKE_BATCH, or at their next
                # poll (_POLL), so a handler that blocks never starves its tasks. Workers
                # that do not exist yet are started at once, as before.
                if not (self._idle and getattr(self._tls, "depth", 0) and len(self._queue) < _WAKE_BATCH):
                    self._wake(added)

    def _wake(self, n: int) -> None:
        # Called with the lock held. Idle workers already notified are not notified again
        # (they have not taken the lock back yet): that was a wasted call per queued task
        # while a fast producer filled the queue.
        avail = self._idle - self._signalled
        if avail > 0:
            k = min(n, avail)
            self._work.notify(k)
            self._signalled += k
        n -= self._idle
        while n > 0 and self._threads < self.max_workers:
            self._threads += 1
            t = threading.Thread(target=self._worker, args=(self._generation,), name="routilux-worker", daemon=True)
            t.start()
            n -= 1

    def _worker(self, generation: int) -> None:
        lock = self._lock
        tls = self._tls
        tls.depth = 0
        monotonic = time.monotonic
        while True:
            with lock:
                idle_since = 0.0
                while not self._queue or generation != self._generation:
                    if generation != self._generation:
                        self._threads_exit()
                        return
                    now = monotonic()
                    if not idle_since:
                        idle_since = now
                    elif now - idle_since >= _IDLE_EXIT:
                        self._threads_exit()
                        return
                    self._idle += 1
                    if self._work.wait(_POLL):
                        self._signalled -= 1
                    self._idle -= 1
                task = self._queue.popleft()
                job = task.job_state
                key = id(job) if job is not None else 0
                entry = self._jobs.get(key)
                if entry is None or entry.job is not job:
                    entry = self._jobs[key] = _JobEntry(job)
                    entry.queued = 1
                entry.queued -= 1
                entry.active += 1
                tid = task.task_id
                entry.running.add(tid)
                if job is not None:
                    # Recorded by the next flush of the job (with an emit, an error, or when
                    # the job goes idle), not by an append of its own.
                    entry.marks[tid] = STARTED
            tls.job, tls.task_id = job, tid
            tls.depth = 1
            try:
                done = self._runner(task)
            except BaseException:  # the runner records handler errors; this is a bug guard
                logger.exception("routilux task %s crashed", tid)
                done = None
            finally:
                tls.job = tls.task_id = None
                tls.depth = 0
            with lock:
                # This worker takes the next task itself; idle ones take the rest.
                self._handler_done(1)
                entry.running.discard(tid)
                marks = entry.marks
                if done is not None:
                    # Replaces a still unrecorded STARTED mark in place: a task that starts
                    # and finishes between two flushes is recorded by its end alone.
                    marks[tid] = FINISHED
                elif marks.get(tid) is STARTED:
                    del marks[tid]  # skipped (cancelled job): it stays queued in the log
                outcome = self._release_or_flush(key, entry)
            if outcome == _FLUSH:
                self._flush_and_release(job, key, entry)
            elif outcome == _IDLE and job is not None:
                job._notify_waiters()

    def _handler_done(self, keep: int) -> None:
        """Wake idle workers for the tasks queued while a handler ran (lock held).

        ``keep`` tasks are left for the calling thread (a worker takes its next task itself).
        """
        spare = len(self._queue) - keep
        if spare > 0 and self._idle > self._signalled:
            k = min(spare, self._idle - self._signalled)
            self._work.notify(k)
            self._signalled += k

    def _release_or_flush(self, key: int, entry: _JobEntry) -> int:
        """End one unit of ``entry``'s running work, unless its marks must be recorded first.

        Called with the lock held. Returns ``_FLUSH`` when this is the job's last running
        work with nothing queued and marks are pending: the caller must then call
        :meth:`_flush_and_release`, which records the marks BEFORE the job looks idle (a
        waiter that sees it idle may mark it completed, or close it, at once). Otherwise
        returns ``_IDLE`` if the job just became idle (the caller notifies its waiters,
        outside the lock), else 0.
        """
        if entry.marks and entry.active == 1 and entry.queued == 0:
            return _FLUSH
        entry.active -= 1
        became_idle = self._maybe_forget(key, entry)
        if self._waiters:
            self._changed.notify_all()
        return _IDLE if became_idle else 0

    def _flush_and_release(self, job: Any, key: int, entry: _JobEntry) -> None:
        """Record ``job``'s pending marks, then end the running unit (see _release_or_flush)."""
        self._flush_safely(job)
        with self._lock:
            entry.active -= 1
            became_idle = self._maybe_forget(key, entry)
            if self._waiters:
                self._changed.notify_all()
        if became_idle and job is not None:
            job._notify_waiters()

    def _flush_safely(self, job: Any) -> None:
        try:
            self._flusher(self, job)
        except BaseException:  # e.g. the job was closed while its last handler ran
            logger.exception("routilux could not record the task ends of job %s", getattr(job, "job_id", job))

    def take_marks(self, job: Any) -> list[tuple[str, object]]:
        """Remove and return ``job``'s pending ``(task id, STARTED | FINISHED)`` marks, oldest first.

        Call it with the job's lock held (inside ``job._transaction()``): two flushes of one
        job are then appended in the order their marks were taken.
        """
        with self._lock:
            entry = self._jobs.get(id(job))
            if entry is None or entry.job is not job or not entry.marks:
                return []
            marks, entry.marks = entry.marks, {}
        return list(marks.items())

    def _threads_exit(self) -> None:
        # Called with the lock held.
        self._threads -= 1
        if self._waiters:
            self._changed.notify_all()

    def begin_external(self, job: Any, task_id: str | None = None) -> Any:
        """Count work done outside the workers (the entry handler) as running for ``job``."""
        with self._lock:
            entry = self._entry(job)
            entry.active += 1
            if task_id is not None:
                entry.running.add(task_id)
        tls = self._tls
        previous = (getattr(tls, "job", None), getattr(tls, "task_id", None))
        tls.job, tls.task_id = job, task_id
        tls.depth = getattr(tls, "depth", 0) + 1
        return previous

    def end_external(self, job: Any, previous: Any = None, task_id: str | None = None) -> None:
        """End :meth:`begin_external` (``previous`` is what it returned)."""
        tls = self._tls
        tls.job, tls.task_id = previous if previous is not None else (None, None)
        tls.depth = max(0, getattr(tls, "depth", 1) - 1)
        key = id(job)
        with self._lock:
            self._handler_done(0)
            entry = self._jobs.get(key)
            if entry is None or entry.job is not job:
                if self._waiters:
                    self._changed.notify_all()
                return
            if task_id is not None:
                entry.running.discard(task_id)
            outcome = self._release_or_flush(key, entry)
        if outcome == _FLUSH:
            self._flush_and_release(job, key, entry)
        elif outcome == _IDLE:
            job._notify_waiters()

    # -- per-job pause / resume / cancel ----------------------------------------------------------
    def pause(self, job: Any, wait: float = 5.0) -> tuple[list[Any], int, int]:
        """Hold ``job``'s queued and future tasks; wait up to ``wait`` s for its running ones.

        The calling thread's own task (a handler pausing its own job) is not waited for.
        Returns ``(held tasks, still running, flow queue size)``.
        """
        own = 1 if self.current_job() is job else 0
        deadline = time.monotonic() + wait
        with self._lock:
            entry = self._entry(job)
            entry.paused = True
            keep: deque[Any] = deque()
            for task in self._queue:
                if task.job_state is job:
                    entry.held.append(task)
                else:
                    keep.append(task)
            self._queue = keep
            entry.queued = 0
            self._waiters += 1
            try:
                while entry.active - own > 0:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._changed.wait(left)
            finally:
                self._waiters -= 1
            return list(entry.held), max(0, entry.active - own), len(self._queue)

    def held_count(self, job: Any) -> int:
        """Number of ``job``'s tasks held by a pause."""
        with self._lock:
            entry = self._jobs.get(id(job))
            return len(entry.held) if entry is not None and entry.job is job else 0

    def unpause(self, job: Any, extra: Iterable[Any] = (), first_from: int = 0) -> None:
        """Release ``job``'s held tasks, then ``extra`` tasks, into the queue.

        Held tasks from index ``first_from`` on (those queued while resuming: the deferred
        events' tasks) are released before the older ones.
        """
        with self._lock:
            key = id(job)
            entry = self._jobs.get(key)
            held: list[Any] = []
            if entry is not None and entry.job is job:
                entry.paused = False
                held, entry.held = entry.held, []
                if first_from:
                    held = held[first_from:] + held[:first_from]
                self._maybe_forget(key, entry)
        self.submit([*held, *extra])

    def cancel(self, job: Any) -> int:
        """Drop every queued and held task of ``job``; return how many were dropped."""
        with self._lock:
            key = id(job)
            entry = self._jobs.get(key)
            before = len(self._queue)
            self._queue = deque(t for t in self._queue if t.job_state is not job)
            dropped = before - len(self._queue)
            if entry is not None and entry.job is job:
                dropped += len(entry.held)
                entry.held = []
                entry.paused = False
                entry.queued = 0
                became_idle = self._maybe_forget(key, entry)
                marked = became_idle and bool(entry.marks)
            else:
                became_idle, marked = True, False
        if marked:  # nothing runs any more: record the ends of the tasks that did run
            self._flush_idle(job, key)
        if became_idle:
            job._notify_waiters()
        return dropped

    def _flush_idle(self, job: Any, key: int) -> None:
        """Record the marks of an idle job (cancel, shutdown) and forget its entry if done."""
        self._flush_safely(job)
        with self._lock:
            entry = self._jobs.get(key)
            if entry is not None and entry.job is job:
                self._maybe_forget(key, entry)

    # -- whole-flow waiting and shutdown ----------------------------------------------------------
    def wait_all_idle(self, timeout: float | None = None) -> bool:
        """Wait until no task is queued or running for any job; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._waiters += 1
            try:
                while self._queue or any(e.active for e in self._jobs.values()):
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._changed.wait(0.05 if left is None else min(left, 0.05))
            finally:
                self._waiters -= 1
        return True

    def ensure_workers(self) -> bool:
        """Start workers for queued tasks if none are running; True if any worker is alive.

        Workers start on demand and exit when idle, so this is only needed by code that
        queued tasks some other way (0.10's ``ensure_event_loop_running``).
        """
        with self._lock:
            if self._queue:
                self._wake(len(self._queue))
            return self._threads > 0

    def held_tasks(self, job: Any) -> list[Any]:
        """The tasks of ``job`` held by a pause, oldest first."""
        with self._lock:
            entry = self._jobs.get(id(job))
            return list(entry.held) if entry is not None and entry.job is job else []

    def wait_no_running(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s until no task of any job is running; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._waiters += 1
            try:
                while any(e.active for e in self._jobs.values()):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._changed.wait(min(left, 0.05))
            finally:
                self._waiters -= 1
        return True

    def queue_size(self) -> int:
        """Number of tasks waiting in the queue (all jobs)."""
        return len(self._queue)

    def active_count(self) -> int:
        """Number of tasks running (all jobs)."""
        return sum(e.active for e in list(self._jobs.values()))

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Abandon queued tasks, stop the workers and, if ``wait``, wait for them to exit.

        Abandoned tasks of a durable job stay open in its log, so a later resume runs them.
        """
        _unwatch(self)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            for task in self._queue:
                entry = self._jobs.get(id(task.job_state) if task.job_state is not None else 0)
                if entry is not None:
                    entry.queued -= 1
            self._queue.clear()
            self._generation += 1
            self._closed = True
            self._signalled = self._idle  # every idle worker is notified now
            self._work.notify_all()
            idle_marked = []
            for key, entry in list(self._jobs.items()):
                if self._maybe_forget(key, entry) and entry.marks and entry.job is not None:
                    idle_marked.append((entry.job, key))
        # Record the ends of the tasks that did run, so a later resume does not run them
        # again (a job still running a task records them when that task ends).
        for job, key in idle_marked:
            self._flush_idle(job, key)
        if not wait:
            return
        with self._lock:
            self._waiters += 1
            try:
                while self._threads > 0:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        break
                    self._changed.wait(0.05 if left is None else min(left, 0.05))
            finally:
                self._waiters -= 1
