"""Run a flow in a fresh interpreter (``python -m replay_tools.testing.child``).

Used by ``assert_replay_deterministic(..., hash_seeds=[...])``: each run happens in its
own interpreter with ``PYTHONHASHSEED`` set, so code whose behaviour depends on the
iteration order of sets (or of dicts built from them) is caught. Reads a JSON request
on stdin: ``{"factory": "module:name", "path": DIR, "actions": [...], "snapshot_every":
N, "timeout": S, "sequential": bool}``; writes the job as a durable directory at DIR.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from routilux import JobState

from ..divergence.script import (
    Action,
    Cancel,
    Execute,
    Pause,
    Resume,
    Wait,
    build_flow,
    load_factory,
    perform,
)
from ..jsonform import from_jsonable, to_jsonable

__all__ = ["action_from_json", "action_to_json", "main"]


def action_to_json(action: Action) -> dict[str, Any]:
    """An action as a JSON object (values tagged like ``routilux-replay export``)."""
    if isinstance(action, Execute):
        return {"type": "execute", "entry": action.entry, "params": to_jsonable(action.params)}
    if isinstance(action, Pause):
        return {"type": "pause", "reason": action.reason, "checkpoint": to_jsonable(action.checkpoint)}
    if isinstance(action, Cancel):
        return {"type": "cancel", "reason": action.reason}
    return {"type": "resume" if isinstance(action, Resume) else "wait"}


def action_from_json(obj: dict[str, Any]) -> Action:
    """The inverse of :func:`action_to_json`."""
    kind = obj["type"]
    if kind == "execute":
        return Execute(obj["entry"], from_jsonable(obj["params"]))
    if kind == "pause":
        return Pause(obj["reason"], from_jsonable(obj["checkpoint"]))
    if kind == "cancel":
        return Cancel(obj["reason"])
    return Resume() if kind == "resume" else Wait()


def main() -> int:
    """Perform the request read from stdin; exit 0 when the job was written."""
    request = json.load(sys.stdin)
    sys.path[:0] = [p for p in request.get("sys_path", []) if p not in sys.path]
    flow = build_flow(load_factory(request["factory"]), sequential=request["sequential"])
    job = JobState.open(request["path"], flow_id=flow.flow_id, durability="none")
    job.snapshot_every = request["snapshot_every"]
    try:
        perform(flow, job, [action_from_json(a) for a in request["actions"]], timeout=request["timeout"])
    finally:
        flow.shutdown(wait=True, timeout=5)
        job.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
