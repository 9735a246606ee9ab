"""Rebuilding a job's projection from its log: the one rebuild.

``JobState.open``, ``at``, ``load``, ``from_events`` and ``replay_tools`` all rebuild a
state the same way, the way ``eventsourcing`` rebuilds an aggregate: the newest usable
snapshot at or before the target, then the events after it, read raw and folded with
the one :func:`~routilux.projection.apply_event`. Snapshots hold only the current state,
so the history lists are read from the log when they are asked for.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from eventlog import EventLog, EventLogError

from . import job_events as ev
from .errors import ReplayError
from .gc_pause import gc_paused
from .projection import JobProjection, fold_raw, from_snapshot
from .timestamps import TimeLike, last_ns_at

__all__ = ["parse_version", "rebuild", "rebuild_projection", "resolve_version"]

_log = logging.getLogger(__name__)


def rebuild(log: EventLog, version: int | None = None, *, where: str | None = None, lock: Any = None,
            lazy_history: bool = True, base: tuple[int, dict[str, Any]] | None = None) -> JobProjection:
    """The projection of the job in ``log`` after event ``version`` (default: the head).

    Args:
        where: how to name the log in errors (default: its location).
        base: ``(seq, state)``: a snapshot state the caller keeps (``snapshot_state`` of
            an earlier rebuild, at ``seq <= version``); used when newer than the log's own.
        lock: the lock the projection decodes values under (a JobState passes its own).
        lazy_history: read the history lists from ``log`` when they are first asked for
            (:func:`~routilux.projection.ensure_history`); otherwise they are built while
            folding, for the events after the snapshot used (``history_from`` tells).

    Raises:
        ReplayError: the log is not a readable job log, or ends before ``version``.
    """
    version = log.head_seq if version is None else version
    source = log if lazy_history else None
    try:
        snap = log.latest_snapshot(max_seq=version, schema_version=ev.SCHEMA_VERSION)
    except EventLogError:
        snap = None  # a broken snapshot store only costs a longer replay
    projection = None
    if base is not None and base[0] <= version and (snap is None or base[0] > snap.seq):
        projection = from_snapshot(base[1], base[0], lock=lock, history_source=source)
    elif snap is not None and snap.seq > 0:
        try:
            projection = from_snapshot(snap.state, snap.seq, lock=lock, history_source=source)
        except ReplayError:
            _log.warning("ignoring unusable snapshot %s of %s", snap.name, where or log.location)
    if projection is None:
        projection = JobProjection(lock, source)
    start = projection.version + 1
    with gc_paused(version - start + 1):
        fold_raw(projection, log.read_raw(start, version))
    if projection.version != version:
        msg = f"the log {where or log.location!r} ends at seq {projection.version}, expected {version}"
        raise ReplayError(msg)
    return projection


_HEAD_MINUS = re.compile(r"head\s*(?:[-~]\s*(\d+))?")


def parse_version(version: int | str, head: int) -> int:
    """A version given as an int, or as ``"head"`` / ``"head-N"`` / ``"head~N"`` (as the CLI takes them).

    Raises:
        ValueError: a string of another form.
        TypeError: neither an int nor a str.
    """
    if type(version) is int:
        return version
    if isinstance(version, str):
        text = version.strip().lower()
        if text.isdigit():
            return int(text)
        found = _HEAD_MINUS.fullmatch(text)
        if found is not None:
            return head - int(found.group(1) or 0)
        msg = f"version {version!r} is not a version: give an int, 'head' or 'head-N'"
        raise ValueError(msg)
    msg = f"version must be an int or 'head'/'head-N', got {type(version).__name__}"
    raise TypeError(msg)


def resolve_version(log: EventLog, version: int | str | None, timestamp: TimeLike | None, head: int,
                    what: str) -> int:
    """The version a caller asked for (``version`` and/or ``timestamp``), checked against ``head``.

    ``version`` may be ``"head"`` or ``"head-N"``; ``timestamp`` (a datetime, int ns or an
    ISO string) includes every event whose user-visible timestamp is at or before it.

    Raises:
        ValueError: the version is out of range, or nothing happened by ``timestamp``.
    """
    if version is not None:
        version = parse_version(version, head)
    if timestamp is not None:
        at_time = log.seq_at_time(last_ns_at(timestamp))
        if at_time == 0:
            msg = f"{what} has no event at or before {timestamp!r}"
            raise ValueError(msg)
        version = at_time if version is None else min(version, at_time)
    if version is None:
        return head
    if type(version) is not int or not 1 <= version <= head:
        msg = f"version must be from 1 to {head} (the job's current version), got {version!r}"
        raise ValueError(msg)
    return version


def rebuild_projection(log: EventLog, version: int | None = None) -> JobProjection:
    """The :class:`~routilux.projection.JobProjection` of a job log at ``version`` (default: its head).

    Built like :meth:`JobState.at <routilux.job_state.JobState.at>`: the newest usable
    snapshot at or before ``version`` plus the events after it. Its ``kind_counts`` give
    the number of events of each kind in ``1..version``; its history lists are read from
    the log on :func:`~routilux.projection.ensure_history`.

    Raises:
        ValueError: ``version`` is not between 1 and the log's head.
        ReplayError: the log is not a readable job log.
    """
    head = log.head_seq
    return rebuild(log, resolve_version(log, version, None, head, repr(log.location)))
