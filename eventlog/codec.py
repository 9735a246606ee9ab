"""Deprecated name of :mod:`eventlog.encoding`, kept for code written against it.

Nothing inside this project imports it; use :mod:`eventlog.encoding`.
"""

from __future__ import annotations

from .encoding import MAX_DEPTH, MAX_RECORD_BYTES, decode, encode

__all__ = ["MAX_DEPTH", "MAX_RECORD_BYTES", "decode", "encode"]
