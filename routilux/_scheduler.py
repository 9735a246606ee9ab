"""The task scheduler behind a Flow: one FIFO queue, a few worker threads, per-job counters.

The original runs a polling event-loop thread plus a ThreadPoolExecutor per flow. This is
leaner: worker threads take tasks straight from one ``deque`` under one lock and exit after
0.1 s without work. With one worker the order is the global FIFO order (breadth-first), as in
the original's sequential strategy.

Per job it keeps the number of queued and running tasks (``activity``), so a job's completion
is known exactly and waiters are woken the moment it goes idle, and a per-job pause: tasks of a
paused job are held aside instead of being queued, while other jobs of the flow keep running.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import deque
from typing import Any, Callable, Iterable

__all__ = ["Scheduler"]

logger = logging.getLogger("routilux")

_IDLE_EXIT = 0.1  # seconds a worker waits for work before exiting (restarted on demand)


class _JobEntry:
    """Bookkeeping for one job (or for tasks without a job, under key 0)."""

    __slots__ = ("job", "queued", "active", "paused", "held", "running")

    def __init__(self, job: Any) -> None:
        self.job = job
        self.queued = 0
        self.active = 0
        self.paused = False
        self.held: list[Any] = []
        self.running: set[str] = set()


class Scheduler:
    """Runs tasks with at most ``max_workers`` threads; see the module docstring."""

    def __init__(self, runner: Callable[[Any, Any], Any], finisher: Callable[[Any, Any], None],
                 max_workers: int = 1) -> None:
        # runner(task, carry) runs a task; ``carry`` is the id of the previous task of the
        # same job whose end is still to be recorded (the runner records it together with
        # this task's start). It returns this task's id if its end is still to be recorded
        # (then the scheduler chains it or calls finisher(job, task_id)), else None.
        self._runner = runner
        self._finisher = finisher
        self.max_workers = max(1, int(max_workers))
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # workers wait here for tasks
        self._changed = threading.Condition(self._lock)  # pause/shutdown wait here for progress
        self._queue: deque[Any] = deque()
        self._jobs: dict[int, _JobEntry] = {}
        self._threads = 0
        self._idle = 0
        self._waiters = 0
        self._generation = 0  # bumped by shutdown: older workers exit
        self._tls = threading.local()
        # Task ids must be unique across processes that continue one durable job: a random
        # prefix per scheduler plus a counter is unique and far cheaper than uuid4 per task.
        self._prefix = os.urandom(6).hex()
        self._counter = itertools.count(1)

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
            if not entry.paused and not entry.held:
                self._jobs.pop(key, None)
            return True
        return False

    # -- submitting and running ---------------------------------------------------------------
    def submit(self, tasks: Iterable[Any]) -> None:
        """Queue ``tasks`` (tasks of a paused job are held until it is resumed)."""
        with self._lock:
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
                self._wake(added)

    def _wake(self, n: int) -> None:
        # Called with the lock held.
        if self._idle:
            self._work.notify(min(n, self._idle))
            n -= self._idle
        while n > 0 and self._threads < self.max_workers:
            self._threads += 1
            t = threading.Thread(target=self._worker, args=(self._generation,), name="routilux-worker", daemon=True)
            t.start()
            n -= 1

    def _worker(self, generation: int) -> None:
        lock = self._lock
        tls = self._tls
        task: Any = None
        carry: Any = None  # id of the previous task of this job, finished but not yet recorded
        while True:
            if task is None:
                with lock:
                    while not self._queue or generation != self._generation:
                        if generation != self._generation:
                            self._threads_exit()
                            return
                        self._idle += 1
                        woke = self._work.wait(_IDLE_EXIT)
                        self._idle -= 1
                        if not woke and not self._queue:
                            self._threads_exit()
                            return
                    task = self._queue.popleft()
                    job = task.job_state
                    key = id(job) if job is not None else 0
                    entry = self._jobs.get(key)
                    if entry is None or entry.job is not job:
                        entry = self._jobs[key] = _JobEntry(job)
                        entry.queued = 1
                    entry.queued -= 1
                    entry.active += 1
                    entry.running.add(task.task_id)
            tls.job, tls.task_id = job, task.task_id
            try:
                done = self._runner(task, carry)
            except BaseException:  # the runner records handler errors; this is a bug guard
                logger.exception("routilux task %s crashed", getattr(task, "task_id", "?"))
                done = None
            finally:
                tls.job = tls.task_id = None
            with lock:
                if carry is not None:  # the runner has recorded the previous task's end
                    entry.running.discard(carry)
                    carry = None
                if done is None:
                    entry.running.discard(task.task_id)
                nxt = None
                if (done is not None and self._queue and self._queue[0].job_state is job
                        and generation == self._generation):
                    # Chain the next task of the same job: its "started" and this task's
                    # "finished" are recorded as one batch (one append instead of two). The
                    # job's active count simply passes from this task to the next.
                    nxt = self._queue.popleft()
                    entry.queued -= 1
                    entry.running.add(nxt.task_id)
            if nxt is not None:
                carry, task = done, nxt
                continue
            if done is not None:
                try:
                    self._finisher(job, done)
                except BaseException:
                    logger.exception("routilux could not record the end of task %s", done)
            with lock:
                entry.running.discard(task.task_id)
                entry.active -= 1
                became_idle = self._maybe_forget(key, entry)
                if self._waiters:
                    self._changed.notify_all()
            if became_idle and job is not None:
                job._notify_waiters()
            task = None

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
        previous = (getattr(self._tls, "job", None), getattr(self._tls, "task_id", None))
        self._tls.job, self._tls.task_id = job, task_id
        return previous

    def end_external(self, job: Any, previous: Any = None, task_id: str | None = None) -> None:
        """End :meth:`begin_external` (``previous`` is what it returned)."""
        self._tls.job, self._tls.task_id = previous if previous is not None else (None, None)
        with self._lock:
            key = id(job)
            entry = self._jobs.get(key)
            became_idle = False
            if entry is not None and entry.job is job:
                entry.active -= 1
                if task_id is not None:
                    entry.running.discard(task_id)
                became_idle = self._maybe_forget(key, entry)
            if self._waiters:
                self._changed.notify_all()
        if became_idle:
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

    def unpause(self, job: Any, extra: Iterable[Any] = ()) -> None:
        """Release ``job``'s held tasks, then ``extra`` tasks, into the queue."""
        with self._lock:
            key = id(job)
            entry = self._jobs.get(key)
            held: list[Any] = []
            if entry is not None and entry.job is job:
                entry.paused = False
                held, entry.held = entry.held, []
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
            else:
                became_idle = True
        if became_idle:
            job._notify_waiters()
        return dropped

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
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            for task in self._queue:
                entry = self._jobs.get(id(task.job_state) if task.job_state is not None else 0)
                if entry is not None:
                    entry.queued -= 1
            self._queue.clear()
            self._generation += 1
            self._work.notify_all()
            for key, entry in list(self._jobs.items()):
                self._maybe_forget(key, entry)
            if not wait:
                return
            self._waiters += 1
            try:
                while self._threads > 0:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        break
                    self._changed.wait(0.05 if left is None else min(left, 0.05))
            finally:
                self._waiters -= 1
