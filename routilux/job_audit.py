"""Audit proofs for jobs (issue 14): signed checkpoints taken by a job's own policy.

A durable job given a :class:`CheckpointPolicy` signs a checkpoint of its log (see
:mod:`eventlog.audit`) every ``every`` events and when it reaches a terminal status
(``completed``, ``failed``, ``cancelled``), and keeps each with the log. Proofs of its
events are then made at any time (``routilux-replay prove``), and checked by an auditor
with only the proof, the checkpoint and the public key (``routilux-replay verify-proof``).
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from eventlog import EventLog
from eventlog.audit import StoredCheckpoint, log_origin, make_checkpoint
from eventlog.signing import Signer

__all__ = ["DEFAULT_ORIGIN", "CheckpointPolicy", "take_checkpoint"]

_log = logging.getLogger("routilux.job_state")
#: The origin of a job's checkpoints unless its policy names another (``{job_id}``: the job's id).
DEFAULT_ORIGIN = "routilux/{job_id}"


def _check_every(instance: Any, attribute: Any, value: int | None) -> None:
    if value is not None and (type(value) is not int or value < 1):
        msg = f"every must be a positive int or None, got {value!r}"
        raise ValueError(msg)


@attrs.frozen
class CheckpointPolicy:
    """When a job signs checkpoints of its log, with which key, under which origin.

    Attributes:
        signer: the key (a :class:`eventlog.signing.KeyFileSigner`, or an HSM/KMS
            implementing :class:`eventlog.signing.Signer`).
        every: also sign one every this many events (``None``: only at terminal status).
        at_terminal: sign one when the job completes, fails or is cancelled.
        origin: the log's id in its checkpoints; ``{job_id}`` is replaced by the job's
            id. It must be unique among the logs this key signs for.
    """

    signer: Signer
    every: int | None = attrs.field(default=None, validator=_check_every)
    at_terminal: bool = True
    origin: str = DEFAULT_ORIGIN

    def origin_for(self, job_id: str) -> str:
        """The origin of the job ``job_id``."""
        return self.origin.replace("{job_id}", job_id)


def take_checkpoint(log: EventLog, policy: CheckpointPolicy, job_id: str) -> StoredCheckpoint | None:
    """Sign and keep a checkpoint of the job's log; log (never raise) a failure.

    The events are recorded already; a checkpoint that could not be made (a key that
    cannot sign, a full disk) is reported on the ``routilux.job_state`` logger, and the
    next one covers the same events.
    """
    try:
        return make_checkpoint(log, policy.signer, origin=log_origin(log) or policy.origin_for(job_id))
    except Exception:  # noqa: BLE001 - logged; see the docstring
        _log.exception("could not sign a checkpoint of job %s", job_id)
        return None
