"""Child-process entry point: run one workload and print its result as one JSON line.

    python run_workload.py [--root REPO] MODULE FUNCTION PARAMS_JSON

``peer.py`` starts this script under either interpreter (ours, or the original
routilux 0.10.0's venv). The script's own directory (``benchmarks/``) is on ``sys.path``,
so the workload modules import; ``--root`` puts a routilux-es checkout first on
``sys.path`` (ours only: the peer must import its own ``routilux``). The result line
starts with ``RESULT_MARKER`` and also names the ``routilux`` module that ran, so the
parent can check that each side measured the implementation it meant to.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

RESULT_MARKER = "@@bench-result@@ "


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the workload, print the result line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="put this routilux-es checkout first on sys.path")
    parser.add_argument("module")
    parser.add_argument("function")
    parser.add_argument("params", help="the workload's parameters, as a JSON object")
    args = parser.parse_args(argv)
    if args.root:
        sys.path.insert(0, args.root)
    import routilux

    workload = getattr(importlib.import_module(args.module), args.function)
    result = workload(json.loads(args.params))
    line = {"result": result, "routilux_file": routilux.__file__, "python": sys.version.split()[0]}
    sys.stdout.write(RESULT_MARKER + json.dumps(line) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
