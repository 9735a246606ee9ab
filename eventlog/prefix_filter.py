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
    """Which events a filtered raw read leaves out: those whose first ``width`` bytes are in ``skip``.

    One slice and one set lookup per event, whatever the number of prefixes (a test
    against a tuple of prefixes, one ``startswith`` each, costs more than the yield it
    saves). An event shorter than ``width`` bytes always passes.

    Attributes:
        width: how many leading bytes of each event are looked at.
        skip: the leading bytes (each exactly ``width`` long) of the events to leave out.
    """

    width: int
    skip: frozenset[bytes]

    def passes(self, event_bytes: bytes) -> bool:
        """Whether a read filtered by this yields the event with these bytes."""
        # The one rule; FrameScanner inlines the same test.
        return event_bytes[: self.width] not in self.skip
