"""Text routines: clip text, render values as text, extract results from text."""

from __future__ import annotations

from .result_extractor import ResultExtractor
from .text_clipper import TextClipper
from .text_renderer import TextRenderer

__all__ = ["TextClipper", "TextRenderer", "ResultExtractor"]
