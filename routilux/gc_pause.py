"""Pausing the cyclic garbage collector while a long replay builds many objects.

A replay or a history fold builds hundreds of thousands of long-lived objects and no
cycles: with the collector running, each young collection looks at them again and the
heap's growth triggers full collections over everything (DESIGN.md: gc is the largest
lever in replay; a full collection over 1M live objects costs ~0.9 s).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["GC_PAUSE_THRESHOLD", "gc_paused"]

#: Fold this many events or more with the garbage collector paused.
GC_PAUSE_THRESHOLD = 2048


@contextlib.contextmanager
def gc_paused(count: int) -> Iterator[None]:
    """Pause the cyclic garbage collector while folding ``count`` events (nothing here makes cycles).

    Nested use is free: an inner pause inside an outer one does nothing.
    """
    if count < GC_PAUSE_THRESHOLD or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if not gc.get_freeze_count():
            # Every object built while paused is young: re-enabled as is, the collector
            # would traverse them all at its next (generation 0) pass, right away.
            # freeze() + unfreeze() moves every tracked object straight to the oldest
            # generation in O(1), so they are looked at only by the next full collection,
            # like any long-lived data. Skipped when the application has frozen objects
            # itself (pre-fork servers): unfreeze() would release theirs too.
            gc.freeze()
            gc.unfreeze()
        gc.enable()
