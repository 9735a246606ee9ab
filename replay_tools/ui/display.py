"""The JSON the page receives: values made displayable, paths and one-line summaries.

Event payloads and states may hold values JSON cannot carry. The page gets them tagged,
with the tags of :mod:`replay_tools.jsonform` where one exists (``{"$bytes": base64}``,
``{"$datetime": iso}``, a user key starting with ``$`` written with one more ``$``),
plus two that only matter for display: non-finite floats (``{"$float": "nan"}``) and
integers a JavaScript number cannot hold exactly (``{"$int": "12345678901234567890"}``).
Path segments sent with patches are escaped the same way as keys, so a patch path
always names the key as it appears in the tagged tree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ..jsonform import to_jsonable

__all__ = ["MAX_SAFE_INT", "dumps", "escape_segment", "summary", "to_display"]

#: The largest integer a JavaScript number holds exactly (2**53 - 1).
MAX_SAFE_INT = 2**53 - 1


def escape_segment(segment: str) -> str:
    """A path segment as it appears among the keys of a :func:`to_display` tree."""
    return "$" + segment if segment.startswith("$") else segment


def to_display(value: Any) -> Any:
    """Return ``value`` as plain JSON data the page can show exactly (see the module doc)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE_INT <= value <= MAX_SAFE_INT else {"$int": str(value)}
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, Mapping):
        return {escape_segment(str(k)): to_display(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_display(v) for v in value]
    if hasattr(value, "serialize"):  # an ExecutionRecord
        return to_display(value.serialize())
    tagged = to_jsonable(value)  # bytes and datetimes
    if tagged is not value:
        return tagged
    return {"$repr": repr(value)}


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON of already displayable data (NaN refused: it is not JSON)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def summary(data: Any, limit: int = 160) -> str:
    """A one-line rendering of an event payload for the event list (cut at ``limit``)."""
    try:
        text = json.dumps(to_display(data), ensure_ascii=False, separators=(", ", ": "), allow_nan=False)
    except (TypeError, ValueError):
        text = repr(data)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
