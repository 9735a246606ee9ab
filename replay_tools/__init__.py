"""replay_tools: time travel and audit over routilux job logs.

The library does the work; ``routilux-replay`` (:mod:`replay_tools.cli`) is a thin
command line on top of it::

    from replay_tools import open_job, projection_at, bisect, blame, parse_condition

    with open_job("./jobs/1234") as job:
        first = bisect(job, parse_condition("shared_data.limit == 0"))
        for change in blame(job, "shared_data.limit"):
            print(change.version, change.routine_id, change.old, "->", change.new)

A job is a saved job file (``JobState.save``), a durable job directory
(``JobState.open``) or a job in PostgreSQL (``postgresql://user@host/db#<job_id>``);
all are opened read-only. :func:`copy_job` moves a job between these storages with
its head hash unchanged.
"""

from __future__ import annotations

from .condition import Condition, parse_condition
from .copying import CopyResult, copy_job
from .diff import Difference, diff_states
from .errors import (
    BadPointError,
    ConditionSyntaxError,
    CopyMismatchError,
    DamagedLogError,
    DestinationError,
    FieldPathError,
    ImportFormatError,
    JobNotFoundError,
    NotAJobLogError,
    ReplayError,
    StorageUnavailableError,
)
from .exporting import export_log, iter_export, read_export_into
from .paths import MISSING, FieldPath, parse_path, resolve
from .replay import BisectResult, BlameEntry, bisect, blame, diff, projection_at, state_at, state_dict
from .source import Job, open_job
from .summary import JobInfo, JobRow, info, list_jobs, timeline
from .verify import Problem, VerifyResult, verify_job

__all__ = [
    "MISSING",
    "BadPointError",
    "BisectResult",
    "BlameEntry",
    "Condition",
    "ConditionSyntaxError",
    "CopyMismatchError",
    "CopyResult",
    "DamagedLogError",
    "DestinationError",
    "Difference",
    "FieldPath",
    "FieldPathError",
    "ImportFormatError",
    "Job",
    "JobInfo",
    "JobNotFoundError",
    "JobRow",
    "NotAJobLogError",
    "Problem",
    "ReplayError",
    "StorageUnavailableError",
    "VerifyResult",
    "bisect",
    "blame",
    "copy_job",
    "diff",
    "diff_states",
    "export_log",
    "info",
    "iter_export",
    "list_jobs",
    "open_job",
    "parse_condition",
    "parse_path",
    "projection_at",
    "read_export_into",
    "resolve",
    "state_at",
    "state_dict",
    "timeline",
    "verify_job",
]

