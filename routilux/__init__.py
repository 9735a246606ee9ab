"""routilux, event-sourced: a routilux 0.10 compatible workflow framework.

Every mutation of a job's state is an event in an append-only log (see ``routilux.job_state``);
flows run unchanged and a durable job (``JobState.open(path)``) can be resumed after a crash.
"""

from __future__ import annotations

# The codec's names a user of JobState meets: registering a class whose instances are kept
# in a job's state, and what a value comes back as when its class is not registered.
from eventlog import (
    EventEncodingError,
    StoredObject,
    Unrepresentable,
    UnrepresentableValueWarning,
    register_type,
    unregister_type,
)

from .builtin_routines import (
    ConditionalRouter,
    DataFlattener,
    DataTransformer,
    DataValidator,
    ResultExtractor,
    TextClipper,
    TextRenderer,
    TimeProvider,
)
from .connection import Connection
from .error_handler import ErrorHandler, ErrorStrategy
from .errors import DetachedValueError, ReadOnlyJobStateError, ReplayError
from .event import Event
from .execution_tracker import ExecutionTracker
from .flow import Flow
from .job_state import ExecutionRecord, JobState
from .job_store import JobStore
from .output_handler import CallbackOutputHandler, NullOutputHandler, OutputHandler, QueueOutputHandler
from .routine import ExecutionContext, Routine
from .serializable import register_serializable
from .slot import Slot

# As in routilux 0.10, the framework's classes are registered with serilux by class name, so
# serilux (and 0.10 code using it) rebuilds them from their ``_type``. In one place because
# JobState and ExecutionRecord are defined in modules that do not import serilux themselves.
for _cls in (Routine, Slot, Event, Connection, Flow, JobState, ExecutionRecord, ExecutionTracker, ErrorHandler):
    register_serializable(_cls)
del _cls

__version__ = "0.10.0"

__all__ = [
    "CallbackOutputHandler",
    "ConditionalRouter",
    "Connection",
    "DataFlattener",
    "DataTransformer",
    "DataValidator",
    "DetachedValueError",
    "ErrorHandler",
    "ErrorStrategy",
    "Event",
    "EventEncodingError",
    "ExecutionContext",
    "ExecutionRecord",
    "ExecutionTracker",
    "Flow",
    "JobState",
    "JobStore",
    "NullOutputHandler",
    "OutputHandler",
    "QueueOutputHandler",
    "ReadOnlyJobStateError",
    "ReplayError",
    "ResultExtractor",
    "Routine",
    "Slot",
    "StoredObject",
    "TextClipper",
    "TextRenderer",
    "TimeProvider",
    "Unrepresentable",
    "UnrepresentableValueWarning",
    "register_type",
    "unregister_type",
    "__version__",
]
