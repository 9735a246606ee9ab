"""routilux 0.10's builtin routines: ready-made routines for common steps of a workflow.

By category (each also importable from its subpackage, as in 0.10):

* ``text_processing``: :class:`TextClipper`, :class:`TextRenderer`, :class:`ResultExtractor`;
* ``utils``: :class:`TimeProvider`, :class:`DataFlattener`;
* ``data_processing``: :class:`DataTransformer`, :class:`DataValidator`;
* ``control_flow``: :class:`ConditionalRouter`.

They are ordinary :class:`routilux.Routine` subclasses: configure them with ``set_config``, add
them to a flow and connect their slots and events. Whatever they do to a job goes through the
flow (their emits), so it lands in the job's event log and replays exactly.
"""

from __future__ import annotations

from .control_flow import ConditionalRouter
from .data_processing import DataTransformer, DataValidator
from .text_processing import ResultExtractor, TextClipper, TextRenderer
from .utils import DataFlattener, TimeProvider

__all__ = [
    "TextClipper",
    "TextRenderer",
    "ResultExtractor",
    "TimeProvider",
    "DataFlattener",
    "DataTransformer",
    "DataValidator",
    "ConditionalRouter",
]
