"""Data routines: transform values, validate them."""

from __future__ import annotations

from .data_transformer import DataTransformer
from .data_validator import DataValidator

__all__ = ["DataTransformer", "DataValidator"]
