"""Fork a job at an earlier version, with chosen events skipped or edited; what-if runs.

:func:`fork` writes a **new** job whose history is the original's prefix up to a
version, minus the skipped events and with the edited ones changed. The original is
only read. The new job records what was done to it: its last event is a history entry
``forked`` of the pseudo routine ``_flow`` that names the source job, the fork point,
the source's hash-chain link at that point, every skipped event and every edited event
with its original payload; :func:`verify_fork` checks a fork against its source with
them (the recorded link, then the prefix event by event).

The fork is ready for ``flow.resume(JobState.open(path))`` with current code: the tasks
that were queued and not finished at the fork point run again, deferred events are
emitted, a paused job continues.

:func:`whatif` is fork + resume + a field-level diff of the two final states.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

import eventlog
from routilux import JobState
from routilux.errors import ReplayError as FoldError
from routilux.flow import ENGINE_ROUTINE_ID
from routilux.job_state import JobEvent

from ..diff import Difference
from ..source import open_job
from .compare import state_changes
from .errors import ForkSpecError
from .script import DEFAULT_TIMEOUT, FlowFactory, build_flow

__all__ = ["FORKED", "ForkResult", "WhatIfResult", "fork", "parse_edit", "verify_fork", "whatif"]

#: History entry (of the pseudo routine ``_flow``) that a fork records as its last event.
FORKED = "forked"


@attrs.frozen
class ForkResult:
    """What :func:`fork` wrote.

    Attributes:
        path: the new job (a directory, or a saved job file).
        job_id: the new job's id.
        source_job_id: the original's id.
        source_version: the fork point (a version of the original).
        source_link: the original's hash-chain link at that version (hex).
        skipped: original versions left out.
        edited: original versions whose payload was changed.
        events: events in the new job (the forked marker included).
        head_hash: the new job's head hash.
    """

    path: str
    job_id: str
    source_job_id: str
    source_version: int
    source_link: str
    skipped: tuple[int, ...]
    edited: tuple[int, ...]
    events: int
    head_hash: str

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of ``routilux-replay fork --json``."""
        return attrs.asdict(self, value_serializer=lambda _i, _a, v: list(v) if isinstance(v, tuple) else v)


def parse_edit(text: str) -> tuple[int, dict[str, Any]]:
    """Parse ``SEQ=JSON`` (a JSON object of payload fields) from the command line.

    Raises:
        ForkSpecError: not ``SEQ=JSON``, a bad seq, or JSON that is not an object.
    """
    seq_text, sep, body = text.partition("=")
    if not sep or not seq_text.strip().isdigit():
        msg = f"bad --edit {text!r}: expected SEQ=JSON, e.g. 8='{{\"value\": 1}}'"
        raise ForkSpecError(msg)
    try:
        fields = json.loads(body)
    except json.JSONDecodeError as exc:
        msg = f"bad --edit {text!r}: the JSON does not parse ({exc.msg} at column {exc.colno})"
        raise ForkSpecError(msg) from None
    if not isinstance(fields, dict):
        msg = f"bad --edit {text!r}: give a JSON object of the payload fields to change"
        raise ForkSpecError(msg)
    return int(seq_text), fields


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _prefix(source: Any, at: int, key: bytes | None) -> tuple[list[JobEvent], str, int]:
    """Events 1..at of the source, its link at ``at`` and its head."""
    if isinstance(source, JobState):
        head = source.version
        if not 1 <= at <= head:
            raise ForkSpecError(f"--at {at} is outside the job's versions 1..{head}")
        return [JobEvent(e.seq, e.ts, e.kind, _plain(e.data)) for e in source.events(stop=at)], \
            source.log.link_at(at).hex(), head
    with open_job(source, key=key) as job:
        head = job.head
        if not 1 <= at <= head:
            raise ForkSpecError(f"--at {at} is outside the job's versions 1..{head}")
        events = [JobEvent(r.seq, r.ts, r.kind, _plain(r.data)) for r in job.read(1, at)]
        return events, job.log.link_at(at).hex(), head


def _forked_events(prefix: Sequence[JobEvent], job_id: str, skip: set[int],
                   edits: Mapping[int, Mapping[str, Any]]) -> tuple[list[JobEvent], list[Any], list[Any]]:
    out: list[JobEvent] = []
    skipped: list[Any] = []
    edited: list[Any] = []
    for e in prefix:
        if e.seq == 1:
            data = {**e.data, "job_id": job_id}
        elif e.seq in skip:
            skipped.append({"seq": e.seq, "kind": e.kind, "data": e.data})
            continue
        elif e.seq in edits:
            data = {**e.data, **_plain(edits[e.seq])}
            edited.append({"seq": e.seq, "kind": e.kind, "original": e.data, "edited": data})
        else:
            data = e.data
        out.append(JobEvent(len(out) + 1, e.ts, e.kind, data))
    return out, skipped, edited


def fork(source: Any, dest: str | os.PathLike[str], *, at: int, skip: Iterable[int] = (),
         edit: Mapping[int, Mapping[str, Any]] | None = None, job_id: str | None = None,
         as_file: bool = False, key: bytes | None = None) -> ForkResult:
    """Write a new job at ``dest``: ``source``'s events 1..``at``, with skips and edits.

    Args:
        source: the original job (a path :func:`replay_tools.open_job` opens, or a JobState).
        dest: where the new job goes; must not exist yet (a directory, or with
            ``as_file`` a saved job file).
        at: the fork point (a version of the original).
        skip: versions of the original to leave out (2..at).
        edit: version -> payload fields to replace (a shallow merge over the payload).
        job_id: the new job's id (default: a new uuid4).
        as_file: write a saved job file (``JobState.save``) instead of a durable directory.
        key: the hash-chain key of a keyed source log (the fork itself is not keyed).

    Raises:
        ForkSpecError: a bad point, a skip or edit outside 2..at, an existing ``dest``,
            or edits that leave a job that cannot be replayed (the message names the event).
    """
    dest = os.fspath(dest)
    if os.path.exists(dest):
        raise ForkSpecError(f"destination {dest!r} already exists; fork into a new path")
    edits = dict(edit or {})
    skips = set(skip)
    prefix, link, _head = _prefix(source, at, key)
    for seq in sorted(skips | set(edits)):
        if not 2 <= seq <= at:
            what = "skip" if seq in skips else "edit"
            raise ForkSpecError(f"cannot {what} version {seq}: only versions 2..{at} (after job_created, up to --at) "
                                "are part of the fork")
    both = skips & set(edits)
    if both:
        raise ForkSpecError(f"version {min(both)} is both skipped and edited; choose one")
    new_id = job_id if job_id is not None else str(uuid.uuid4())
    events, skipped, edited = _forked_events(prefix, new_id, skips, edits)
    try:
        JobState.from_events(events)  # refuse a fork that cannot be replayed, before writing anything
    except FoldError as exc:
        msg = f"the fork cannot be replayed: {exc}"
        if exc.seq is not None and exc.seq <= len(events):
            original = _original_seq(exc.seq, skips)
            msg += f" (version {original} of the original)"
        raise ForkSpecError(msg) from None
    except TypeError as exc:  # a value the log cannot store
        raise ForkSpecError(f"the fork cannot be stored: {exc}") from None
    source_id = str(prefix[0].data.get("job_id", ""))
    marker = {
        "source_job_id": source_id,
        "source_flow_id": str(prefix[0].data.get("flow_id", "")),
        "source_version": at,
        "source_link": link,
        "skipped": skipped,
        "edited": edited,
    }
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    # Built in a temporary directory next to dest and renamed into place once complete
    # and synced: a failed fork leaves nothing behind, and a reader never sees half of one.
    tmp = tempfile.mkdtemp(prefix=".fork-", dir=parent)
    try:
        job_dir = os.path.join(tmp, "job")
        log = eventlog.open_log(job_dir, durability="batch")
        try:
            for e in events:
                log.append(e.kind, e.data, ts=e.ts)  # each event keeps its original time
            log.sync()
        finally:
            log.close()
        job = JobState.open(job_dir)
        try:
            job.record_execution(ENGINE_ROUTINE_ID, FORKED, marker)
            head_hash, count = job.head_hash, job.version
        finally:
            job.close()
        if as_file:
            with contextlib.closing(JobState.open(job_dir, readonly=True)) as view:
                view.save(dest)
        else:
            os.replace(job_dir, dest)
            _sync_dir(parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ForkResult(dest, new_id, source_id, at, link, tuple(sorted(skips)), tuple(sorted(edits)), count,
                      head_hash)


def verify_fork(forked: Any, source: Any, *, key: bytes | None = None) -> list[str]:
    """Check a fork against its source; return the problems found (empty: it holds).

    The fork's last event must be its ``forked`` record; the source's hash-chain link
    at the fork point must be the one recorded (so the source's history up to there is
    the one the fork was made from); and every event before the record must be the
    source's event at that point, with the recorded skips left out and the recorded
    edits applied, keeping its timestamp (only ``job_created`` names the new job id).
    """
    with open_job(os.fspath(forked)) as job:
        events = [JobEvent(r.seq, r.ts, r.kind, _plain(r.data)) for r in job.read()]
    last = events[-1]
    data = last.data.get("data") if last.kind == "execution_recorded" else None
    if not (isinstance(data, dict) and last.data.get("routine_id") == ENGINE_ROUTINE_ID
            and last.data.get("event_name") == FORKED):
        return [f"the last event (version {last.seq}, {last.kind}) is not a fork record"]
    at = int(data.get("source_version", 0))
    try:
        prefix, link, _head = _prefix(source, at, key)
    except ForkSpecError as exc:
        return [f"the source has no version {at}: {exc}"]
    problems = []
    if link != data.get("source_link"):
        problems.append(f"the source's hash-chain link at version {at} is {link}, the fork recorded "
                        f"{data.get('source_link')}: the source's history changed, or it is another job")
    skips = {int(item["seq"]) for item in data.get("skipped") or []}
    edits = {int(item["seq"]): item["edited"] for item in data.get("edited") or []}
    expected, _s, _e = _forked_events(prefix, str(events[0].data.get("job_id")), skips,
                                      {seq: edited for seq, edited in edits.items()})
    body = events[:-1]
    if len(body) != len(expected):
        problems.append(f"the fork holds {len(body)} events before its record, the source and the recorded "
                        f"skips give {len(expected)}")
    for mine, theirs in zip(body, expected, strict=False):
        if (mine.ts, mine.kind, mine.data) != (theirs.ts, theirs.kind, theirs.data):
            problems.append(f"version {mine.seq} of the fork ({mine.kind}) is not the source's event "
                            f"{_original_seq(mine.seq, skips)} with the recorded edits")
            break
    return problems


def _original_seq(new_seq: int, skips: set[int]) -> int:
    seq = new_seq
    for s in sorted(skips):
        if s <= seq:
            seq += 1
    return seq


def _sync_dir(path: str) -> None:
    # The rename is durable only once the directory holding it is synced.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- what if ----------------------------------------------------------------------------
#: State fields that differ between any two runs (ids, times, measured durations),
#: left out of a what-if diff. Paths into ``JobState.serialize()``; ``*`` is any one key.
VOLATILE_STATE_FIELDS: tuple[str, ...] = (
    "job_id", "created_at", "updated_at",
    "execution_history.*.timestamp", "execution_history.*.data.execution_time",
    "execution_history.*.data.traceback",
    "shared_log.*.timestamp", "output_log.*.timestamp", "deferred_events.*.timestamp",
    "pause_points.*.timestamp",
    "routine_states.*.execution_time", "routine_states.*.error_time",
    "pending_tasks.*.created_at", "pending_tasks.*.task_id",
)


@attrs.frozen
class WhatIfResult:
    """What :func:`whatif` found.

    Attributes:
        fork: the fork that was run.
        status: the fork's final status.
        differences: field-level differences from the original's final state to the
            fork's (ids, times and the engine's own ``_flow`` history entries left out).
    """

    fork: ForkResult
    status: str
    differences: tuple[Difference, ...]

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of ``routilux-replay whatif --json``."""
        return {"fork": self.fork.to_json(), "status": self.status,
                "differences": [d.to_json() for d in self.differences]}


def _drop(state: Any, path: Sequence[str]) -> None:
    if not path:
        return
    head, rest = path[0], path[1:]
    if isinstance(state, dict):
        keys = list(state) if head == "*" else [head] if head in state else []
        for k in keys:
            if rest:
                _drop(state[k], rest)
            else:
                del state[k]
    elif isinstance(state, list):
        for i in (range(len(state)) if head == "*" else [int(head)] if head.isdigit() and int(head) < len(state) else []):
            if rest:
                _drop(state[i], rest)


def comparable_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """A ``serialize()`` dict without :data:`VOLATILE_STATE_FIELDS` and the engine's ``_flow`` entries."""
    out: dict[str, Any] = json.loads(json.dumps(_plain(state), default=str))
    # The engine's own entries (the fork record, a resume after interruption, the flow
    # version) say how the run went, not what the flow did.
    out["execution_history"] = [r for r in out.get("execution_history", []) if r.get("routine_id") != ENGINE_ROUTINE_ID]
    for path in VOLATILE_STATE_FIELDS:
        _drop(out, path.split("."))
    return out


def whatif(source: Any, factory: FlowFactory, *, at: int, skip: Iterable[int] = (),
           edit: Mapping[int, Mapping[str, Any]] | None = None, dest: str | os.PathLike[str] | None = None,
           timeout: float = DEFAULT_TIMEOUT, sequential: bool = True, key: bytes | None = None) -> WhatIfResult:
    """Fork ``source`` (see :func:`fork`), resume the fork with ``factory``'s flow, diff the finals.

    Args:
        dest: where to keep the fork (default: a temporary directory, removed afterwards).
        timeout: seconds to wait for the resumed fork to complete.
        key: the hash-chain key of a keyed source log.

    Raises:
        ForkSpecError: see :func:`fork`.
        FlowFactoryError: the factory fails or builds another flow.
        RerunTimeoutError: the resumed fork did not complete in time.
    """
    from .errors import RerunTimeoutError

    keep = dest is not None
    where = os.fspath(dest) if dest is not None else os.path.join(tempfile.mkdtemp(prefix="routilux-whatif-"), "fork")
    try:
        result = fork(source, where, at=at, skip=skip, edit=edit, key=key)
        original = _final_state(source, key)
        flow = build_flow(factory, flow_id=str(original.get("flow_id")), sequential=sequential)
        job = JobState.open(where)
        try:
            flow.resume(job)
            done = JobState.wait_for_completion(flow, job, timeout=timeout)
            flow.shutdown(wait=True, timeout=5)
            if not done:
                raise RerunTimeoutError("resuming the fork", timeout)
            final = job.serialize()
            status = job.status
        finally:
            job.close()
        diffs = state_changes(comparable_state(original), comparable_state(final))
        return WhatIfResult(result, status, tuple(diffs))
    finally:
        if not keep:
            shutil.rmtree(os.path.dirname(where), ignore_errors=True)


def _final_state(source: Any, key: bytes | None) -> dict[str, Any]:
    if isinstance(source, JobState):
        return source.serialize()
    with open_job(source, key=key) as job:
        return job.job_state().serialize()  # type: ignore[no-any-return]
