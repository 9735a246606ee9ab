"""The one seed of the kit's Hypothesis runs, taken from the environment.

``ROUTILUX_REPLAY_SEED=N`` makes every :class:`~replay_tools.testing.FlowMachine`
subclass and every test decorated with :func:`seeded` generate the same examples
again. Without it a seed is drawn once per process; failures print it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any, TypeVar

import hypothesis

__all__ = ["SEED_VARIABLE", "current_seed", "kit_seed", "seeded"]

#: The environment variable that fixes the seed.
SEED_VARIABLE = "ROUTILUX_REPLAY_SEED"

_drawn: int | None = None

T = TypeVar("T")


def kit_seed() -> int:
    """The seed: ``$ROUTILUX_REPLAY_SEED`` if set, else one drawn once for this process.

    Raises:
        ValueError: the variable is set but is not an integer.
    """
    global _drawn
    text = os.environ.get(SEED_VARIABLE)
    if text:
        try:
            return int(text)
        except ValueError:
            msg = f"{SEED_VARIABLE}={text!r} is not an integer seed"
            raise ValueError(msg) from None
    if _drawn is None:
        _drawn = random.SystemRandom().randrange(2**32)
    return _drawn


def seeded(test: T) -> T:
    """Decorate a ``@given`` test (above ``@given``) so it runs with :func:`kit_seed`."""
    apply: Callable[[Any], Any] = hypothesis.seed(kit_seed())
    return apply(test)  # type: ignore[no-any-return]


def current_seed() -> int | None:
    """The kit seed when called inside a Hypothesis test, else None."""
    return kit_seed() if hypothesis.currently_in_test_context() else None
