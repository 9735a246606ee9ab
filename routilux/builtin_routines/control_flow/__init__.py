"""Control-flow routines: route values by condition."""

from __future__ import annotations

from .conditional_router import ConditionalRouter

__all__ = ["ConditionalRouter"]
