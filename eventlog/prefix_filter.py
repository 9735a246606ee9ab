"""A filter on raw events by their leading bytes, applied inside a log's raw read.

A reader that wants only some kinds of events (``bisect`` on a long log wants one
event in eight) could test each event after the read yields it, but on a million
events the yields cost more than the test. ``read_raw(..., select=PrefixFilter(...))``
lets the log test the bytes where it holds them and yield only what passes. It is a
filter on bytes only, so the log stays ignorant of what the events mean; every frame
is still read and its checksums checked whether its events pass or not.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["PrefixFilter"]


class PrefixFilter(NamedTuple):
    """Which events a filtered raw read leaves out, by prefix of their stored bytes.

    An event is left out when its bytes start with one of ``skip`` and with none of
    ``keep``; every other event passes (``keep`` carves exceptions out of ``skip``,
    e.g. skip one kind except for one key).

    Attributes:
        skip: prefixes of the events to leave out.
        keep: prefixes of events to yield even though they start with a ``skip`` prefix.
    """

    skip: tuple[bytes, ...]
    keep: tuple[bytes, ...] = ()

    def passes(self, event_bytes: bytes) -> bool:
        """Whether a read filtered by this yields the event with these bytes."""
        # The one rule; FrameScanner inlines the same two tests on its read buffer.
        return not event_bytes.startswith(self.skip) or event_bytes.startswith(self.keep)
