"""replay_tools: time travel and audit over routilux job logs.

The library does the work; ``routilux-replay`` (:mod:`replay_tools.cli`) is a thin
command line on top of it::

    from replay_tools import open_job, bisect, transitions, iter_blame, timeline, parse_condition

    with open_job("./jobs/1234") as job:
        first = bisect(job, parse_condition("shared_data.limit == 0"))   # exact for any condition
        for t in transitions(job, parse_condition("status == paused")):
            print(t.version, "becomes", t.holds)
        for change in iter_blame(job, "shared_data.limit"):              # streamed as found
            print(change.version, change.routine_id, change.old, "->", change.new)
        for row in timeline(job, kinds=["status_set"], reverse=True, limit=5):
            print(row.seq, row.kind, row.routine, row.data)

A job is a saved job file (``JobState.save``), a durable job directory
(``JobState.open``) or a job in PostgreSQL (``postgresql://user@host/db#<job_id>``);
all are opened read-only. :func:`copy_job` moves a job between these storages with
its head hash unchanged.
"""

from __future__ import annotations

from .attribution import acting_routine
from .condition import Condition, parse_condition, parse_event_condition, parse_field
from .copying import CopyResult, copy_job
from .diff import Difference, diff_states
from .errors import (
    BadPointError,
    ConditionSyntaxError,
    ConditionTypeError,
    CopyMismatchError,
    DamagedLogError,
    DestinationError,
    FieldPathError,
    ImportFormatError,
    JobNotFoundError,
    NotAJobLogError,
    ReplayError,
    StorageUnavailableError,
    UnknownFieldError,
    UsageError,
)
from .exporting import ImportResult, export_log, import_job, iter_export, read_export_into
from .paths import MISSING, FieldPath, parse_path, resolve
from .replay import (
    BisectResult,
    BlameEntry,
    Transition,
    bisect,
    blame,
    diff,
    iter_blame,
    projection_at,
    state_at,
    state_dict,
    transitions,
)
from .salvage import SalvageReport, salvage
from .source import Job, open_job
from .summary import EventRow, JobInfo, JobRow, info, list_jobs, timeline
from .verify import Problem, VerifyResult, verify_job

__all__ = [
    "MISSING",
    "BadPointError",
    "BisectResult",
    "BlameEntry",
    "Condition",
    "ConditionSyntaxError",
    "ConditionTypeError",
    "CopyMismatchError",
    "CopyResult",
    "DamagedLogError",
    "DestinationError",
    "Difference",
    "EventRow",
    "FieldPath",
    "FieldPathError",
    "ImportFormatError",
    "ImportResult",
    "Job",
    "JobInfo",
    "JobNotFoundError",
    "JobRow",
    "NotAJobLogError",
    "Problem",
    "ReplayError",
    "SalvageReport",
    "StorageUnavailableError",
    "Transition",
    "UnknownFieldError",
    "UsageError",
    "VerifyResult",
    "acting_routine",
    "bisect",
    "blame",
    "copy_job",
    "diff",
    "diff_states",
    "export_log",
    "import_job",
    "info",
    "iter_blame",
    "iter_export",
    "list_jobs",
    "open_job",
    "parse_condition",
    "parse_event_condition",
    "parse_field",
    "parse_path",
    "projection_at",
    "read_export_into",
    "resolve",
    "salvage",
    "state_at",
    "state_dict",
    "timeline",
    "transitions",
    "verify_job",
]

