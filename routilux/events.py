"""The old name of :mod:`routilux.job_events` (the kinds of job events), kept for existing imports.

Nothing inside this project imports it; new code uses :mod:`routilux.job_events`.
"""

from __future__ import annotations

from .job_events import *  # noqa: F403
from .job_events import __all__  # noqa: F401
