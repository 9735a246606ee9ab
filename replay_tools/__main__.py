"""``python -m replay_tools``: the same as the ``routilux-replay`` command."""

from __future__ import annotations

from .cli import main

main()
